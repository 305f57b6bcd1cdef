"""Core-to-patch attention maps and core coordinates of an EAC backbone.

For every layer, the attention of each core query over the patch tokens is
recomputed from that layer's roped queries and keys, captured with forward
hooks (no change to the model):

1. ``q, k, v = layers[l].attn._qkv(x, rope)`` on the attention input;
2. ``a = softmax(q_core k^T * scale)`` over *all* C + N keys (what the core
   queries attend to), keeping the N patch columns;
3. each column weighted by the norm of its value vector ``||v_j||`` (per
   head: a patch contributes to a core's update in proportion to attention
   times value magnitude, as in the EAC paper's figures);
4. averaged over heads and renormalised per core, so each core's map is a
   distribution over the ``h x w`` patches (non-negative, sums to 1).

Core coordinates are ``tanh(rho)`` of the core states before every block:
the learned initial ``rho`` for block 0 and the outputs of
``coord_updates[l - 1]`` (hooked) for block ``l``.
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor, nn

__all__ = [
    'core_attention_maps', 'find_backbone', 'parse_layer_indices',
    'weighted_core_attention'
]


def find_backbone(model: nn.Module) -> nn.Module:
    """The EAC backbone of a segmentor / detector / classifier (or itself).

    Raises:
        ValueError: If no EAC backbone (``layers``, ``coord_updates``,
            ``core_chunks``) is found.
    """
    for cand in (getattr(model, 'backbone', None), model):
        if cand is not None and all(
                hasattr(cand, a)
                for a in ('layers', 'coord_updates', 'core_chunks')):
            return cand
    raise ValueError(f'{type(model).__name__} has no EAC backbone (expected '
                     'model.backbone to be an EACViT)')


def weighted_core_attention(q: Tensor, k: Tensor, v: Tensor, num_cores: int,
                            scale: float) -> Tensor:
    """Value-norm weighted core-to-patch attention, normalised per core.

    Args:
        q, k, v (Tensor): Roped queries / keys and values
            ``[B, heads, C + N, d]``, cores first.
        num_cores (int): C.
        scale (float): Score scale.

    Returns:
        Tensor: ``[B, C, N]``, each row non-negative and summing to 1.
    """
    c = num_cores
    scores = (q[:, :, :c].float() @ k.float().transpose(-2, -1)) * scale
    prob = scores.softmax(dim=-1)[..., c:]  # [B, heads, C, N]
    vnorm = v[:, :, c:].float().norm(dim=-1)  # [B, heads, N]
    weighted = (prob * vnorm[:, :, None, :]).mean(dim=1)  # [B, C, N]
    total = weighted.sum(dim=-1, keepdim=True)
    return weighted / total.clamp_min(torch.finfo(weighted.dtype).tiny)


def parse_layer_indices(layers: Optional[Union[str, Sequence[int]]],
                        num_layers: int) -> List[int]:
    if layers is None or layers == 'all':
        return list(range(num_layers))
    out = []
    for idx in layers:
        real = int(idx) + num_layers if int(idx) < 0 else int(idx)
        if not 0 <= real < num_layers:
            raise ValueError(f'layer index {idx} is out of range for '
                             f'{num_layers} layers')
        out.append(real)
    return sorted(set(out))


@torch.no_grad()
def core_attention_maps(
        backbone: nn.Module,
        img: Tensor,
        num_cores: Optional[int] = None,
        layers: Optional[Union[str,
                               Sequence[int]]] = None) -> Dict[str, object]:
    """Run ``backbone`` on ``img`` and collect maps and core coordinates.

    The backbone is run in eval mode (restored afterwards) at budget
    ``num_cores`` (default: its current ``num_cores``, also restored).

    Args:
        backbone (nn.Module): An :class:`EACViT` (or a model holding one as
            ``.backbone``).
        img (Tensor): Normalised images ``[B, 3, H, W]``.
        num_cores (int, optional): Budget C.
        layers (str | Sequence[int], optional): ``'all'`` (default) or
            block indices.

    Returns:
        dict: ``maps`` {layer: ``[B, C, h, w]``} (each core's map sums to
        1), ``coords`` ``[B, num_layers, C, 2]`` (x, y in ``[-1, 1]``, the
        coordinates each block's RoPE uses), ``hw`` (h, w), ``num_cores``
        and ``layers``.
    """
    backbone = find_backbone(backbone)
    layer_ids = parse_layer_indices(layers, len(backbone.layers))
    was_training = backbone.training
    old_budget = backbone.num_cores
    if num_cores is not None:
        backbone.num_cores = num_cores
    budget = backbone.num_cores
    p = backbone.patch_size
    hw = (img.shape[-2] // p, img.shape[-1] // p)

    maps: Dict[int, Tensor] = {}
    rhos: List[Tensor] = []
    handles = []

    def attn_hook(idx):

        def hook(module, args, kwargs):
            x = args[0] if args else kwargs['x']
            c = args[1] if len(args) > 1 else kwargs['num_cores']
            rope = args[2] if len(args) > 2 else kwargs['rope']
            q, k, v = module._qkv(x, rope)
            maps[idx] = weighted_core_attention(q, k, v, c,
                                                module.scale).unflatten(
                                                    -1, hw)

        return hook

    def coord_hook(module, args, output):
        rhos.append(output.detach())

    try:
        backbone.eval()
        for idx in layer_ids:
            handles.append(backbone.layers[idx].attn.register_forward_pre_hook(
                attn_hook(idx), with_kwargs=True))
        for mod in backbone.coord_updates:
            handles.append(mod.register_forward_hook(coord_hook))
        backbone(img)
    finally:
        for h in handles:
            h.remove()
        backbone.num_cores = old_budget
        backbone.train(was_training)

    rho0 = torch.cat(list(backbone.core_coord_chunks), dim=0)[:budget]
    rho0 = rho0.to(img.device).unsqueeze(0).expand(img.shape[0], -1, -1)
    coords = torch.stack([torch.tanh(r.float()) for r in [rho0] + rhos], dim=1)
    return dict(
        maps={i: maps[i].cpu()
              for i in layer_ids},
        coords=coords.cpu(),
        hw=hw,
        num_cores=budget,
        layers=layer_ids)
