"""The encodings a slider move reuses, kept within a byte budget."""
import dataclasses
from collections import OrderedDict

import torch

# Encodings kept for slider moves, content and style together, bounded by the bytes their tensors hold: a content
# encoding holds ~80 bytes per pixel in fp32 (338 MB at 1024x683, 1.36 GB at 2048 px), so a count would not bound memory.
CACHE_BYTES = 2 * 1024**3


def tensor_bytes(value) -> int:
    """Bytes held by the tensors in an encoding (dataclasses, tuples and lists of tensors)."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if dataclasses.is_dataclass(value):
        return sum(tensor_bytes(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return sum(tensor_bytes(v) for v in value)
    return 0


class EncodingCache:
    """Least recently used encodings within a byte budget; one larger than the whole budget is not kept."""

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self.entries: OrderedDict = OrderedDict()  # key -> (value, bytes)
        self.nbytes = 0

    def get(self, key, compute):
        """(value, whether it was computed)."""
        if key in self.entries:
            self.entries.move_to_end(key)
            return self.entries[key][0], False
        value = compute()
        size = tensor_bytes(value)
        if size <= self.budget_bytes:
            while self.nbytes + size > self.budget_bytes:
                self.nbytes -= self.entries.popitem(last=False)[1][1]
            self.entries[key] = (value, size)
            self.nbytes += size
        return value, True

    def clear(self) -> None:
        self.entries.clear()
        self.nbytes = 0
