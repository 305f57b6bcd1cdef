"""Classification with EAC: linear probe, fine-tuning and drop-in configs.

Every classification config builds under mmpretrain's scope with the
settings it promises (the paper's linear-probe protocol); a tiny linear
probe trains from a "pretrained" checkpoint, checkpoints, resumes and is
tested through ``tools/train.py`` / ``tools/test.py`` on the built-in
ImageNet data (150 x 110 images) with top-1 from mmpretrain's Accuracy
checked against the dumped predictions, leaving the backbone bit-identical;
the tiny fine-tuning recipe trains with nested dropout; the core budget is
overridable and a budget the model lacks is a clear error.
"""
import glob
import os
import os.path as osp
import pickle
import re

import numpy as np
import pytest
import torch
from _tool_helpers import (build_model, check_resumed, command_ok, config_file,
                           fresh_runner_state, load_cfg, load_ckpt,
                           load_mmeac_cfg, make_data, plain, predict,
                           resolve_config_path, tool_error, train_then_resume)
from mmengine.hooks import Hook

from mmeac.testing import make_imagenet

PROBE_DEMO = config_file(
    'demo', 'linear-probe_eac-tiny_1xb4-4it_builtin-in1k-64px.py')
FT_DEMO = config_file('demo', 'eac-tiny_1xb4-ft-4it_builtin-in1k-64px.py')
PROBE = {
    a: config_file('eac', f'linear-probe_eac-{a}_8xb16-12.5k_in1k-256px.py')
    for a in 'sbl'
}
FT = config_file('eac', 'eac-b_8xb128-ft-100e_in1k-256px.py')
DROPIN = config_file('dropin', 'eac-b_64xb64_in1k-384px.py')
# the distillation configs build their frozen teacher from its checkpoint:
# tests/test_distill.py::test_full_configs builds them with a stand-in one
CLS_CONFIGS = sorted(
    p for p in glob.glob(config_file('eac', '*in1k*.py')) +
    glob.glob(config_file('dropin', '*in1k*.py')) +
    glob.glob(config_file('demo', '*in1k*.py'))
    if not osp.basename(p).startswith('distill'))
TINY = dict(embed_dims=64, num_layers=2, num_heads=4, mlp_ratio=2.0)


# ----------------------------------------------------------------- helpers
def _predict(model, cfg, img: np.ndarray):
    steps = [
        dict(s) for s in cfg.test_pipeline if s['type'] != 'LoadImageFromFile'
    ]  # the image is given
    return predict(
        model, steps,
        dict(img=img, img_shape=img.shape[:2], ori_shape=img.shape[:2]))


# ---------------------------------------------------------------- fixtures
@pytest.fixture(scope='module')
def cls_base(tmp_path_factory):
    """Built-in ImageNet data under ``data/imagenet`` and a tiny checkpoint.

    The checkpoint plays the pretrained backbone: a config inheriting the
    demo probe loads it through ``init_cfg``.
    """
    from mmeac.models import EACViT
    base = make_data(
        tmp_path_factory,
        make_imagenet,
        size='150x110',
        num_train=12,
        num_val=6)[0]
    torch.manual_seed(123)
    backbone = EACViT(arch=TINY, max_cores=16)
    backbone.init_weights()
    os.makedirs(osp.join(base, 'checkpoints'))
    ckpt = osp.join(base, 'checkpoints', 'eac-tiny.pth')
    torch.save({'state_dict': backbone.state_dict()}, ckpt)
    config = osp.join(base, 'probe_pretrained.py')
    with open(config, 'w') as f:
        f.write(
            f'_base_ = {PROBE_DEMO!r}\n'
            'model = dict(backbone=dict(init_cfg=dict(_delete_=True,\n'
            "    type='Pretrained', checkpoint='checkpoints/eac-tiny.pth')))\n"
        )
    return dict(
        base=base,
        ckpt=ckpt,
        config=config,
        weights={
            k: v.clone()
            for k, v in backbone.state_dict().items()
        })


@pytest.fixture(scope='module')
def probe_run(cls_base):
    """Train 2 iterations (as a command: the CLI smoke test of
    classification training), then resume to 4 (validation at 4)."""
    return train_then_resume(cls_base['config'], cls_base['base'])


# ------------------------------------------------------------------ configs
def test_all_cls_configs_found():
    names = {osp.basename(p) for p in CLS_CONFIGS}
    expected = [*PROBE.values(), FT, DROPIN, PROBE_DEMO, FT_DEMO]
    assert {osp.basename(p) for p in expected} <= names


