"""The core-periphery attention operator against a dense masked reference."""
import importlib

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from mmeac.ops import (core_periphery_attention,
                       core_periphery_attention_reference,
                       core_periphery_mask, sdpa_pair_attention)
from mmeac.ops import compiled

# the package re-exports the function under the module's name
cpa_module = importlib.import_module('mmeac.ops.core_periphery_attention')

CASES = [  # batch, heads, cores, patches, head_dim
    (1, 1, 8, 1, 8),
    (2, 3, 8, 20, 16),
    (3, 2, 16, 33, 32),
    (1, 4, 24, 7, 8),
    (2, 1, 4, 0, 4),  # cores only
]


needs_compiled = pytest.mark.skipif(
    not compiled.compiled_ops_available(),
    reason='mmeac._C not built (setup.py builds it when torch is importable)')


@pytest.fixture(params=[
    pytest.param('compiled', marks=needs_compiled), 'fused', 'analytic'
])
def kernel_path(request, monkeypatch):
    """Run a test through mmeac's compiled CPU kernel (float32 inputs; others
    take the fused path), ATen's fused CPU flash path and the analytic path
    (the one CUDA uses, reached by hiding ATen's CPU flash kernel)."""
    if request.param == 'compiled':
        with compiled.ops_backend('compiled'):
            yield request.param
        return
    if request.param == 'analytic':
        monkeypatch.setattr(cpa_module, '_CPU_FLASH', None)
    else:
        assert cpa_module._CPU_FLASH is not None
    with compiled.ops_backend('aten'):
        yield request.param


def _qkv(b, h, c, n, d, dtype=torch.float64, grad=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(b, h, c + n, d, generator=gen,
                    dtype=dtype).requires_grad_(grad) for _ in range(3))


def test_mask_blocks_only_patch_to_patch():
    mask = core_periphery_mask(2, 5)
    expected = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1],
                             [1, 1, 0, 0, 0], [1, 1, 0, 0, 0],
                             [1, 1, 0, 0, 0]]).bool()
    assert torch.equal(mask, expected)
    # 2NC + C^2 allowed pairs
    assert int(mask.sum()) == 2 * 3 * 2 + 2 * 2


@pytest.mark.parametrize('b,h,c,n,d', CASES)
def test_forward_and_grad_equal_masked_reference_float64(
        b, h, c, n, d, kernel_path):
    q, k, v = _qkv(b, h, c, n, d, grad=True)
    out = core_periphery_attention(q, k, v, c)
    ref = core_periphery_attention_reference(q, k, v, c)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(out)
    got = torch.autograd.grad(out, (q, k, v), grad)
    want = torch.autograd.grad(ref, (q, k, v), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize('b,h,c,n,d', [(1, 1, 8, 1, 4), (2, 2, 8, 5, 4),
                                       (1, 2, 4, 7, 8), (2, 1, 4, 0, 4)])
@pytest.mark.parametrize('fast_mode', [True, False])
def test_gradcheck(b, h, c, n, d, fast_mode, kernel_path):
    q, k, v = _qkv(b, h, c, n, d, grad=True, seed=1)
    assert torch.autograd.gradcheck(
        lambda q, k, v: core_periphery_attention(q, k, v, c), (q, k, v),
        fast_mode=fast_mode)


def test_patch_outputs_ignore_other_patches():
    q, k, v = _qkv(1, 2, 8, 12, 16)
    out = core_periphery_attention(q, k, v, 8)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 8:] += 5.0
    v2[:, :, 8:] -= 3.0
    out2 = core_periphery_attention(q, k2, v2, 8)
    # patch rows see only the cores: unchanged; core rows see patches
    torch.testing.assert_close(out[:, :, 8:], out2[:, :, 8:])
    assert not torch.allclose(out[:, :, :8], out2[:, :, :8])


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 2e-6),
                                       (torch.bfloat16, 3e-2)])
def test_low_precision_within_tolerance(dtype, tol, kernel_path):
    q64, k64, v64 = _qkv(2, 4, 16, 50, 32, grad=True, seed=2)
    q, k, v = (t.detach().to(dtype).requires_grad_() for t in (q64, k64, v64))
    out = core_periphery_attention(q, k, v, 16)
    assert out.dtype == dtype
    ref = core_periphery_attention_reference(q64, k64, v64, 16)
    torch.testing.assert_close(out.double(), ref, rtol=tol, atol=tol)
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, (q, k, v), grad.to(dtype))
    want = torch.autograd.grad(ref, (q64, k64, v64), grad)
    for g, w in zip(got, want):
        assert g.dtype == dtype
        torch.testing.assert_close(g.double(), w, rtol=5 * tol, atol=5 * tol)


