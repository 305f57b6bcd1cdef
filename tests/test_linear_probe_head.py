"""``LinearProbeSegHead``: patch token ++ global token -> one linear layer."""
import pytest
import torch
from mmengine.registry import MODELS, init_default_scope

import mmeac  # noqa: F401
from mmeac.models import EACViT
from mmeac.models.heads import LinearProbeSegHead

TINY = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)


def test_registered_in_root_and_built_from_mmseg_scope():
    init_default_scope('mmseg')
    head = MODELS.build(
        dict(type='LinearProbeSegHead', in_channels=32, num_classes=5))
    assert isinstance(head, LinearProbeSegHead)


def test_logits_are_a_linear_map_of_patch_and_global():
    torch.manual_seed(0)
    head = LinearProbeSegHead(in_channels=8, num_classes=5)
    head.init_weights()
    featmap, glob = torch.randn(2, 8, 3, 4), torch.randn(2, 8)
    out = head([[featmap, glob]])
    assert out.shape == (2, 5, 3, 4)
    w = head.conv_seg.weight[:, :, 0, 0]  # [5, 16]
    b = head.conv_seg.bias
    for y, x in [(0, 0), (2, 3), (1, 2)]:
        token = torch.cat([featmap[:, :, y, x], glob], dim=1)  # [2, 16]
        torch.testing.assert_close(out[:, :, y, x], token @ w.T + b)
    # no norm, no activation, no dropout: one conv is the only parameter
    assert [n for n, _ in head.named_parameters()
            ] == ['conv_seg.weight', 'conv_seg.bias']
    assert head.dropout is None


def test_global_token_changes_every_pixel():
    head = LinearProbeSegHead(in_channels=8, num_classes=3)
    featmap, glob = torch.randn(1, 8, 2, 2), torch.randn(1, 8)
    a = head([[featmap, glob]])
    b = head([[featmap, glob + 1]])
    assert (a - b).abs().amin() > 0


def test_without_global():
    head = LinearProbeSegHead(in_channels=8, num_classes=3, with_global=False)
    assert head.conv_seg.in_channels == 8
    featmap = torch.randn(1, 8, 2, 2)
    torch.testing.assert_close(
        head([featmap]), head([[featmap, torch.randn(1, 8)]]))


def test_on_eac_backbone_levels():
    backbone = EACViT(
        arch=TINY,
        patch_size=8,
        max_cores=16,
        out_indices=-1,
        output_cls_token=True).eval()
    head = LinearProbeSegHead(in_channels=32, num_classes=150)
    with torch.no_grad():
        out = head(backbone(torch.randn(1, 3, 40, 48)))
    assert out.shape == (1, 150, 5, 6)


def test_bad_input():
    head = LinearProbeSegHead(in_channels=8, num_classes=3)
    with pytest.raises(ValueError, match='output_cls_token=True'):
        head([torch.randn(1, 8, 2, 2)])
    with pytest.raises(ValueError, match=r'\[B, 8, h, w\]'):
        head([[torch.randn(1, 6, 2, 2), torch.randn(1, 6)]])
    with pytest.raises(ValueError, match='global token'):
        head([[torch.randn(1, 8, 2, 2), torch.randn(2, 8)]])
    with pytest.raises(ValueError, match='in_channels must be a positive int'):
        LinearProbeSegHead(in_channels=[8, 8], num_classes=3)
    with pytest.raises(ValueError, match="fixes 'channels'"):
        LinearProbeSegHead(in_channels=8, channels=4, num_classes=3)
