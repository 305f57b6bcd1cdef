"""EACDistiller: losses, frozen teacher, checkpoints that load into the
downstream configs, multi-resolution batches, bad input and the distillation
demo chain (budgets under DDP: ``test_distributed.py``)."""
import copy
import json
import math
import os
import os.path as osp
import subprocess

import pytest
import torch
from _tool_helpers import REPO, load_tool, tool_env
from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import get_state_dict, save_checkpoint
from torch.nn import functional as F

import mmeac  # noqa: F401
from mmeac.models.distillers import (EACDistiller, cosine_distill_loss,
                                     mse_distill_loss)

DEMO_TEACHER = 'configs/demo/vit-micro_1xb32-600it_builtin-imagenet-64px.py'
DEMO_DISTILL = \
    'configs/demo/distill_eac-micro_vit-teacher_builtin-imagenet-64px.py'
DEMO_PROBE = \
    'configs/demo/linear-probe_eac-micro_1xb32-300it_builtin-imagenet-64px.py'

#: The demo's teacher (a patch-8 ViT giving all its tokens) and student (a
#: patch-8 EAC with 32 cores), shrunk for unit tests.
_DEMO_MODEL = Config.fromfile(osp.join(REPO, DEMO_DISTILL)).model
TEACHER = dict(
    _DEMO_MODEL.teacher.to_dict(),
    arch=dict(
        embed_dims=24, num_layers=1, num_heads=2, feedforward_channels=48),
    img_size=32)
STUDENT = dict(
    _DEMO_MODEL.backbone.to_dict(),
    arch=dict(embed_dims=16, num_layers=2, num_heads=1, mlp_ratio=2.0))


def _save_teacher(path, cfg=TEACHER, seed=0):
    """A whole-model (``backbone.*``) teacher checkpoint, as mmpretrain
    classifiers save them."""
    from mmpretrain.registry import MODELS
    torch.manual_seed(seed)
    teacher = MODELS.build(dict(copy.deepcopy(cfg), _scope_='mmpretrain'))
    state = {f'backbone.{k}': v for k, v in teacher.state_dict().items()}
    torch.save(dict(state_dict=state), path)
    return teacher


@pytest.fixture(scope='module')
def teacher_ckpt(tmp_path_factory):
    path = str(tmp_path_factory.mktemp('teacher') / 'teacher.pth')
    _save_teacher(path)
    return path


def _distiller(ckpt, **kwargs):
    cfg = dict(
        backbone=copy.deepcopy(STUDENT),
        teacher=copy.deepcopy(TEACHER),
        teacher_ckpt=ckpt,
        input_size=32)
    cfg.update(kwargs)
    model = EACDistiller(**cfg)
    model.init_weights()
    return model


# ------------------------------------------------------------------ losses
def test_losses_against_hand_computed_values():
    s = torch.tensor([[1., 0.], [1., 1.], [2., 0.]])
    t = torch.tensor([[0., 1.], [1., 0.], [-1., 0.]])
    # 1 - cos: 1, 1 - 1/sqrt(2), 2
    want = (1 + (1 - 1 / math.sqrt(2)) + 2) / 3
    assert cosine_distill_loss(s, t).item() == pytest.approx(want, abs=1e-6)
    # squared errors: (1 + 1) + (0 + 1) + (9 + 0) over 6 elements
    assert mse_distill_loss(s, t).item() == pytest.approx(12 / 6, abs=1e-6)
    with pytest.raises(ValueError, match='differ'):
        cosine_distill_loss(s, t[:2])


