"""Where and in what precision the models run: the device a name means, and the dtype each device paints in."""
import torch


def available_devices() -> list[str]:
    found = ["cpu"]
    if torch.cuda.is_available():
        found.append("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        found.append("mps")
    return found


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' picks CUDA, then MPS, then the CPU; a named device that is not here is a ValueError."""
    available = available_devices()
    if device in (None, "auto"):
        return torch.device("cuda" if "cuda" in available else "mps" if "mps" in available else "cpu")
    try:
        chosen = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}; choose auto or one of: {', '.join(available)}") from None
    if chosen.type not in available or (chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"device {device!r} is not available on this machine; choose auto or one of: {', '.join(available)}")
    return chosen


def bf16_is_emulated(device: torch.device) -> bool:
    """A CPU without AMX emulates bf16: slower than fp32 (a distillation step under --amp on an AVX2-only CPU took more
    than 6× its fp32 time, docs/performance.md)."""
    return device.type == "cpu" and not getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()


def pick_dtype(device: torch.device) -> torch.dtype:
    """Half precision on accelerators. On a CPU with AMX, bf16: oneDNN's bf16 convolutions there take a half to a third
    of fp32's time, pictures within a few grey levels (docs/history.md). Other CPUs: fp32."""
    if device.type in ("cuda", "mps"):
        return torch.float16
    return torch.bfloat16 if device.type == "cpu" and not bf16_is_emulated(device) else torch.float32


def precision_name(dtype: torch.dtype) -> str:
    """A dtype as people name a precision: "bf16", "fp16" or "fp32"."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
