"""Distributed training helpers: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; one process per device."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    def barrier(self):
        if self.on:
            torch.distributed.barrier()

    def broadcast(self, obj):
        if not self.on:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


    def gather(self, obj) -> list | None:
        """Every rank's obj, in rank order, on rank 0 (None on the others); [obj] when not distributed."""
        if not self.on:
            return [obj]
        out = [None] * self.world if self.main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def mine(self, rows):
        """This rank's share of rows (every world-th, from its rank): how a pass is split by rank."""
        return rows[self.rank::self.world] if self.on else rows


def current() -> Dist:
    """The process group torchrun and init_distributed set up, or a single process."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device_spec: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as dist
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec != "cpu"
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return Dist(rank, world, local)