def test_outputs_are_token_major(kernel_path):
    """The output is stored ``[B, L, heads, d]`` so that merging heads is a
    view; the fake kernel reports the same strides as the real one."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    q, k, v = _qkv(2, 3, 8, 13, 16, dtype=torch.float32, grad=True)
    out, lse = torch.ops.mmeac.core_periphery_attention(q, k, v, 8, 0.25)
    assert out.transpose(1, 2).is_contiguous()
    with FakeTensorMode() as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (q, k, v))
        fout, flse = torch.ops.mmeac.core_periphery_attention(
            fq, fk, fv, 8, 0.25)
    assert fout.stride() == out.stride()
    assert flse.shape == lse.shape and flse.stride() == lse.stride()
    grads = torch.autograd.grad(out, (q, k, v), torch.randn_like(out))
    for g, t in zip(grads, (q, k, v)):
        assert g.shape == t.shape and g.transpose(1, 2).is_contiguous()


def test_sdpa_pair_matches_op():
    q, k, v = _qkv(2, 2, 8, 30, 16)
    torch.testing.assert_close(
        sdpa_pair_attention(q, k, v, 8), core_periphery_attention(q, k, v, 8))


def test_opcheck(kernel_path):
    for grad in (False, True):
        q, k, v = _qkv(2, 2, 8, 16, 16, dtype=torch.float32, grad=grad)
        torch.library.opcheck(torch.ops.mmeac.core_periphery_attention.default,
                              (q, k, v, 8, 0.25))


def test_compile_fullgraph():
    q, k, v = _qkv(1, 2, 8, 24, 16, dtype=torch.float32, grad=True)

    def fn(q, k, v):
        return core_periphery_attention(q * 2, k, v, 8).sum()

    compiled = torch.compile(fn, fullgraph=True, backend='aot_eager')
    loss = compiled(q, k, v)
    grads = torch.autograd.grad(loss, (q, k, v))
    ref = core_periphery_attention_reference(q * 2, k, v, 8).sum()
    ref_grads = torch.autograd.grad(ref, (q, k, v))
    torch.testing.assert_close(loss, ref)
    for g, w in zip(grads, ref_grads):
        torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5)


class _LargestTensor(TorchDispatchMode):
    """Records the largest tensor any ATen op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out, ):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_no_quadratic_tensor_forward_or_backward(kernel_path):
    b, h, c, n, d = 1, 1, 8, 400, 8
    q, k, v = _qkv(b, h, c, n, d, dtype=torch.float32, grad=True)
    with _LargestTensor() as mode:
        out = core_periphery_attention(q, k, v, c)
        out.sum().backward()
    assert mode.largest <= max(b * h * (c + n) * c, b * h * (c + n) * d)
    with _LargestTensor() as dense:
        core_periphery_attention_reference(q, k, v, c)
    assert dense.largest >= (c + n)**2  # the check would see a dense matrix


@pytest.mark.parametrize('kwargs,match', [
    (dict(num_cores=0), 'num_cores must be in'),
    (dict(num_cores=99), 'num_cores must be in'),
])
def test_bad_num_cores(kwargs, match):
    q, k, v = _qkv(1, 1, 8, 4, 8)
    with pytest.raises(ValueError, match=match):
        core_periphery_attention(q, k, v, **kwargs)


def test_bad_shapes():
    q, k, v = _qkv(1, 1, 8, 4, 8)
    with pytest.raises(ValueError, match=r'\[batch, heads'):
        core_periphery_attention(q[0], k[0], v[0], 8)
    with pytest.raises(ValueError, match='one shape'):
        core_periphery_attention(q, k[:, :, :5], v, 4)


COMPILED_CASES = CASES + [  # several row blocks, a ragged last block, C = 1
    (1, 2, 64, 600, 64),
    (2, 3, 1, 257, 8),
    (1, 1, 3, 513, 12),
]


