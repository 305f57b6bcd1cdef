"""The core-periphery op's CPU kernels inside the backbone: the same numbers
as its plain path, forward and gradients, and torch.compile through them."""
import torch

from mmeac.models import EACViT
from mmeac.ops import HAS_COMPILED_KERNEL
from mmeac.ops.core_periphery_attention import plain_path

_CPU_KERNELS = {
    'mmeac_C::cp_attention_fwd',
    'aten::_scaled_dot_product_flash_attention_for_cpu_backward'
}


def _forward_and_grad(model, x):
    """The last output without autograd, the qkv weight's gradient of a
    training step and the names of the operators that ran."""
    model.zero_grad()
    with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        with torch.no_grad():
            out = model(x)[-1]
        model(x)[-1].square().mean().backward()
    names = {e.name for e in prof.events()}
    return out, model.layers[0].attn.qkv.weight.grad.clone(), names


def test_backbone_same_with_and_without_cpu_kernels():
    """The whole backbone at an odd input size: the op's CPU kernels against
    its plain path, forward and gradients."""
    torch.manual_seed(0)
    model = EACViT(
        arch=dict(embed_dims=48, num_layers=2, num_heads=2, mlp_ratio=2.0),
        patch_size=8,
        max_cores=16,
        num_cores=16,
        out_indices=(0, 1)).eval()
    x = torch.randn(2, 3, 44, 61)
    out, grad, names = _forward_and_grad(model, x)
    with plain_path():
        out_plain, grad_plain, names_plain = _forward_and_grad(model, x)
    want = {
        n
        for n in _CPU_KERNELS if HAS_COMPILED_KERNEL or 'mmeac_C' not in n
    }
    assert _CPU_KERNELS & names == want
    assert not _CPU_KERNELS & names_plain
    torch.testing.assert_close(out, out_plain, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, grad_plain, rtol=1e-4, atol=1e-6)


def test_inference_backbone_compiles_fullgraph():
    """torch.compile traces the inference backbone through the op's fake
    kernel and runs its CPU kernels."""
    model = EACViT(
        arch=dict(embed_dims=32, num_layers=1, num_heads=2, mlp_ratio=2.0),
        patch_size=8,
        max_cores=8).eval()
    x = torch.randn(1, 3, 32, 40)
    with torch.no_grad():
        want = model(x)[0]
        got = torch.compile(model, backend='aot_eager', fullgraph=True)(x)[0]
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
