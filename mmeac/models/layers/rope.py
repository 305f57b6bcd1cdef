"""Axial 2D rotary position embedding (RoPE) of the EAC backbone.

Every token carries a 2D coordinate in ``[-1, 1]^2``: patches their cell
centres, cores ``tanh`` of a learned (and per-image updated) state. Per axis
there are ``head_dim / 4`` frequencies with periods
``100 ** (2 i / (head_dim / 2))``; the ``round(p * head_dim / 4)`` longest
periods are zeroed (angle 0). The first half of each head's channels rotates
with x, the second half with y, each angle shared by an interleaved channel
pair ``(2k, 2k + 1)``.
"""
import math
from typing import Dict, Optional

import torch
from torch import Tensor, nn

__all__ = ['AxialRoPE2D', 'apply_rope', 'farthest_point_coords']


def apply_rope(x: Tensor, cis: Tensor) -> Tensor:
    """Rotate interleaved channel pairs: ``(a, b) -> (a c - b s, b c + a s)``.

    The pair ``(a, b)`` is the complex number ``a + ib`` and the rotation a
    multiplication by ``cis = cos + i sin``: one pass over ``x``.

    Args:
        x (Tensor): ``[..., head_dim]``; its last dim must be contiguous.
        cis (Tensor): Complex ``[..., head_dim / 2]``, broadcastable to ``x``
            with its last dim halved.
    """
    dtype = x.dtype
    if dtype not in (torch.float32, torch.float64):
        x = x.float()
    pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))
    return torch.view_as_real(pairs * cis).flatten(-2).to(dtype)


def farthest_point_coords(num_points: int,
                          pool_size: int = 1000,
                          coord_range: float = 0.95,
                          seed: int = 0) -> Tensor:
    """Spread ``num_points`` 2D points by farthest-point sampling.

    ``pool_size`` points are drawn uniformly in ``[-r, r]^2``; sampling starts
    from the point nearest the origin, so every prefix of the result covers
    the plane.

    Returns:
        Tensor: ``[num_points, 2]`` in ``(x, y)`` order.
    """
    if num_points > pool_size:
        raise ValueError(f'cannot pick {num_points} points from a pool of '
                         f'{pool_size}')
    gen = torch.Generator().manual_seed(seed)
    # on the CPU whatever the default device (e.g. a meta-device build)
    pool = (torch.rand(
        pool_size, 2, generator=gen, dtype=torch.float64, device='cpu') * 2 -
            1) * coord_range
    picked = [int(pool.norm(dim=1).argmin())]
    dist = (pool - pool[picked[0]]).norm(dim=1)
    for _ in range(num_points - 1):
        nxt = int(dist.argmax())
        picked.append(nxt)
        dist = torch.minimum(dist, (pool - pool[nxt]).norm(dim=1))
    return pool[picked].float()


