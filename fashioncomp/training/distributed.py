"""Training across processes with DistributedDataParallel, started by `torchrun`.

    torchrun --nproc_per_node 2 -m fashioncomp train --run runs/R --folds 0

torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; `setup()` then joins the process group (NCCL on
CUDA, one GPU per process; gloo on CPU). Without them everything here is a no-op for a single
process, so the same training code runs either way. Rank 0 validates and writes every file;
the other ranks receive its metrics so that all of them take the same early-stopping decision.
"""
from __future__ import annotations

import atexit
import contextlib
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Iterable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

# rank 0 validates while the others wait in a collective: allow a long validation
TIMEOUT = timedelta(minutes=60)


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def device(self) -> torch.device:
        """This process's device: its own GPU under torchrun, else the only GPU, else the CPU."""
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", self.local_rank if self.enabled else torch.cuda.current_device())


_context = DistContext()


def setup() -> DistContext:
    """Join the process group when started by torchrun (idempotent); return this process's place."""
    global _context
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or dist.is_initialized():
        return _context
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl", timeout=TIMEOUT, device_id=device)
    else:
        dist.init_process_group(backend="gloo", timeout=TIMEOUT)
    _context = DistContext(rank=rank, world_size=world_size, local_rank=local_rank)
    atexit.register(teardown)
    return _context


def teardown() -> None:
    global _context
    if dist.is_initialized():
        dist.destroy_process_group()
    _context = DistContext()


def current() -> DistContext:
    return _context


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def main_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. builds the image cache), then the others."""
    if not current().is_main:
        barrier()
    yield
    if current().is_main:
        barrier()


def print_main(*args: Any, **kwargs: Any) -> None:
    if current().is_main:
        print(*args, **kwargs)


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel around `model` across processes; the model itself otherwise."""
    if not current().enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def sum_across_ranks(values: Sequence[float], device: torch.device) -> list[float]:
    """Element-wise sum of `values` over all ranks (float64, so a single process is exact)."""
    if not current().enabled:
        return list(values)
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """Average gradients of parameters that DDP does not manage (e.g. learned task weights)."""
    if not current().enabled:
        return
    for param in params:
        if param.grad is not None:
            dist.all_reduce(param.grad, op=dist.ReduceOp.SUM)
            param.grad.div_(current().world_size)


def broadcast_from_main(obj: Any) -> Any:
    """Rank 0's `obj` on every rank."""
    if not current().enabled:
        return obj
    box = [obj if current().is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]