def test_distiller_losses_weights_and_projection(teacher_ckpt):
    model = _distiller(
        teacher_ckpt,
        cls_loss_weight=2.0,
        patch_cos_weight=0.5,
        patch_mse_weight=3.0)
    model.eval()  # fixed budget (num_cores): the same forward twice
    assert isinstance(model.proj, torch.nn.Linear)
    assert (model.proj.in_features, model.proj.out_features) == (16, 24)
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    losses = model.loss(x)
    assert float(losses['num_cores']) == 32

    # by hand: teacher tokens [CLS; 4x4 patches], student map + global
    tokens = model.teacher(x)[0]
    t_cls, t_patch = tokens[:, 0], tokens[:, 1:]
    fmap, glob = model.backbone(x)[-1]
    s_patch = model.proj(fmap.flatten(2).transpose(1, 2))
    s_cls = model.proj(glob)
    cls_cos = (1 - F.cosine_similarity(s_cls, t_cls, dim=-1)).mean()
    p_cos = (1 - F.cosine_similarity(s_patch, t_patch, dim=-1)).mean()
    p_mse = ((s_patch - t_patch)**2).mean()
    torch.testing.assert_close(losses['loss_cls_cos'], 2.0 * cls_cos)
    torch.testing.assert_close(losses['loss_patch_cos'], 0.5 * p_cos)
    torch.testing.assert_close(losses['loss_patch_mse'], 3.0 * p_mse)


def test_patch_grid_alignment(tmp_path, teacher_ckpt):
    # a patch-16 teacher: a 2x2 grid against the student's 4x4 at 32 px
    t16 = dict(TEACHER, patch_size=16)
    path = str(tmp_path / 't16.pth')
    teacher = _save_teacher(path, t16)
    model = _distiller(path, teacher=t16, input_size=[32, (32, 64)])
    x = torch.randn(1, 3, 32, 64)
    glob, fmap = model.teacher_features(x, (4, 8))
    tokens = teacher(x)[0]
    grid = tokens[:, 1:].transpose(1, 2).reshape(1, 24, 2, 4)
    want = F.interpolate(
        grid, size=(4, 8), mode='bilinear', align_corners=False)
    torch.testing.assert_close(fmap, want)
    torch.testing.assert_close(glob, tokens[:, 0])

    # teacher_patch_size: the teacher sees 4*16 x 8*16 px, grids equal
    model = _distiller(
        path, teacher=t16, teacher_patch_size=16, input_size=[(32, 64)])
    _, fmap = model.teacher_features(x, (4, 8))
    big = F.interpolate(
        x, size=(64, 128), mode='bicubic', align_corners=False, antialias=True)
    tokens = teacher(big)[0]
    torch.testing.assert_close(
        fmap, tokens[:, 1:].transpose(1, 2).reshape(1, 24, 4, 8))


# ---------------------------------------------------------- frozen teacher
def test_teacher_frozen_bit_identical_no_grad(teacher_ckpt):
    model = _distiller(teacher_ckpt)
    before = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    assert not any(p.requires_grad for p in model.teacher.parameters())
    # weight decay on every parameter, as a careless optimizer would do
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.5)
    model.train()
    assert model.backbone.training and not model.teacher.training
    student_before = model.backbone.layers[0].attn.qkv.weight.clone()
    for step in range(3):
        losses = model.loss(torch.randn(2, 3, 32, 32))
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is None for p in model.teacher.parameters())
        opt.step()
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert not torch.equal(model.backbone.layers[0].attn.qkv.weight,
                           student_before)
    # checkpoints leave the teacher out and still load strictly
    state = get_state_dict(model)
    assert not any(k.startswith('teacher.') for k in state)
    assert any(k.startswith('backbone.') for k in state)
    assert 'proj.weight' in state
    fresh = _distiller(teacher_ckpt)
    fresh.load_state_dict(state, strict=True)
    for key, value in fresh.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key


# ------------------------------------------- checkpoints into downstream
DOWNSTREAM = [
    'configs/eac/upernet_eac-b_ade20k-1024.py',
    'configs/eac/mask-rcnn_eac-b_sfp_8xb8-lsj-100e_coco-1024.py',
    'configs/eac/linear-probe_eac-b_8xb16-12.5k_in1k-256px.py',
]


