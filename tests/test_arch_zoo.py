"""``EACViT.arch_zoo``: named architectures with aliases, as mmpretrain's."""
import pytest
import torch
from mmengine.registry import MODELS

from mmeac.models import EACViT

EXPECTED = {
    ('s', 'small'): (384, 12, 6, 2.66667),
    ('s+', 'small-plus'): (384, 12, 6, 4.0),
    ('b', 'base'): (768, 12, 12, 2.66667),
    ('l', 'large'): (1024, 24, 16, 2.66667),
}
KEYS = ('embed_dims', 'num_layers', 'num_heads', 'mlp_ratio')


def test_every_name_and_alias_is_in_the_zoo():
    assert set(EACViT.arch_zoo) == {n for names in EXPECTED for n in names}
    for names, want in EXPECTED.items():
        for name in names:
            got = EACViT.arch_zoo[name]
            assert tuple(got[k] for k in KEYS) == want, name


@pytest.mark.parametrize('short,alias', [('s', 'small'), ('s+', 'Small-Plus'),
                                         ('b', 'BASE')])
def test_alias_builds_the_same_model(short, alias):
    torch.manual_seed(0)
    a = EACViT(arch=short, max_cores=16).eval()
    torch.manual_seed(0)
    b = MODELS.build(dict(type='EACViT', arch=alias, max_cores=16)).eval()
    assert a.arch_settings == b.arch_settings
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(a(x)[0], b(x)[0], rtol=0, atol=0)


def test_large_alias_parses_like_l():
    model = EACViT(arch=dict(zip(KEYS, (32, 1, 2, 2.0))), max_cores=8)
    assert model._parse_arch('Large') == model._parse_arch('l') == dict(
        zip(KEYS, EXPECTED[('l', 'large')]))


def test_unknown_arch_names_the_choices():
    with pytest.raises(ValueError, match=r"'huge' is not one of .*'base'"):
        EACViT(arch='huge')