class AxialRoPE2D(nn.Module):
    """Angle tables of the axial 2D RoPE.

    Training-time augmentation of the patch coordinates follows the authors'
    order, one draw per batch: ``coords + shift`` (``U(-shift, shift)`` per
    axis), then each axis times its own ``exp(U(-ln J, ln J))`` when a jitter
    ``J`` is set, then both axes times one ``exp(U(-ln R, ln R))``, so the
    effective shift grows with the rescale.

    Args:
        head_dim (int): Channels per head, divisible by 4.
        base (float): Period base. Defaults to 100.
        zero_freq_ratio (float): Fraction ``p`` of frequencies (per axis) set
            to zero, taken from the low-frequency end. Defaults to 0.125.
        shift (float): Training-time patch coordinate shift bound; 0 turns
            it off. Defaults to 0.08.
        rescale (float): Training-time isotropic rescale bound ``R`` (factor
            in ``[1 / R, R]``, log-uniform); 1 turns it off. Defaults to 2.0.
        jitter (float, optional): Training-time per-axis rescale bound ``J``
            (off in the released models). Defaults to None.
    """

    def __init__(self,
                 head_dim: int,
                 base: float = 100.0,
                 zero_freq_ratio: float = 0.125,
                 shift: float = 0.08,
                 rescale: float = 2.0,
                 jitter: Optional[float] = None) -> None:
        super().__init__()
        if head_dim % 4 != 0:
            raise ValueError(f'RoPE needs head_dim divisible by 4, got '
                             f'{head_dim}')
        for name, value in (('rescale', rescale), ('jitter', jitter)):
            if value is not None and value < 1:
                raise ValueError(f'RoPE {name} must be >= 1 (a factor '
                                 f'bound), got {value}')
        if shift < 0:
            raise ValueError(f'RoPE shift must be >= 0, got {shift}')
        num_freqs = head_dim // 4
        idx = torch.arange(num_freqs, dtype=torch.float64)
        periods = base**(2 * idx / (head_dim // 2))
        num_zero = round(zero_freq_ratio * num_freqs)
        omega = 2 * math.pi / periods
        if num_zero > 0:
            omega[num_freqs - num_zero:] = 0.0
        self.register_buffer('omega', omega.float(), persistent=False)
        self.head_dim = head_dim
        self.base = base
        self.zero_freq_ratio = zero_freq_ratio
        self.shift = shift
        self.rescale = rescale
        self.jitter = jitter
        self._patch_cache: Dict[tuple, Tensor] = {}

    def settings(self) -> Dict[str, Optional[float]]:
        """The settings a checkpoint must agree with (see ``EACViT``)."""
        return dict(
            base=float(self.base),
            zero_freq_ratio=float(self.zero_freq_ratio),
            shift=float(self.shift),
            rescale=float(self.rescale),
            jitter=None if self.jitter is None else float(self.jitter))

    def tables(self, coords: Tensor) -> Tensor:
        """Complex rotations ``[..., head_dim / 2]`` for ``[..., 2]`` coords.

        Entry ``k < head_dim / 4`` rotates pair ``k`` by the x angle of
        frequency ``k``; entry ``head_dim / 4 + k`` by the y angle.
        """
        angles = coords.unsqueeze(-1).float() * self.omega  # [..., 2, F]
        return torch.polar(torch.ones_like(angles), angles).flatten(-2)

    @staticmethod
    def patch_coords(h: int, w: int, device: torch.device) -> Tensor:
        """Cell-centre coordinates ``[h * w, 2]`` (x, y), row-major."""
        ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
        xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
        grid_y, grid_x = torch.meshgrid(ys * 2 - 1, xs * 2 - 1, indexing='ij')
        return torch.stack([grid_x, grid_y], dim=-1).flatten(0, 1)

    def draw_augmentation(
            self,
            generator: Optional[torch.Generator] = None) -> Dict[str, Tensor]:
        """One batch's augmentation draws (CPU float32 tensors).

        Returns:
            dict: ``shift`` [2], ``jitter`` [2] and ``scale`` [1]
            (multiplicative factors; ones where the setting is off). Drawn in
            that order from ``generator`` (the global RNG when None or while
            ``torch.compile`` traces, which cannot take a generator).
        """
        if torch.compiler.is_compiling():
            generator = None

        def uniform(n: int, bound: float) -> Tensor:
            return (torch.rand(n, generator=generator) * 2 - 1) * bound

        shift = uniform(2, self.shift) if self.shift else torch.zeros(2)
        jitter, scale = torch.ones(2), torch.ones(1)
        if self.jitter is not None and self.jitter > 1:
            jitter = uniform(2, math.log(self.jitter)).exp()
        if self.rescale is not None and self.rescale > 1:
            scale = uniform(1, math.log(self.rescale)).exp()
        return dict(shift=shift, jitter=jitter, scale=scale)

    @staticmethod
    def augment_coords(coords: Tensor, draws: Dict[str, Tensor]) -> Tensor:
        """``(coords + shift) * jitter * scale`` (the authors' order)."""
        dev = coords.device
        return ((coords + draws['shift'].to(dev)) * draws['jitter'].to(dev) *
                draws['scale'].to(dev))

    def patch_tables(self,
                     h: int,
                     w: int,
                     device: torch.device,
                     augment: bool = False,
                     generator: Optional[torch.Generator] = None) -> Tensor:
        """Patch rotations ``[h * w, head_dim / 2]`` (complex).

        Without ``augment`` they are computed once per ``(h, w, device)`` and
        cached. With ``augment`` (training) the coordinates get one draw of
        :meth:`draw_augmentation` for the whole batch.
        """
        if not augment:
            key = (h, w, str(device), self.omega.device)
            if key not in self._patch_cache:
                self._patch_cache[key] = self.tables(
                    self.patch_coords(h, w, device))
            return self._patch_cache[key]
        coords = self.augment_coords(
            self.patch_coords(h, w, device), self.draw_augmentation(generator))
        return self.tables(coords)

    def _apply(self, fn, recurse=True):
        self._patch_cache = {}
        return super()._apply(fn, recurse)
