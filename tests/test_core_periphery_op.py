"""The core-periphery attention operator against the dense masked reference.

The op has one plain implementation (``forward_plain`` / ``backward_plain``)
and CPU kernels registered at import (``forward_cpu``: mmeac's compiled
kernel; ``backward_cpu``: ATen's fused flash backward). The kernel functions
are called directly to compare them; ``plain_path()`` runs the registered op
on its plain implementation.
"""
import importlib.util
import math

import pytest
import torch

from mmeac.ops import (HAS_COMPILED_KERNEL, core_periphery_attention,
                       core_periphery_attention_reference, core_periphery_mask)
from mmeac.ops.core_periphery_attention import (_load_compiled_kernels,
                                                backward_cpu, backward_plain,
                                                forward_cpu, forward_plain,
                                                plain_path)

needs_compiled = pytest.mark.skipif(
    not HAS_COMPILED_KERNEL,
    reason='mmeac._C not built (setup.py builds it when torch is importable)')

# batch, heads, cores, patches, head_dim, value dim
CASES = [
    pytest.param(1, 1, 1, 9, 8, 8, id='one-core'),
    pytest.param(2, 1, 4, 0, 4, 4, id='cores-only'),
    pytest.param(2, 3, 8, 21, 16, 16, id='batch-heads'),
    pytest.param(1, 2, 5, 13, 8, 12, id='value-dim'),
]
# the compiled kernel splits patch rows into blocks of 256: several blocks
# and a ragged last one
COMPILED_CASES = CASES + [
    pytest.param(1, 2, 64, 600, 64, 64, id='row-blocks'),
    pytest.param(2, 3, 1, 257, 8, 8, id='one-core-ragged-block'),
]


@pytest.fixture(params=['kernels', 'plain'])
def op_path(request):
    """The registered op with its CPU kernels, and on its plain path."""
    if request.param == 'kernels':
        yield request.param
        return
    with plain_path():
        yield request.param


class _Ops:
    """Profiles a block: the names of the operators that ran, nested ones
    included (inside the custom op's kernels too), and the largest tensor
    any of them took as input."""

    def __enter__(self):
        self._prof = torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU],
            record_shapes=True)
        self._prof.__enter__()
        return self

    def __exit__(self, *exc):
        self._prof.__exit__(*exc)
        events = self._prof.events()
        self.names = {e.name for e in events}
        self.largest = max(
            (math.prod(shape) for e in events for shape in e.input_shapes
             if shape and all(isinstance(i, int) for i in shape)),
            default=0)


def _qkv(b, h, c, n, d, dv=None, dtype=torch.float64, grad=False, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(b, h, c + n, d)] * 2 + [(b, h, c + n, dv or d)]
    return tuple(
        torch.randn(s, generator=gen, dtype=dtype).requires_grad_(grad)
        for s in shapes)


def _reference_lse(q, k, c, scale):
    scores = (q @ k.transpose(-2, -1)) * scale
    mask = core_periphery_mask(c, q.shape[2])
    return scores.masked_fill(~mask, float('-inf')).logsumexp(-1)


def test_mask_blocks_only_patch_to_patch():
    mask = core_periphery_mask(2, 5)
    expected = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0],
                             [1, 1, 0, 0, 0], [1, 1, 0, 0, 0]]).bool()
    assert torch.equal(mask, expected)
    assert int(mask.sum()) == 2 * 3 * 2 + 2 * 2  # 2NC + C^2 pairs


@pytest.mark.parametrize('b,h,c,n,d,dv', CASES)
def test_plain_path_equals_reference_float64(b, h, c, n, d, dv):
    """forward_plain / backward_plain against the masked reference and its
    autograd gradients; backward_cpu against backward_plain."""
    q, k, v = _qkv(b, h, c, n, d, dv, grad=True)
    scale = 0.3
    out, lse = forward_plain(q.detach(), k.detach(), v.detach(), c, scale)
    ref = core_periphery_attention_reference(q, k, v, c, scale)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        lse, _reference_lse(q, k, c, scale).detach(), rtol=1e-12, atol=1e-12)
    grad = torch.randn_like(ref)
    want = torch.autograd.grad(ref, (q, k, v), grad)
    inputs = (grad, q.detach(), k.detach(), v.detach(), out, lse, c, scale)
    for backward in (backward_plain, backward_cpu):
        got = backward(*inputs)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)
            assert g.transpose(1, 2).is_contiguous()  # token-major


