# upernet_eac-b_ade20k-1024.py with mixed precision (fp16, dynamic loss
# scale); needs CUDA.
_base_ = './upernet_eac-b_ade20k-1024.py'
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
