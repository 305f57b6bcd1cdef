"""Two gloo processes: per-rank coordinate augmentation and drop path, one
budget for all ranks, and a rank-independent RNG state that reproduces each
rank's own draws after a restore."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmeac.models import EACViT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _run(model, steps):
    """Train-mode forwards; what each drew: budget, coordinate draws and
    the last block's drop-path keep mask."""
    record = []
    draws = {}
    draw = model.rope.draw_augmentation

    def recording_draw(generator=None):
        out = draw(generator)
        draws['coords'] = torch.cat([out['shift'], out['scale']])
        return out

    def mask_hook(mod, args, out):
        draws['keep'] = (out.flatten(1).abs().sum(1) > 0).tolist()

    model.rope.draw_augmentation = recording_draw
    handle = model.layers[-1].drop_path.register_forward_hook(mask_hook)
    x = torch.ones(4, 3, 32, 32)  # the same images on every rank
    with torch.no_grad():
        for _ in range(steps):
            model(x)
            # plain Python values: tensors would cross the queue as file
            # descriptors of a process that may have exited
            record.append((model.last_num_cores, draws['coords'].tolist(),
                           draws['keep']))
    handle.remove()
    del model.rope.draw_augmentation
    return record


def _worker(rank: int, world: int, port: int, queue) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)  # MMEngine's default: one seed for every rank
    model = EACViT(
        arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0),
        max_cores=32,
        drop_path_rate=0.5).train()
    first = _run(model, 6)
    state = model.rng_state()
    states = [None] * world
    dist.all_gather_object(states, state)
    after = _run(model, 4)
    # resume on every rank from rank 0's saved state (what a checkpoint
    # holds): each rank must draw its own numbers again
    model.load_rng_state(states[0])
    replay = _run(model, 4)
    for st in states:
        st['budget'] = st['budget'].tolist()
    queue.put((rank, first, states, after, replay))
    dist.barrier()
    dist.destroy_process_group()


def test_per_rank_augmentation_shared_budget_and_restorable_state():
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    port = _free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, 2, port, queue)) for r in range(2)
    ]
    for p in procs:
        p.start()
    results = sorted((queue.get(timeout=300) for _ in procs),
                     key=lambda r: r[0])
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    _, first0, states, after0, replay0 = results[0]
    _, first1, _, after1, replay1 = results[1]
    budgets0 = [b for b, _, _ in first0 + after0]
    budgets1 = [b for b, _, _ in first1 + after1]
    assert budgets0 == budgets1  # one budget on every rank
    assert len(set(budgets0)) > 1
    # coordinate augmentation and drop path drawn per rank
    for (_, c0, k0), (_, c1, k1) in zip(first0, first1):
        assert c0 != c1
    assert [k for _, _, k in first0] != [k for _, _, k in first1]
    # ... and not repeated from one forward to the next
    assert first0[0][1] != first0[1][1]
    # the saved state is the same on both ranks (rank 0's is enough)
    s0, s1 = states
    assert s0['seed'] == s1['seed'] and s0['aug_count'] == s1['aug_count']
    assert s0['budget'] == s1['budget']
    # restored from it, every rank repeats its own draws exactly
    for after, replay in ((after0, replay0), (after1, replay1)):
        for (b, c, k), (rb, rc, rk) in zip(after, replay):
            assert (b, c, k) == (rb, rc, rk)