@needs_compiled
@pytest.mark.parametrize('b,h,c,n,d,dv', COMPILED_CASES)
def test_compiled_forward_equals_reference(b, h, c, n, d, dv):
    """forward_cpu runs mmeac_C::cp_attention_fwd on float32 (output and
    log-sum-exp against the float64 reference) and the plain path on
    float64."""
    q64, k64, v64 = _qkv(b, h, c, n, d, dv, seed=3)
    q, k, v = (t.float() for t in (q64, k64, v64))
    scale = d**-0.5
    with _Ops() as ops:
        out, lse = forward_cpu(q, k, v, c, scale)
    assert 'mmeac_C::cp_attention_fwd' in ops.names
    ref = core_periphery_attention_reference(q64, k64, v64, c, scale)
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=2e-6)
    torch.testing.assert_close(
        lse.double(), _reference_lse(q64, k64, c, scale), rtol=2e-6, atol=2e-6)
    assert out.transpose(1, 2).is_contiguous()
    assert lse.transpose(1, 2).is_contiguous()
    with _Ops() as ops:
        out64, _ = forward_cpu(q64, k64, v64, c, scale)
    assert 'mmeac_C::cp_attention_fwd' not in ops.names
    torch.testing.assert_close(out64, ref, rtol=1e-12, atol=1e-12)


@needs_compiled
def test_compiled_forward_reads_strided_qkv():
    """q, k, v as the attention layer makes them: views of one fused
    [B, L, 3, heads, d] projection (row stride 3 * heads * d)."""
    qkv = torch.randn(
        2, 8 + 70, 3, 4, 16, generator=torch.Generator().manual_seed(4))
    q, k, v = (t.transpose(1, 2) for t in qkv.unbind(2))
    assert q.stride(2) == 3 * 4 * 16
    with _Ops() as ops:
        out = core_periphery_attention(q, k, v, 8)
    assert 'mmeac_C::cp_attention_fwd' in ops.names
    ref = core_periphery_attention_reference(q.double(), k.double(),
                                             v.double(), 8)
    torch.testing.assert_close(out.double(), ref, rtol=2e-6, atol=2e-6)


@needs_compiled
def test_compiled_kernel_input_errors():
    with pytest.raises(RuntimeError, match='num_cores 9 not in'):
        q = torch.zeros(1, 1, 8, 4)
        torch.ops.mmeac_C.cp_attention_fwd(q, q, q, 9, 0.5)
    with pytest.raises(RuntimeError, match='must be float32'):
        q = torch.zeros(1, 1, 8, 4, dtype=torch.float64)
        torch.ops.mmeac_C.cp_attention_fwd(q, q, q, 2, 0.5)


def test_cpu_kernels_registered_once(op_path):
    """With the kernels, float32 CPU inputs run the compiled forward (when
    built) and ATen's flash backward; the plain path runs neither."""
    q, k, v = _qkv(1, 2, 4, 9, 8, dtype=torch.float32, grad=True)
    with _Ops() as ops:
        core_periphery_attention(q, k, v, 4).sum().backward()
    kernels = op_path == 'kernels'
    compiled = kernels and HAS_COMPILED_KERNEL
    assert ('mmeac_C::cp_attention_fwd' in ops.names) == compiled
    assert ('aten::_scaled_dot_product_flash_attention_for_cpu_backward'
            in ops.names) == kernels


def test_missing_build_is_reported(monkeypatch):
    """Without mmeac._C the load reports why (the op then keeps its plain
    CPU forward)."""

    def fail(name):
        raise ImportError(f'No module named {name!r}')

    monkeypatch.setattr(importlib, 'import_module', fail)
    assert _load_compiled_kernels() == \
        "ImportError: No module named 'mmeac._C'"


