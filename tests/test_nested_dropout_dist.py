"""Nested dropout under DDP: two gloo processes draw the same budgets."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP

from mmeac.models import EACViT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class _Net(nn.Module):

    def __init__(self):
        super().__init__()
        self.backbone = EACViT(
            arch=dict(embed_dims=32, num_layers=2, num_heads=2, mlp_ratio=2.0),
            max_cores=32,
            out_type='cls_token')
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.backbone(x)[0])


def _worker(rank: int, world: int, port: int, steps: int, queue) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world)
    torch.manual_seed(0)  # same init on both ranks
    net = _Net()
    ddp = DDP(net, find_unused_parameters=True)
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3)
    torch.manual_seed(100 + rank)  # different data and RNG per rank
    budgets, none_grads, losses = [], [], []
    for _ in range(steps):
        x = torch.randn(2, 3, 32, 32)
        y = torch.randint(0, 3, (2, ))
        loss = nn.functional.cross_entropy(ddp(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        c = net.backbone.last_num_cores
        budgets.append(c)
        none_grads.append([p.grad is None for p in net.backbone.core_chunks])
        losses.append(float(loss))
        opt.step()
    flat = torch.cat([p.detach().flatten() for p in net.parameters()])
    queue.put((rank, budgets, none_grads, losses, flat))
    dist.barrier()
    dist.destroy_process_group()


def test_budgets_equal_across_ranks_and_training_proceeds():
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    steps, port = 8, _free_port()
    procs = [
        ctx.Process(target=_worker, args=(r, 2, port, steps, queue))
        for r in range(2)
    ]
    for p in procs:
        p.start()
    results = sorted(queue.get(timeout=240) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    (_, b0, g0, l0, w0), (_, b1, g1, l1, w1) = results
    assert b0 == b1, (b0, b1)
    assert len(set(b0)) > 1, 'nested dropout drew a single budget'
    for budget, none in zip(b0, g0):
        # chunks beyond the prefix stay without gradient on every rank
        assert none == [i >= budget // 8 for i in range(4)]
    assert g0 == g1
    assert all(torch.isfinite(torch.tensor(l0 + l1)))
    torch.testing.assert_close(w0, w1)  # DDP kept the replicas in sync