@pytest.fixture(scope='module')
def eac_b_distill_ckpt(tmp_path_factory, teacher_ckpt):
    """A distillation checkpoint of an EAC-B student (as the Runner saves)."""
    out = tmp_path_factory.mktemp('distill_b')
    torch.manual_seed(3)
    model = _distiller(
        teacher_ckpt, backbone=dict(type='EACViT', arch='b'), input_size=32)
    path = str(out / 'iter_1.pth')
    save_checkpoint(dict(state_dict=get_state_dict(model)), path)
    return path, model.backbone.state_dict()


@pytest.mark.parametrize('config', DOWNSTREAM)
def test_student_checkpoint_loads_downstream(config, eac_b_distill_ckpt):
    from mmengine.registry import MODELS
    path, student = eac_b_distill_ckpt
    cfg = Config.fromfile(osp.join(REPO, config))
    backbone_cfg = copy.deepcopy(cfg.model.backbone)
    assert backbone_cfg.type == 'EACViT'
    backbone_cfg.init_cfg = dict(type='Pretrained', checkpoint=path)
    scope = cfg.get('default_scope', 'mmpretrain')
    with DefaultScope.overwrite_default_scope(scope):
        backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    loaded = backbone.state_dict()
    assert set(loaded) == set(student)
    for key, value in student.items():
        assert torch.equal(loaded[key], value), key
    # the explicit prefix works as well
    backbone_cfg.init_cfg = dict(
        type='Pretrained', checkpoint=path, prefix='backbone.')
    with DefaultScope.overwrite_default_scope(scope):
        backbone = MODELS.build(backbone_cfg)
    backbone.init_weights()
    assert torch.equal(backbone.state_dict()['core_chunks.0'],
                       student['core_chunks.0'])


# ------------------------------------------------------------------ configs
def test_full_configs(tmp_path):
    b = Config.fromfile(
        osp.join(
            REPO,
            'configs/eac/distill_eac-b_vit-b-teacher_8xb128-in1k-256px.py'))
    s = Config.fromfile(
        osp.join(
            REPO,
            'configs/eac/distill_eac-s_vit-b-teacher_8xb128-in1k-256px.py'))
    assert b.default_scope == 'mmpretrain'
    assert b.model.type == 'EACDistiller'
    assert (b.model.backbone.arch, s.model.backbone.arch) == ('b', 's')
    assert b.train_dataloader.batch_size == 128
    assert b.optim_wrapper.optimizer.type == 'AdamW'
    assert [p.type
            for p in b.param_scheduler] == ['LinearLR', 'CosineAnnealingLR']
    # the teacher geometry of the config: patch 14 at 224 px for a patch 16
    # student at 256 px, equal grids; a small teacher of that geometry
    teacher = dict(
        b.model.teacher,
        arch=dict(
            embed_dims=32, num_layers=1, num_heads=2, feedforward_channels=64))
    path = str(tmp_path / 't14.pth')
    _save_teacher(path, teacher)
    cfg = dict(b.model)
    cfg.pop('type')
    cfg.update(
        teacher=teacher,
        teacher_ckpt=path,
        backbone=dict(STUDENT, patch_size=16))
    model = EACDistiller(**cfg)
    assert isinstance(model.proj, torch.nn.Linear)  # 16 -> 32
    glob, fmap = model.teacher_features(torch.randn(1, 3, 256, 256), (16, 16))
    assert fmap.shape == (1, 32, 16, 16) and glob.shape == (1, 32)