@pytest.mark.parametrize('path', CLS_CONFIGS, ids=osp.basename)
def test_cls_config_builds(path):
    cfg = load_mmeac_cfg(path, 'mmpretrain')
    model = build_model(cfg, meta=True)
    assert type(model).__name__ == 'ImageClassifier'
    assert type(model.backbone).__name__ == 'EACViT'
    assert model.backbone.out_type in ('cls_token', 'avg_featmap')
    assert model.head.in_channels == model.backbone.embed_dims
    assert cfg.val_evaluator.type == 'Accuracy'
    x = torch.empty(2, 3, 80, 48, device='meta')
    model.eval()
    with torch.no_grad():
        assert model(x, mode='tensor').shape == (2, model.head.num_classes)


@pytest.mark.parametrize('arch', 'sbl')
def test_linear_probe_protocol(arch):
    """The paper's probe: frozen eval-mode backbone, global token, SGD
    momentum 0.9, lr 0.05, no weight decay, cosine, batch 128, 12.5k steps,
    256 px."""
    from mmengine.optim import build_optim_wrapper
    cfg = load_cfg(PROBE[arch])
    bb = cfg.model.backbone
    assert bb.init_cfg == dict(
        type='Pretrained', checkpoint=f'checkpoints/eac-{arch}_veca.pth')
    assert cfg.model.head.type == 'LinearClsHead' and cfg.model.neck is None
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.momentum, opt.weight_decay) == ('SGD', 0.05,
                                                                  0.9, 0.0)
    [sched] = cfg.param_scheduler
    assert sched.type == 'CosineAnnealingLR' and sched.T_max == 12500
    assert sched.by_epoch is False and sched.eta_min == 0.0
    assert cfg.train_cfg.type == 'IterBasedTrainLoop'
    assert cfg.train_cfg.max_iters == 12500
    assert cfg.train_dataloader.batch_size * 8 == 128
    assert cfg.auto_scale_lr.base_batch_size == 128
    crop = {s['type']: s for s in cfg.train_pipeline}['RandomResizedCrop']
    assert crop['scale'] == 256
    assert {
        s['type']: s
        for s in cfg.test_pipeline
    }['CenterCrop']['crop_size'] == 256
    assert cfg.train_dataloader.dataset.data_root == 'data/imagenet'
    model = build_model(cfg, meta=True)
    assert model.backbone.frozen_stages == model.backbone.num_layers
    assert not any(p.requires_grad for p in model.backbone.parameters())
    model.train()
    assert not model.backbone.training  # frozen backbone stays in eval mode
    assert model.head.training
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    trained = {
        id(p)
        for g in wrapper.optimizer.param_groups
        for p in g['params'] if p.requires_grad
    }
    assert trained == {id(p) for p in model.head.parameters()}


def test_finetune_recipe():
    from mmengine.optim import build_optim_wrapper
    cfg = load_cfg(FT)
    assert cfg.find_unused_parameters is True
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.optim_wrapper.constructor == 'LayerDecayOptimWrapperConstructor'
    assert cfg.train_dataloader.batch_size == 128
    assert {
        s['type']: s
        for s in cfg.test_pipeline
    }['CenterCrop']['crop_size'] == 256
    model = build_model(cfg, meta=True)
    assert model.backbone.frozen_stages == -1
    assert model.backbone.train_num_cores is None  # nested dropout on
    assert all(p.requires_grad for p in model.parameters())
    augs = [
        type(a).__name__
        for a in model.data_preprocessor.batch_augments.augments
    ]
    assert augs == ['Mixup', 'CutMix']
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = wrapper.optimizer.param_groups
    lr_of = {id(p): g['lr'] for g in groups for p in g['params']}
    base = cfg.optim_wrapper.optimizer.lr
    assert lr_of[id(model.head.fc.weight)] == pytest.approx(base)
    assert lr_of[id(model.backbone.patch_embed.proj.weight)] == \
        pytest.approx(base * 0.65**13)


def test_dropin_swaps_only_backbone():
    upstream = load_cfg(
        resolve_config_path(
            'mmpretrain::vision_transformer/vit-base-p16_64xb64_in1k-384px.py')
    )
    cfg = load_cfg(DROPIN)
    assert plain(cfg.model.head) == plain(upstream.model.head)
    for key in ('train_dataloader', 'val_evaluator', 'optim_wrapper',
                'param_scheduler', 'train_cfg', 'data_preprocessor'):
        assert plain(cfg[key]) == plain(upstream[key]), key
    assert cfg.model.backbone.type == 'EACViT'


# ------------------------------------------------------- direct model checks
def test_any_image_size_and_budgets():
    cfg = load_cfg(PROBE_DEMO)
    model = build_model(cfg)
    for h, w in ((45, 170), (150, 110), (300, 17)):
        img = np.random.RandomState(w).randint(0, 255, (h, w, 3), np.uint8)
        sample, data = _predict(model, cfg, img)
        assert tuple(data['inputs'].shape) == (3, 64, 64)
        assert sample.pred_score.shape == (1000, )
        assert 0 <= int(sample.pred_label) < 1000
        assert model.backbone.last_num_cores == 16
    # the probe's frozen backbone runs at the budget asked for
    cfg8 = load_cfg(PROBE_DEMO, {'model.backbone.num_cores': 8})
    model8 = build_model(cfg8)
    model8.train()
    data = model8.data_preprocessor(
        dict(
            inputs=[torch.zeros(3, 64, 64, dtype=torch.uint8)] * 2,
            data_samples=None), True)
    model8.extract_feat(data['inputs'])
    assert model8.backbone.last_num_cores == 8
    with pytest.raises(ValueError, match=r'num_cores=20 .*\[8, 16\]'):
        build_model(load_cfg(PROBE_DEMO, {'model.backbone.num_cores': 20}))


