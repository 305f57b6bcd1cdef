"""Bad input through the real tools: one line, non-zero exit, nothing
written; tools never delete or overwrite what they did not make.

Config syntax errors, an annotation of another size than its image, an
image the pipeline shrinks below one patch, an unwritable ``--show-dir`` /
``--out``; the data generator and ``run_demo.sh`` refuse directories they
did not make; ``EACViT`` refuses NaN/inf input in eval mode; the demo's
progress filter turns a real training log into progress lines.

The tools run in-process (``call_tool``, ``call_runner_tool``): what is
tested is their own logic and messages; ``run_demo.sh`` and the progress
filter run as real processes.
"""
import os
import os.path as osp
import shutil
import subprocess

import numpy as np
import pytest
import torch
from _tool_helpers import TOOLS
from _tool_helpers import UPERNET_MICRO as UPERNET
from _tool_helpers import (call_runner_tool, call_tool, data_root_options,
                           one_error_line, run_error_line, snapshot, tool_env)
from PIL import Image

from mmeac.errors import NonFiniteInputError

TEST, TRAIN = 'tools/test.py', 'tools/train.py'


@pytest.fixture(scope='module')
def ckpt(upernet_run):
    """A checkpoint of the micro UperNet (the session's trained run)."""
    return osp.join(upernet_run['work_dir'], 'iter_4.pth')


def _bad_copy(ade: str, base, edit) -> str:
    root = str(base / 'ADEChallengeData2016')
    shutil.copytree(ade, root)
    edit(root)
    return root


# ------------------------------------------------------------- configs
@pytest.mark.parametrize('tool', ['train.py', 'test.py'])
def test_config_syntax_error_names_file_and_line(tool, tmp_path):
    cfg_dir = tmp_path / 'cfgs'
    cfg_dir.mkdir()
    (cfg_dir / 'base.py').write_text('a = 1\nmodel = dict(type=\n')
    (cfg_dir / 'child.py').write_text("_base_ = './base.py'\nb = 2\n")
    before = snapshot(str(tmp_path))
    args = [str(cfg_dir / 'child.py')
            ] + (['x.pth'] if tool == 'test.py' else [])
    proc = call_tool(osp.join(TOOLS, tool), *args, cwd=str(tmp_path))
    line = one_error_line(proc, tool)
    assert line == (f"{tool}: error: config file '{cfg_dir / 'base.py'}', "
                    "line 2 has a syntax error: '(' was never closed")
    assert snapshot(str(tmp_path)) == before


# ---------------------------------------------------------------- data
def test_annotation_size_mismatch_names_both_files(ade_root, ckpt, tmp_path):
    name = 'ADE_val_00000002'

    def shrink_label(root):
        path = osp.join(root, 'annotations', 'validation', name + '.png')
        Image.open(path).resize((48, 64)).save(path)

    root = _bad_copy(ade_root, tmp_path / 'data', shrink_label)
    before = snapshot(root)
    work = tmp_path / 'work'
    work.mkdir()
    argv = [UPERNET, ckpt, '--out', str(work / 'm.json'), '--show-dir']
    argv += [str(work / 'vis'), '--cfg-options', *data_root_options(root)]
    proc = call_runner_tool(TEST, *argv, cwd=str(work))
    line = run_error_line(proc, 'test.py')
    assert line == (
        "test.py: error: annotation '"
        f"{osp.join(root, 'annotations', 'validation', name + '.png')}' is "
        f"48x64 px but its image '"
        f"{osp.join(root, 'images', 'validation', name + '.jpg')}' is "
        '64x64 px')
    # no work_dirs/, no vis/, no m.json: the run removed what it created
    assert os.listdir(work) == []
    assert snapshot(root) == before