def test_multires_config_cycles_sizes(tmp_path):
    from mmengine.runner import Runner

    from mmeac.testing import make_imagenet
    root = make_imagenet(str(tmp_path), size=48, num_train=12, num_val=2)
    cfg = Config.fromfile(
        osp.join(
            REPO, 'configs/eac/distill-ft_eac-b_vit-b-teacher_8xb-multires-'
            '256-512-768_in1k.py'))
    assert cfg.model.input_size == [256, 512, 768]
    loader_cfg = copy.deepcopy(cfg.train_dataloader)
    loader_cfg.dataset.dataset.data_root = root
    loader_cfg.update(num_workers=0, persistent_workers=False)
    loader_cfg.batch_sampler.batch_sizes = [3, 2, 1]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        loader = Runner.build_dataloader(dict(loader_cfg), seed=0)
        shapes = []
        for i, batch in zip(range(6), loader):
            shapes.append(tuple(batch['inputs'].shape))
    assert shapes == [(3, 3, 256, 256), (2, 3, 512, 512), (1, 3, 768, 768)] * 2
    assert len(loader.batch_sampler) == 6  # 12 images: 3 + 2 + 1, twice


# --------------------------------------------------------------- bad input
@pytest.fixture(scope='module')
def demo_data(tmp_path_factory):
    from mmeac.testing import make_imagenet
    out = tmp_path_factory.mktemp('demo_data')
    return make_imagenet(str(out), size=72, num_train=12, num_val=6)


@pytest.fixture(scope='module')
def train_tool():
    """``tools/train.py`` imported in-process (its ``main(argv)``)."""
    return load_tool('tools/train.py')


@pytest.mark.parametrize(
    'opts, message',
    [
        # a checkpoint of a narrower teacher than the teacher config
        (['model.teacher.arch.embed_dims=48'], 'does not fit the teacher'),
        # widths differ, no projection allowed
        (['model.proj=none'], 'differ but proj'),
        # a teacher that only gives its CLS token: no patch tokens to align
        (['model.teacher.out_type=cls_token'], 'gives no patch tokens'),
        # a budget the 32-core student does not have
        (['model.backbone.train_budgets=[8,12]'], 'not a core budget'),
    ])
def test_bad_input_one_line_nothing_written(tmp_path, demo_data, train_tool,
                                            capsys, opts, message):
    teacher_cfg = dict(TEACHER, img_size=64)
    path = str(tmp_path / 'teacher.pth')
    _save_teacher(path, teacher_cfg)
    before = sorted(os.listdir(tmp_path))
    arch = teacher_cfg['arch']
    work_dir = str(tmp_path / 'wd')
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        train_tool.main([
            osp.join(REPO, DEMO_DISTILL), '--work-dir', work_dir,
            '--cfg-options', f'train_dataloader.dataset.data_root={demo_data}',
            f'model.teacher_ckpt={path}',
            f'model.teacher.arch.embed_dims={arch["embed_dims"]}',
            f'model.teacher.arch.num_layers={arch["num_layers"]}',
            f'model.teacher.arch.num_heads={arch["num_heads"]}',
            'model.teacher.arch.feedforward_channels='
            f'{arch["feedforward_channels"]}', *opts
        ])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    # `<prog>: error: model: ...` (prog is pytest's argv[0] in-process)
    assert ': error: model' in lines[0] and message in lines[0], lines[0]
    assert sorted(os.listdir(tmp_path)) == before  # nothing written


