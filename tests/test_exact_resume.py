"""Exact resume through the real tools: train N iterations == train k,
kill -9, resume, train to N (bit-identical weights on the CPU).

This is also the test of a run killed between two checkpoint saves: it
resumes from the newest one with ``--resume`` (the kill during a save is in
``test_trust_checkpoints.py``).

The uninterrupted reference is the session's ``upernet_run`` (N = 4,
checkpoints every 2 iterations, seed 0, deterministic); the runs here use
its exact options, each in a real ``tools/train.py`` process with the same
environment (one thread), so bits can be compared.
"""
import os.path as osp
import sys

import pytest
import torch
from _tool_helpers import (call_runner_tool, fresh_tool, kill_when,
                           newest_log_text, python_tool, run, train_iters)

N = 4  # upernet_run's iterations


def _train_cmd(upernet_run, work_dir, *extra, command=python_tool):
    return command('train.py', upernet_run['config'], '--work-dir',
                   str(work_dir), *extra, '--cfg-options',
                   *upernet_run['options'])


def _weights(path):
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    return ckpt['state_dict'], ckpt


def test_kill_and_resume_is_bit_identical(upernet_run, tmp_path):
    """Killed between two saves (iter_2.pth written, iter_4.pth not yet),
    resumed with ``--resume`` (the newest checkpoint of the work dir)."""
    full = upernet_run['work_dir']
    cut = tmp_path / 'cut'
    pointer = cut / 'last_checkpoint'

    def iter2_saved():
        if pointer.is_file() and (cut / 'iter_2.pth').is_file():
            if pointer.read_text().endswith('iter_2.pth'):
                return True
        return None

    kill_when(
        _train_cmd(upernet_run, cut, command=fresh_tool), str(tmp_path),
        iter2_saved)
    assert not (cut / f'iter_{N}.pth').exists(), 'the run was not cut short'

    resumed = run(_train_cmd(upernet_run, cut, '--resume'), cwd=str(tmp_path))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    text = newest_log_text(str(cut))
    assert 'resumed epoch: 0, iter: 2' in text
    assert train_iters(text) == [3, 4]

    ref, ref_ckpt = _weights(osp.join(full, f'iter_{N}.pth'))
    got, got_ckpt = _weights(cut / f'iter_{N}.pth')
    assert ref.keys() == got.keys()
    differ = [k for k in ref if not torch.equal(ref[k], got[k])]
    assert not differ, f'{len(differ)} tensors differ, e.g. {differ[:4]}'
    # the random streams themselves continued identically
    a, b = ref_ckpt['eac_rng_state'], got_ckpt['eac_rng_state']
    assert a['backbones'].keys() == {'backbone'}
    sa, sb = a['backbones']['backbone'], b['backbones']['backbone']
    assert sa['aug_count'] == sb['aug_count'] == N
    assert torch.equal(sa['budget'], sb['budget'])
    assert torch.equal(a['torch'], b['torch'])
    # the backbone's state dict carries no RNG key (authors' files load
    # strictly)
    assert not any('rng' in k for k in ref)
    assert got_ckpt['meta']['iter'] == N
    # AdamW counted all N steps (core chunks beyond a drawn budget skip some)
    assert max(
        int(s['step']) for s in got_ckpt['optimizer']['state'].values()) == N


def test_resume_without_rng_state_diverges_and_warns(upernet_run, tmp_path):
    """The control: a checkpoint stripped of the RNG state resumes with a
    warning and, since budgets and augmentation are drawn afresh, ends
    elsewhere; so the test above can fail."""
    full = upernet_run['work_dir']
    ckpt = torch.load(
        osp.join(full, 'iter_2.pth'), map_location='cpu', weights_only=False)
    del ckpt['eac_rng_state']
    stripped_dir = tmp_path / 'stripped'
    stripped_dir.mkdir()
    torch.save(ckpt, stripped_dir / 'start.pth')
    # in-process: a divergence needs no second interpreter to show
    proc = call_runner_tool(
        *_train_cmd(upernet_run, stripped_dir, '--resume',
                    str(stripped_dir / 'start.pth'))[1:],
        cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'holds no RNG state' in proc.stdout + proc.stderr
    ref, _ = _weights(osp.join(full, f'iter_{N}.pth'))
    got, _ = _weights(stripped_dir / f'iter_{N}.pth')
    assert any(not torch.equal(ref[k], got[k]) for k in ref)


if __name__ == '__main__':
    sys.exit(pytest.main([__file__, '-q']))