@pytest.mark.parametrize('b,h,c,n,d,dv', [
    pytest.param(1, 1, 1, 5, 4, 4, id='one-core'),
    pytest.param(2, 1, 4, 0, 4, 4, id='cores-only'),
    pytest.param(2, 2, 3, 6, 4, 6, id='batch-heads-value-dim'),
])
def test_gradcheck(b, h, c, n, d, dv, op_path):
    q, k, v = _qkv(b, h, c, n, d, dv, grad=True, seed=1)
    assert torch.autograd.gradcheck(
        lambda q, k, v: core_periphery_attention(q, k, v, c), (q, k, v),
        fast_mode=True)


@pytest.mark.parametrize('dtype,tol', [(torch.float32, 2e-6),
                                       (torch.bfloat16, 3e-2)])
def test_low_precision_within_tolerance(dtype, tol, op_path):
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


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_outputs_are_token_major(dtype, op_path):
    """The output is stored ``[B, L, heads, d]`` so that merging heads is a
    view; the fake kernel reports the real kernel's dtypes and strides."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    q, k, v = _qkv(2, 3, 8, 13, 16, dtype=dtype, grad=True)
    out, lse = torch.ops.mmeac.core_periphery_attention(q, k, v, 8, 0.25)
    assert out.transpose(1, 2).is_contiguous()
    with FakeTensorMode() as mode:
        fq, fk, fv = (mode.from_tensor(t) for t in (q, k, v))
        fout, flse = torch.ops.mmeac.core_periphery_attention(
            fq, fk, fv, 8, 0.25)
    for fake, real in ((fout, out), (flse, lse)):
        assert (fake.shape, fake.stride(), fake.dtype) == \
            (real.shape, real.stride(), real.dtype)
    grads = torch.autograd.grad(out, (q, k, v), torch.randn_like(out))
    for g, t in zip(grads, (q, k, v)):
        assert g.shape == t.shape and g.transpose(1, 2).is_contiguous()


def test_opcheck(op_path):
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


def test_no_quadratic_tensor_forward_or_backward(op_path):
    b, h, c, n, d = 1, 1, 8, 400, 8
    q, k, v = _qkv(b, h, c, n, d, dtype=torch.float32, grad=True)
    with _Ops() as mode:
        core_periphery_attention(q, k, v, c).sum().backward()
    assert mode.largest <= max(b * h * (c + n) * c, b * h * (c + n) * d)
    with _Ops() as dense:
        core_periphery_attention_reference(q, k, v, c)
    assert dense.largest >= (c + n)**2  # the check would see a dense matrix


@pytest.mark.parametrize('num_cores', [0, 99])
def test_bad_num_cores(num_cores):
    q, k, v = _qkv(1, 1, 8, 4, 8)
    with pytest.raises(ValueError, match='num_cores must be in'):
        core_periphery_attention(q, k, v, num_cores)
    for path in (forward_plain, forward_cpu):
        with pytest.raises(ValueError, match='num_cores must be in'):
            path(q, k, v, num_cores, 0.5)


def test_bad_shapes():
    q, k, v = _qkv(1, 1, 8, 4, 8)
    with pytest.raises(ValueError, match=r'\[batch, heads'):
        core_periphery_attention(q[0], k[0], v[0], 8)
    with pytest.raises(ValueError, match='one shape'):
        core_periphery_attention(q, k[:, :, :5], v, 4)


def test_benchmark_baseline_matches_op():
    """The benchmark's baseline (the authors' two SDPA calls and a
    concatenation) computes the same attention."""
    from _tool_helpers import load_tool
    tool = load_tool('tools/analysis_tools/benchmark_attention.py')
    q, k, v = _qkv(2, 2, 8, 30, 16)
    torch.testing.assert_close(
        tool.sdpa_pair_attention(q, k, v, 8),
        core_periphery_attention(q, k, v, 8))


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