# ------------------------------------------------------------- demo chain
def test_demo_chain_end_to_end(tmp_path):
    out = tmp_path / 'out'
    env = tool_env(
        dict(
            MMEAC_DISTILL_DEMO_DIR=str(out),
            MMEAC_DISTILL_DEMO_DATA=str(tmp_path / 'data'),
            MMEAC_DISTILL_DEMO_NUM_TRAIN='8',
            MMEAC_DISTILL_DEMO_NUM_VAL='4',
            # one iteration per stage: each trains, saves and hands on
            MMEAC_DISTILL_DEMO_TEACHER_ITERS='1',
            MMEAC_DISTILL_DEMO_DISTILL_ITERS='1',
            MMEAC_DISTILL_DEMO_PROBE_ITERS='1',
            MMEAC_DISTILL_DEMO_BUDGETS='8'))
    script = osp.join(REPO, 'tools', 'run_distill_demo.sh')
    res = subprocess.run(['bash', script, '--no-setup'],
                         cwd=REPO,
                         env=env,
                         capture_output=True,
                         text=True,
                         timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    summary = json.loads((out / 'metrics.json').read_text())
    assert set(summary['top1']) == {'8'}
    for row in summary['top1'].values():
        assert set(row) == {'distilled', 'random'}
        assert all(0 <= v <= 100 for v in row.values())
    assert osp.isfile(summary['student_checkpoint'])
    # the distilled checkpoint holds the student, not the teacher
    state = torch.load(
        summary['student_checkpoint'], map_location='cpu',
        weights_only=False)['state_dict']
    assert not any(k.startswith('teacher.') for k in state)
    # the probes ran at the budget they were given
    log = (out / 'probe_distilled_c8.log').read_text()
    assert 'EACViT: loaded' in log
    assert "'num_cores': 8" in log or 'num_cores=8' in log

    # a second run replaces its own results; a foreign directory is refused
    foreign = tmp_path / 'foreign'
    foreign.mkdir()
    (foreign / 'keep.txt').write_text('mine')
    res = subprocess.run(['bash', script, '--no-setup'],
                         cwd=REPO,
                         env=dict(env, MMEAC_DISTILL_DEMO_DIR=str(foreign)),
                         capture_output=True,
                         text=True,
                         timeout=60)
    assert res.returncode == 1
    assert 'not made by this script' in res.stderr
    assert sorted(os.listdir(foreign)) == ['keep.txt']


def test_eac_teacher_pair_output(tmp_path):
    """Any backbone can teach: here an EACViT giving [patch map, global]."""
    from mmpretrain.registry import MODELS
    t_cfg = dict(
        STUDENT,
        arch=dict(STUDENT['arch'], embed_dims=32),
        output_cls_token=True)
    torch.manual_seed(0)
    teacher = MODELS.build(t_cfg)
    path = str(tmp_path / 'eac_teacher.pth')
    torch.save(dict(state_dict=teacher.state_dict()), path)
    model = _distiller(path, teacher=t_cfg)
    teacher.eval()
    x = torch.randn(2, 3, 32, 32)
    glob, fmap = model.teacher_features(x, (4, 4))
    t_map, t_glob = teacher(x)[-1]
    torch.testing.assert_close(fmap, t_map)
    torch.testing.assert_close(glob, t_glob)
    assert (model.proj.in_features, model.proj.out_features) == (16, 32)


def test_unalignable_grids_and_bad_sampler_args(teacher_ckpt):
    from mmeac.datasets import (MultiResolutionBatchSampler,
                                MultiResolutionDataset)
    model = _distiller(teacher_ckpt)
    # a 4x4 teacher grid cannot be stretched onto a 4x8 student grid
    with pytest.raises(ValueError, match='different aspect ratios'):
        model._align(torch.zeros(1, 24, 4, 4), (4, 8), (32, 64))
    # within 15 %: interpolated
    assert model._align(torch.zeros(1, 24, 9, 10), (4, 4),
                        (32, 32)).shape == (1, 24, 4, 4)
    with pytest.raises(ValueError, match='one positive int per resolution'):
        MultiResolutionBatchSampler(
            range(8), 2, resolutions=[32, 64], batch_sizes=[2])
    with pytest.raises(ValueError, match='non-empty list'):
        MultiResolutionDataset([], resolutions=[], pipeline=[])
    sampler = MultiResolutionBatchSampler(
        range(7), 2, resolutions=[32, 64], batch_sizes=[3, 1], drop_last=False)
    batches = list(sampler)
    assert batches == [[(0, 32), (1, 32), (2, 32)], [(3, 64)],
                       [(4, 32), (5, 32), (6, 32)]]
    assert len(sampler) == 3