def test_image_shrunk_below_one_patch(ade_root, tmp_path):
    """A 3000x3 image: the keep-ratio resize would make it 0 px high."""
    name = 'ADE_train_00000001'

    def elongate(root):
        Image.fromarray(np.full((3, 3000, 3), 128, np.uint8)).save(
            osp.join(root, 'images', 'training', name + '.jpg'))
        Image.fromarray(np.full((3, 3000), 4, np.uint8)).save(
            osp.join(root, 'annotations', 'training', name + '.png'))

    root = _bad_copy(ade_root, tmp_path / 'data', elongate)
    work = tmp_path / 'work'
    work.mkdir()
    opts = data_root_options(root, 'train_dataloader.sampler.shuffle=False',
                             'train_dataloader.batch_size=1')
    proc = call_runner_tool(TRAIN, UPERNET, '--cfg-options', *opts, cwd=work)
    line = run_error_line(proc, 'train.py')
    img = osp.join(root, 'images', 'training', name + '.jpg')
    assert line.startswith(f"train.py: error: image '{img}': ")
    assert '(3000x3 px)' in line and 'below one 8-px patch' in line
    assert os.listdir(work) == []  # no checkpoint saved: work dir removed


def test_checked_compose_reports_small_result(ade_root):
    """Below one patch but not 0 px: refused before packing."""
    from mmengine.registry import TRANSFORMS, init_default_scope

    import mmeac  # noqa: F401
    from mmeac.errors import DataError
    init_default_scope('mmseg')
    img = osp.join(ade_root, 'images', 'validation', 'ADE_val_00000001.jpg')

    def checked(min_size):
        return TRANSFORMS.build(
            dict(
                type='CheckedCompose',
                min_size=min_size,
                transforms=[
                    dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=(8, 8), keep_ratio=True),
                    dict(type='PackSegInputs')
                ]))

    pipe = checked(16)
    with pytest.raises(DataError) as info:
        pipe(dict(img_path=img, seg_fields=[], reduce_zero_label=False))
    assert str(info.value) == (
        f"image '{img}': 64x64 px becomes 8x8 px in the pipeline, smaller "
        'than one 16-px patch (too elongated or too small for the resize)')
    # the same pipeline with a patch it fits runs through
    out = checked(8)(
        dict(img_path=img, seg_fields=[], reduce_zero_label=False))
    assert tuple(out['inputs'].shape) == (3, 8, 8)


# -------------------------------------------------------------- outputs
@pytest.mark.parametrize('option', ['--show-dir', '--out'])
def test_unwritable_output(option, ade_root, ckpt, tmp_path):
    blocker = tmp_path / 'a_file'
    blocker.write_text('mine\n')
    target = str(blocker / ('vis' if option == '--show-dir' else 'm.json'))
    before = snapshot(str(tmp_path))
    argv = [UPERNET, ckpt, option, target, '--cfg-options']
    argv += data_root_options(ade_root)
    proc = call_tool(TEST, *argv, cwd=str(tmp_path))
    line = one_error_line(proc, 'test.py')
    assert line == (f"test.py: error: {option} '{target}' cannot be "
                    f"created: '{blocker}' is a file")
    assert snapshot(str(tmp_path)) == before


# ------------------------------------------------------------ NaN input
def test_eacvit_refuses_non_finite_input_in_eval():
    import mmeac  # noqa: F401
    from mmeac.models.backbones.eac_vit import EACViT
    arch = dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0)
    torch.manual_seed(0)
    model = EACViT(arch=arch, patch_size=8, max_cores=16).eval()
    x = torch.randn(2, 3, 32, 32)
    clean = model(x)[0]
    bad = x.clone()
    bad[1, 0, 5, 7] = float('nan')
    bad[1, 2, 0, 0] = float('inf')
    with pytest.raises(NonFiniteInputError) as info:
        model(bad)
    assert str(info.value).startswith(
        'EACViT input holds NaN/inf (2 values, in images [1] of the batch)')
    # warn: the forward runs, the bad image's outputs are all NaN (global
    # attention spreads one pixel everywhere), the clean image is unchanged
    warn = EACViT(
        arch=arch, patch_size=8, max_cores=16, nonfinite_input='warn').eval()
    warn.load_state_dict(model.state_dict())
    out = warn(bad)[0]
    assert torch.isnan(out[1]).all()
    torch.testing.assert_close(out[0], clean[0])
    # training mode is not checked (the loss shows NaN at once)
    model.train()
    assert torch.isnan(model(bad)[0][1]).all()
    with pytest.raises(ValueError, match='nonfinite_input'):
        EACViT(arch=arch, patch_size=8, max_cores=16, nonfinite_input='no')


