# upernet_eac-b_ade20k-1024.py with mixed precision in bfloat16 (needs CUDA).
# The backbone keeps its residual stream in float32 under autocast, as the
# authors' model does; on GPUs without bf16 use
# optim_wrapper = dict(type='AmpOptimWrapper', dtype='float16',
#                      loss_scale='dynamic')
_base_ = './upernet_eac-b_ade20k-1024.py'
optim_wrapper = dict(type='AmpOptimWrapper', dtype='bfloat16')
