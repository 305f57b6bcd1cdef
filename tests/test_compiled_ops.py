"""mmeac's compiled CPU kernels in the model: the SwiGLU gate, the
attention, and the switch between them and the ATen paths."""
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmeac.models import EACViT
from mmeac.models.layers.ffn import SwiGLUFFN
from mmeac.ops import compiled

needs_compiled = pytest.mark.skipif(
    not compiled.compiled_ops_available(),
    reason='mmeac._C not built (setup.py builds it when torch is importable)')


class _Ops(TorchDispatchMode):
    """Record the names of the operators that run."""

    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(str(func.overloadpacket))
        return func(*args, **(kwargs or {}))


def _ffn(hidden=40):
    torch.manual_seed(0)
    ffn = SwiGLUFFN(24, hidden)
    for p in ffn.parameters():  # biases away from zero, so they matter
        torch.nn.init.normal_(p, std=0.5)
    return ffn


@needs_compiled
@pytest.mark.parametrize('shape', [(2, 7, 24), (1, 1, 24), (3, 24)])
def test_fused_swiglu_equals_unfused(shape):
    ffn = _ffn()
    x = torch.randn(*shape)
    want = ffn(x)  # autograd path: fc1 with bias, silu, mul
    with torch.no_grad(), compiled.ops_backend('compiled'), _Ops() as ops:
        got = ffn(x)
    assert 'mmeac_C.swiglu_' in ops.names
    torch.testing.assert_close(got, want.detach(), rtol=1e-6, atol=1e-6)
    with torch.no_grad(), compiled.ops_backend('aten'), _Ops() as ops:
        aten = ffn(x)
    assert 'mmeac_C.swiglu_' not in ops.names
    torch.testing.assert_close(aten, want.detach(), rtol=1e-6, atol=1e-6)


@needs_compiled
def test_fused_swiglu_not_used_under_autocast():
    """Under CPU autocast fc1 yields bfloat16, so the FFN must take the ATen
    gate even though its float32 input would qualify for the kernel."""
    ffn = _ffn()
    x = torch.randn(2, 7, 24)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        want = ffn(x)
        with torch.no_grad(), compiled.ops_backend('compiled'), _Ops() as ops:
            got = ffn(x)
    assert 'mmeac_C.swiglu_' not in ops.names
    assert got.dtype == torch.bfloat16
    # bfloat16 rounding differs between the in-place and autograd gates
    torch.testing.assert_close(got, want.detach(), rtol=3e-2, atol=3e-2)


@needs_compiled
def test_fused_swiglu_vector_tail():
    """A hidden size that is not a multiple of the vector width runs the
    scalar tail, and the second half (w) is left as it was."""
    h = torch.randn(5, 2 * 19)
    bias = torch.randn(2 * 19)
    u, w = (h + bias).chunk(2, dim=-1)
    want = torch.nn.functional.silu(u) * w
    out = h.clone()
    torch.ops.mmeac_C.swiglu_(out, bias)
    torch.testing.assert_close(out[:, :19], want, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out[:, 19:], h[:, 19:], rtol=0, atol=0)


@needs_compiled
def test_kernel_input_errors():
    with pytest.raises(RuntimeError, match='float32 tensors only'):
        torch.ops.mmeac_C.swiglu_(torch.zeros(2, 4, dtype=torch.float64),
                                  torch.zeros(4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r'bias must be \[6\]'):
        torch.ops.mmeac_C.swiglu_(torch.zeros(2, 6), torch.zeros(4))
    with pytest.raises(RuntimeError, match='num_cores 9 not in'):
        q = torch.zeros(1, 1, 8, 4)
        torch.ops.mmeac_C.cp_attention_fwd(q, q, q, 9, 0.5)
    with pytest.raises(RuntimeError, match='must be float32'):
        q = torch.zeros(1, 1, 8, 4, dtype=torch.float64)
        torch.ops.mmeac_C.cp_attention_fwd(q, q, q, 2, 0.5)


@needs_compiled
def test_backbone_same_with_and_without_compiled_kernels():
    """The whole backbone at an odd input size: compiled kernels against the
    ATen paths, forward (inference path) and gradients (training path)."""
    torch.manual_seed(0)
    model = EACViT(
        arch=dict(embed_dims=48, num_layers=2, num_heads=2, mlp_ratio=2.0),
        patch_size=8, max_cores=16, num_cores=16,
        out_indices=(0, 1)).eval()
    x = torch.randn(2, 3, 44, 61)
    outs = {}
    for backend in ('compiled', 'aten'):
        with compiled.ops_backend(backend):
            with torch.no_grad(), _Ops() as ops:
                outs[backend] = model(x)
            used = {'mmeac_C.cp_attention_fwd', 'mmeac_C.swiglu_'} & ops.names
            assert bool(used) == (backend == 'compiled')
            model.zero_grad()
            model(x)[-1].square().mean().backward()
            outs[backend + '_grad'] = model.layers[0].attn.qkv.weight.grad
    for a, b in zip(outs['compiled'], outs['aten']):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        outs['compiled_grad'], outs['aten_grad'], rtol=1e-4, atol=1e-6)


@needs_compiled
def test_inference_backbone_compiles_fullgraph():
    """torch.compile traces the inference path, compiled kernels included
    (the in-place gate through its fake kernel)."""
    model = EACViT(
        arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
        patch_size=8, max_cores=8).eval()
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        want = model(x)[0]
        got = torch.compile(model, backend='aot_eager', fullgraph=True)(x)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