# ------------------------------------------------------- the generator
def _make_data(out: str, *extra: str):
    return call_tool('tools/misc/make_builtin_data.py', 'ade20k', '--out', out,
                     '--size', '64', '--num-train', '2', '--num-val', '1',
                     *extra)


def test_generator_never_replaces_a_foreign_directory(tmp_path):
    target = tmp_path / 'ade' / 'ADEChallengeData2016'
    (target / 'images').mkdir(parents=True)
    (target / 'images' / 'my_photo.jpg').write_bytes(b'\xff\xd8 mine')
    before = snapshot(str(tmp_path))
    for extra in ([], ['--force']):
        proc = _make_data(str(tmp_path), *extra)
        assert proc.returncode == 1
        lines = proc.stderr.strip().splitlines()
        assert lines == [
            f'make_builtin_data.py: error: {target} is not empty and was '
            'not made by this generator (no valid .mmeac_builtin.json); it '
            'is left untouched: choose another output root or move it away '
            'yourself'
        ]
        assert '--force' not in lines[0]
        assert snapshot(str(tmp_path)) == before


def test_generator_keeps_files_it_did_not_write(tmp_path):
    proc = _make_data(str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    target = tmp_path / 'ade' / 'ADEChallengeData2016'
    (target / 'images' / 'training' / 'extra.jpg').write_bytes(b'mine')
    before = snapshot(str(tmp_path))
    proc = _make_data(str(tmp_path), '--num-train', '3', '--force')
    assert proc.returncode == 1
    assert "also 'images/training/extra.jpg'" in proc.stderr
    assert '--force' not in proc.stderr
    assert snapshot(str(tmp_path)) == before
    # without the foreign file, --force regenerates the built-in data
    os.remove(target / 'images' / 'training' / 'extra.jpg')
    proc = _make_data(str(tmp_path), '--num-train', '3', '--force')
    assert proc.returncode == 0, proc.stderr
    assert sorted(os.listdir(target / 'images' / 'training')) == [
        f'ADE_train_{i:08d}.jpg' for i in (1, 2, 3)
    ]


# ------------------------------------------------------------- the demo
def test_run_demo_refuses_a_directory_it_did_not_make(tmp_path):
    out = tmp_path / 'results'
    out.mkdir()
    (out / 'metrics.json').write_text('{"mine": 1}\n')
    (out / 'vis_c8').mkdir()
    before = snapshot(str(tmp_path))
    proc = subprocess.run(['bash', osp.join(TOOLS, 'run_demo.sh')],
                          capture_output=True,
                          text=True,
                          env=tool_env(dict(MMEAC_DEMO_DIR=str(out))),
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines() == [
        f"run_demo: error: '{out}' is not empty and was not made by "
        'run_demo.sh (no .mmeac_demo_output in it); it is left untouched: '
        'set MMEAC_DEMO_DIR to a new directory'
    ]
    assert snapshot(str(tmp_path)) == before


def test_demo_progress_lines_from_a_real_training_log(upernet_run):
    """The session's 4-iteration tools/train.py run, through the filter
    run_demo.sh shows in the terminal."""
    shown = subprocess.run(
        ['bash',
         osp.join(TOOLS, 'misc', 'train_progress.sh'), '[demo] '],
        input=upernet_run['output'],
        capture_output=True,
        text=True,
        timeout=60).stdout.splitlines()
    assert [ln.split()[2] for ln in shown] == ['1/4', '2/4', '3/4', '4/4']
    for ln in shown:
        parts = ln.split()
        assert parts[0] == '[demo]' and parts[3] == 'loss'
        assert np.isfinite(float(parts[4])) and parts[5] == 'eta'
        assert parts[6].count(':') == 2


@pytest.mark.parametrize('suffix', ['.json', '.pkl'])
def test_test_results_written_whole_or_not_at_all(suffix, tmp_path,
                                                  monkeypatch):
    """``tools/test.py --out``: a dump that fails half way leaves the
    existing file as it was and no temporary file behind."""
    import mmengine

    from mmeac.utils import toolkit
    out = tmp_path / f'metrics{suffix}'
    toolkit.write_test_results(str(out), {'mIoU': 1.5})
    assert mmengine.load(str(out)) == {'metrics': {'mIoU': 1.5}}
    before = out.read_bytes()
    real_dump = mmengine.dump

    def dump_then_fail(obj, file, **kwargs):
        real_dump(obj, file, **kwargs)  # a (temporary) file is written ...
        raise OSError('disk full')  # ... then the write fails

    monkeypatch.setattr(mmengine, 'dump', dump_then_fail)
    with pytest.raises(OSError, match='disk full'):
        toolkit.write_test_results(str(out), {'mIoU': 99.0})
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]


def test_atomic_path_mode_and_failure(tmp_path):
    """The file every writer goes through: a new file gets the mode
    ``open()`` would give; a block that fails leaves the old file as it was,
    no temporary file and no folder it made; the folder is made."""
    from mmeac.utils.fileio import atomic_path, write_text_atomic
    out = tmp_path / 'sub' / 'report.txt'
    old_mask = os.umask(0o027)
    try:
        write_text_atomic(str(out), 'first\n')
    finally:
        os.umask(old_mask)
    assert out.read_text() == 'first\n'
    assert out.stat().st_mode & 0o777 == 0o640
    with pytest.raises(RuntimeError, match='half way'):
        with atomic_path(str(out)) as tmp:
            with open(tmp, 'w') as f:
                f.write('sec')
            raise RuntimeError('failed half way')
    assert out.read_text() == 'first\n'
    assert os.listdir(out.parent) == ['report.txt']
    # a failed first write into new folders leaves none of them
    deep = tmp_path / 'a' / 'b' / 'new.txt'
    with pytest.raises(RuntimeError, match='half way'):
        with atomic_path(str(deep)) as tmp:
            assert osp.isdir(deep.parent)
            raise RuntimeError('failed half way')
    assert sorted(os.listdir(tmp_path)) == ['sub']


def test_write_files_all_or_none_and_refuse_existing(tmp_path):
    """A report of several files: a writer that fails leaves none of them
    (nor the folders made for them); files in the way are refused unless
    ``overwrite``, a folder in the way always."""
    from mmeac.utils.fileio import refuse_existing, write_files

    def text(value):

        def write(path):
            with open(path, 'w') as f:
                f.write(value)

        return write

    def fail(path):
        with open(path, 'w') as f:
            f.write('half')
        raise OSError('disk full')

    out = tmp_path / 'a' / 'b'
    with pytest.raises(OSError, match='disk full'):
        write_files(str(out), {'x.json': text('x'), 'y.png': fail})
    assert os.listdir(tmp_path) == []
    paths = write_files(str(out), {'x.json': text('x'), 'y.md': text('y')})
    assert paths == [str(out / 'x.json'), str(out / 'y.md')]
    assert sorted(os.listdir(out)) == ['x.json', 'y.md']
    assert (out / 'y.md').read_text() == 'y'
    with pytest.raises(OSError, match='disk full'):
        write_files(str(out), {'x.json': text('new'), 'z.png': fail})
    assert sorted(os.listdir(out)) == ['x.json', 'y.md']  # no temporaries
    assert (out / 'x.json').read_text() == 'x'

    refuse_existing([str(out / 'new.md')])
    refuse_existing([str(out / 'x.json')], overwrite=True)
    with pytest.raises(FileExistsError) as err:
        refuse_existing([str(out / 'new.md'), str(out / 'x.json')])
    assert str(err.value) == f"{out / 'x.json'} exists; pass --overwrite " \
        'to replace it'
    with pytest.raises(FileExistsError, match='is a folder'):
        refuse_existing([str(tmp_path / 'a')], overwrite=True)