@needs_compiled
@pytest.mark.parametrize('b,h,c,n,d', COMPILED_CASES)
def test_compiled_kernel_equals_reference(b, h, c, n, d):
    """mmeac_C::cp_attention_fwd in float32 against the float64 masked
    reference, output and log-sum-exp; gradients through the fused backward
    that consumes its log-sum-exp."""
    q64, k64, v64 = _qkv(b, h, c, n, d, grad=True, seed=3)
    q, k, v = (t.detach().float().requires_grad_() for t in (q64, k64, v64))
    scale = d**-0.5
    with compiled.ops_backend('compiled'):
        assert cpa_module._forward_kernel(q, k, v) == 'compiled'
        out, lse = torch.ops.mmeac.core_periphery_attention(q, k, v, c, scale)
    ref = core_periphery_attention_reference(q64, k64, v64, c)
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=2e-6)
    scores = (q64 @ k64.transpose(-2, -1)) * scale
    mask = core_periphery_mask(c, c + n)
    ref_lse = scores.masked_fill(~mask, float('-inf')).logsumexp(-1)
    torch.testing.assert_close(lse.double(), ref_lse, rtol=2e-6, atol=2e-6)
    assert out.transpose(1, 2).is_contiguous()
    grad = torch.randn_like(ref)
    got = torch.autograd.grad(out, (q, k, v), grad.float())
    want = torch.autograd.grad(ref, (q64, k64, v64), grad)
    for g, w in zip(got, want):
        torch.testing.assert_close(g.double(), w, rtol=1e-5, atol=1e-5)


@needs_compiled
def test_compiled_kernel_reads_strided_qkv():
    """q, k, v as the attention layer makes them: views of one fused
    [B, L, 3, heads, d] projection (row stride 3 * heads * d)."""
    gen = torch.Generator().manual_seed(4)
    qkv = torch.randn(2, 8 + 70, 3, 4, 16, generator=gen)
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    assert q.stride(2) == 3 * 4 * 16
    with compiled.ops_backend('compiled'):
        out = core_periphery_attention(q, k, v, 8)
    ref = core_periphery_attention_reference(q.double(), k.double(),
                                             v.double(), 8)
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=2e-6)


@needs_compiled
def test_compiled_kernel_value_dim_differs():
    """v may have another channel count than q and k."""
    gen = torch.Generator().manual_seed(5)
    q, k = (torch.randn(2, 3, 8 + 300, 16, generator=gen) for _ in range(2))
    v = torch.randn(2, 3, 8 + 300, 24, generator=gen)
    with compiled.ops_backend('compiled'):
        assert cpa_module._forward_kernel(q, k, v) == 'compiled'
        out = core_periphery_attention(q, k, v, 8)
    assert out.shape == (2, 3, 308, 24)
    ref = core_periphery_attention_reference(q.double(), k.double(),
                                             v.double(), 8)
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=2e-6)


def test_backend_switch_and_errors(monkeypatch):
    with pytest.raises(ValueError, match=r"one of \['auto', 'compiled'"):
        compiled.set_ops_backend('fast')
    q, k, v = _qkv(1, 2, 8, 16, 16, dtype=torch.float32)
    before = compiled.get_ops_backend()
    with compiled.ops_backend('aten'):
        assert cpa_module._forward_kernel(q, k, v) == 'flash'
        aten_out = core_periphery_attention(q, k, v, 8)
    assert compiled.get_ops_backend() == before
    # float64 and bfloat16 are not the compiled kernel's
    assert cpa_module._forward_kernel(*(t.double() for t in (q, k, v))) \
        == 'flash'
    torch.testing.assert_close(core_periphery_attention(q, k, v, 8),
                               aten_out, rtol=2e-6, atol=2e-6)
    # without a build: 'auto' falls back, 'compiled' says what is missing
    monkeypatch.setattr(compiled, '_LOAD_ERROR',
                        ImportError('No module named mmeac._C'))
    assert not compiled.compiled_ops_available()
    assert cpa_module._forward_kernel(q, k, v) == 'flash'
    with pytest.raises(RuntimeError, match='MMEAC_WITH_OPS=1 pip install'):
        compiled.set_ops_backend('compiled')
    monkeypatch.setitem(compiled._state, 'backend', 'compiled')
    with pytest.raises(RuntimeError, match=r'mmeac._C\) are not available'):
        core_periphery_attention(q, k, v, 8)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    q, k, v = _qkv(2, 4, 16, 100, 32, dtype=torch.float32, grad=True)
    out = core_periphery_attention(q, k, v, 16)
    qc, kc, vc = (t.detach().cuda().requires_grad_() for t in (q, k, v))
    out_c = core_periphery_attention(qc, kc, vc, 16)
    torch.testing.assert_close(out_c.cpu(), out, rtol=1e-4, atol=1e-4)
    grad = torch.randn_like(out)
    g_cpu = torch.autograd.grad(out, (q, k, v), grad)
    g_cuda = torch.autograd.grad(out_c, (qc, kc, vc), grad.cuda())
    for a, b in zip(g_cuda, g_cpu):
        torch.testing.assert_close(a.cpu(), b, rtol=1e-4, atol=1e-4)
