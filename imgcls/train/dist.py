"""Distributed training helpers: torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; one process per device."""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np

GATHER_CHUNK_BYTES = 1 << 27      # gather_rows sends a rank's rows in pieces of about this size (128 MiB)
MAIN_POLL_S = 0.2                 # how often Dist.main_finishes asks whether rank 0 has left the step


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
            import torch
            torch.distributed.barrier()

    def end(self) -> None:
        """The run's end on every process, whichever way run_train returns (trained, or a resumed run already
        finished): wait for the others. The process group init_distributed started stays for a later run_train in
        this process (tune's next trial): a process group made again after destroy_process_group can hang (two
        runs in one torchrun process hung once in three tries here; pytorch issues 74666, 55967, 114585); it is
        left at the process's exit (_leave_group) where the last run ended so, as end() left it before."""
        if self.on:
            import torch
            torch.distributed.barrier()
            _GROUP["ended"] = True

    @contextmanager
    def main_finishes(self) -> Iterator[None]:
        """Around a step whose end rank 0 does alone (clean: the search and the outputs, after the passes every
        rank shares): a process other than rank 0 that leaves it (returns) waits until rank 0 has left it, whichever
        way, so that its next step in these processes reads what rank 0 wrote (clean's manifest, the data of a clean
        or train after it: read before it was there, refused on that rank alone, out of step with the others).
        Rank 0 says it left through the process group's store, which the others ask every MAIN_POLL_S: a barrier's
        wait is timed (10 minutes under NCCL, 30 under gloo) and rank 0's part can take longer (clean's verification
        alone: 21 minutes on 100k images, docs/BENCHMARKS.md). A process that raises leaves at once (rank 0 may be in
        a collective that waits for it; torchrun stops it as this one ends). Without a process group (one process)
        it does nothing."""
        store = _store() if self.on else None
        if store is None:
            yield
            return
        _GROUP["steps"] += 1            # every process counts the same steps: the key names this one
        key = f"imgcls/main-left/{_GROUP['steps']}"
        if self.main:
            try:
                yield
            finally:
                store.set(key, "1")
            return
        yield
        while not store.check([key]):
            time.sleep(MAIN_POLL_S)

    def broadcast(self, obj):
        if not self.on:
            return obj
        import torch
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]


    def gather(self, obj) -> list | None:
        """Every rank's obj, in rank order, on rank 0 (None on the others); [obj] when not distributed."""
        if not self.on:
            return [obj]
        import torch
        out = [None] * self.world if self.main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def gather_rows(self, out: np.ndarray, rows: np.ndarray, done: np.ndarray | None = None,
                    chunk_bytes: int = GATHER_CHUNK_BYTES) -> None:
        """Rank 0's `out` receives every other rank's share of `rows` (the same array on every rank; each rank filled
        out[self.mine(rows)]), in pieces of about chunk_bytes; with `done` (a mask each rank set for the rows it
        filled) only done rows travel, and rank 0's mask is set for them. Rank 0's own share is never copied: one
        gather_object of whole arrays held rank 0's part, its pickle, the other rank's pickle and its copy at once
        (peak RSS doubled under torchrun on 100,000 images' thumbnails). A no-op without torchrun."""
        if not self.on:
            return
        per = max(1, chunk_bytes // max(1, out[:1].nbytes))
        longest = -(-len(rows) // self.world)      # every rank makes the same number of calls
        mine = self.mine(np.asarray(rows))
        for k in range(0, longest, per):
            part = mine[k:k + per]
            if done is not None:
                part = part[done[part]]
            parts = self.gather(None if self.main else (part, out[part]))
            for got in (parts or [])[1:]:
                out[got[0]] = got[1]
                if done is not None:
                    done[got[0]] = True

    def mine(self, rows):
        """This rank's share of rows (every world-th, from its rank): how a pass is split by rank."""
        return rows[self.rank::self.world] if self.on else rows


def current() -> Dist:
    """The process group torchrun and init_distributed set up, or a single process."""
    if "torch" not in sys.modules:   # no process group before torch is imported: a step that needs no torch skips it
        return Dist()
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return Dist()
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# the process group's state: for _leave_group (ended, at_exit), and Dist.main_finishes' count of steps (steps)
_GROUP = {"ended": False, "at_exit": False, "steps": 0}


def _store():
    """The process group's key-value store (torchrun's rendezvous store); None without a process group."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return None
    from torch.distributed.distributed_c10d import _get_default_store
    return _get_default_store()


def _leave_group() -> None:
    """At the process's exit: leave the process group where its last run ended (Dist.end: every process passed the
    barrier); after a run that failed, another process may be inside a collective, and leaving could hang."""
    import torch.distributed as dist
    if _GROUP["ended"] and dist.is_initialized():
        dist.destroy_process_group()


def init_distributed(device_spec: str) -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch
    import torch.distributed as dist
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_spec != "cpu"
    backend = "nccl" if use_cuda else "gloo"
    if dist.is_initialized() and dist.get_backend() != backend:     # an earlier run of this process on another device
        dist.barrier()
        dist.destroy_process_group()
    if not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(local)
        dist.init_process_group(backend)
        if not _GROUP["at_exit"]:
            import atexit
            atexit.register(_leave_group)
            _GROUP["at_exit"] = True
    _GROUP["ended"] = False
    return Dist(rank, world, local)