def test_finetune_demo_trains_with_nested_dropout(cls_base, tmp_path):
    from mmengine.runner import Runner
    cfg = load_cfg(
        FT_DEMO, {
            'train_cfg.val_interval': 100,
            'default_hooks.checkpoint.interval': 100,
            'randomness.seed': 0,
        })
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = osp.join(cls_base['base'], 'data',
                                                 'imagenet')
    cfg.work_dir = str(tmp_path)
    budgets = []
    with fresh_runner_state():
        runner = Runner.from_cfg(cfg)
        runner.register_hook(_BudgetRecorder(budgets), 'LOW')
        runner.train()
    assert runner.iter == 4 and len(budgets) == 4
    assert set(budgets) <= {8, 16}
    losses = runner.message_hub.get_scalar('train/loss').data[0]
    assert np.all(np.isfinite(losses))


class _BudgetRecorder(Hook):
    """Hook recording the backbone's core budget after each train step."""

    def __init__(self, out):
        self.out = out

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None):
        model = runner.model.module if hasattr(runner.model,
                                               'module') else runner.model
        self.out.append(model.backbone.last_num_cores)


# -------------------------------------------------------------------- tools
def test_probe_train_and_resume(probe_run):
    ck2, ck4 = check_resumed(probe_run)
    assert 'accuracy/top1:' in probe_run['text_b']
    # the head trained between the checkpoints (SGD momentum resumed)
    assert not torch.equal(ck2['state_dict']['head.fc.weight'],
                           ck4['state_dict']['head.fc.weight'])
    momenta = ck4['optimizer']['state']
    assert momenta and all('momentum_buffer' in s for s in momenta.values())


def test_probe_leaves_backbone_bit_identical(probe_run, cls_base):
    initial = cls_base['weights']
    for name in ('iter_2.pth', 'iter_4.pth'):
        state = load_ckpt(osp.join(probe_run['work_dir'], name))['state_dict']
        backbone = {
            k[len('backbone.'):]: v
            for k, v in state.items() if k.startswith('backbone.')
        }
        assert set(backbone) == set(initial)
        for key, value in initial.items():
            assert torch.equal(backbone[key], value), key
    # only the backbone is frozen: the optimizer holds the head alone
    ck4 = load_ckpt(osp.join(probe_run['work_dir'], 'iter_4.pth'))
    assert len(ck4['optimizer']['state']) == 2  # head.fc weight and bias


def test_test_tool_top1_at_another_budget(probe_run, cls_base):
    """tools/test.py as a command (the CLI smoke test of testing)."""
    base = cls_base['base']
    ckpt = osp.join(probe_run['work_dir'], 'iter_4.pth')
    out = osp.join(base, 'cls8.pkl')
    command_ok(base, 'test.py', cls_base['config'], ckpt, '--work-dir',
               osp.join(base, 'test8'), '--out', out, '--cfg-options',
               'model.backbone.num_cores=8')
    with open(out, 'rb') as f:
        result = pickle.load(f)
    top1 = result['metrics']['accuracy/top1']
    preds = result['predictions']
    assert len(preds) == 6
    # top-1 is the share of dumped predictions that hit the label
    root = osp.join(base, 'data', 'imagenet')
    with open(osp.join(root, 'meta', 'val.txt')) as f:
        labels = dict(line.split() for line in f if line.strip())
    hits = [
        int(p['pred_label'][0]) == int(labels['/'.join(p['img_path'].split(
            os.sep)[-2:])]) for p in preds
    ]
    assert top1 == pytest.approx(100.0 * np.mean(hits))
    assert 'accuracy/top5' in result['metrics']


def test_test_tool_rejects_missing_budget(probe_run, cls_base):
    base = cls_base['base']
    bad_out = osp.join(base, 'bad.pkl')
    line = tool_error(base, 'test.py', cls_base['config'],
                      osp.join(probe_run['work_dir'],
                               'iter_4.pth'), '--work-dir',
                      osp.join(base, 'test_bad'), '--out', bad_out,
                      '--cfg-options', 'model.backbone.num_cores=12')
    assert re.search(
        r'error: model.backbone: num_cores=12 is not a core budget'
        r'.*\[8, 16\]', line)
    assert not osp.exists(bad_out)
    assert not osp.exists(osp.join(base, 'test_bad'))
