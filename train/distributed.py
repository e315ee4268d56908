"""Several processes (torchrun, accelerate launch): each draws its share of every batch, and they agree on every step."""
import os

import torch
import torch.distributed as dist


def init_distributed(device: torch.device) -> tuple[int, int]:
    """torchrun / accelerate launch set WORLD_SIZE, RANK, LOCAL_RANK; a plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def all_reduce_mean(tensor: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(tensor)
        tensor /= world
    return tensor


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """One flat all-reduce per model: every process ends the step with identical gradients."""
    if world == 1:
        return
    for p in params:
        if p.grad is None:  # e.g. D on a process whose micro-batch held no fakes
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    all_reduce_mean(flat, world)
    for g, chunk in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(chunk.view_as(g))


def check_in_sync(module: torch.nn.Module, world: int, step: int) -> None:
    """Every process must hold the same weights after every step; a checksum comparison costs one all-reduce."""
    if world == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum()
    spread = torch.stack([checksum, -checksum])
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if (spread[0] + spread[1]).abs().item() > 1e-9 * max(1.0, checksum.abs().item()):
        raise RuntimeError(f"step {step}: weights differ between processes (checksum spread {(spread[0] + spread[1]).item():.3g})")


def broadcast_parameters(module: torch.nn.Module, world: int) -> None:
    if world > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, 0)
