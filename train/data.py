"""Image folders -> in-memory banks of decoded images -> random crops, deterministic per (seed, step, rank)."""
import functools
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylize.images import ImageInputError, load_image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
log = logging.getLogger("stylize.train")


def list_images(folder: Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass
class ImageBank:
    """Every image decoded once and kept in RAM as uint8 (C, H, W), short side resized to `side`.

    Training then never re-reads or re-decodes a file: a step costs a crop and a copy.
    """

    folder: Path
    images: list[torch.Tensor]
    paths: list[Path]
    skipped: list[Path]

    @classmethod
    def from_folder(cls, folder: Path, side: int, exclude: set[str] = frozenset()) -> "ImageBank":
        images, paths, skipped = [], [], []
        for path in list_images(folder):
            if path.name in exclude:
                continue
            try:
                image = load_image(path, path.name)
            except (ImageInputError, OSError):  # any file that does not decode, or cannot be read
                skipped.append(path)
                continue
            scale = side / min(image.size)
            image = image.resize((max(side, round(image.width * scale)), max(side, round(image.height * scale))), Image.BICUBIC)
            images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
            paths.append(path)
        if skipped:
            log.warning("skipped %d unreadable image(s) in %s, e.g. %s", len(skipped), folder, skipped[0].name)
        if not images:
            raise ValueError(f"no readable images in {folder}")
        return cls(Path(folder), images, paths, skipped)

    def __len__(self) -> int:
        return len(self.images)

    def description(self) -> dict:
        """What the bank holds, without a machine's paths: folder name, image count, a hash of the file list."""
        names = "\n".join(sorted(p.relative_to(self.folder).as_posix() for p in self.paths))
        return {"folder": self.folder.resolve().name, "images": len(self.images),
                "file_list_sha256": hashlib.sha256(names.encode()).hexdigest()}

    def batch(self, indices: list[int], size: int, gen: torch.Generator) -> torch.Tensor:
        """Random size x size crops with random horizontal flips -> (B, 3, size, size) float in [0, 1]."""
        crops = []
        for i in indices:
            image = self.images[i]
            _, h, w = image.shape
            top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
            crop = image[:, top : top + size, left : left + size]
            if torch.rand(1, generator=gen).item() < 0.5:
                crop = crop.flip(-1)
            crops.append(crop)
        return torch.stack(crops).float().div_(255.0)


def example_generator(seed: int, step: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 10_007 + position)


def draw_examples(banks: tuple["ImageBank", "ImageBank"], step: int, batch_size: int, sizes: tuple[int, int], seed: int,
                  draw_condition, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, ...]:
    """This process's examples at `step`: a photo crop, a painting crop and `draw_condition(uniform)` (its λ, strength,
    ...: numbers drawn with uniform() from U[0, 1)) per example, all from the example's own generator, so that a
    resumed or multi-process run draws exactly what one unbroken process does. -> contents, styles, then one tensor per
    element of the conditions."""
    content_idx = shard_indices(len(banks[0]), step, batch_size, rank, world, seed)
    style_idx = shard_indices(len(banks[1]), step, batch_size, rank, world, seed + 1)
    contents, styles, conditions = [], [], []
    for j, (ci, si) in enumerate(zip(content_idx, style_idx)):
        gen = example_generator(seed, step, rank * batch_size + j)
        contents.append(banks[0].batch([ci], sizes[0], gen))
        styles.append(banks[1].batch([si], sizes[1], gen))
        conditions.append(draw_condition(lambda: torch.rand(1, generator=gen).item()))
    return torch.cat(contents), torch.cat(styles), *(torch.tensor(column) for column in zip(*conditions))


def shard_indices(n: int, step: int, batch_size: int, rank: int, world_size: int, seed: int) -> list[int]:
    """This rank's slice of the global batch at `step`: epochs of a seeded permutation, no repeats across ranks.

    A pure function of (step, rank): resuming at step k draws exactly what an unbroken run would.
    """
    global_batch = batch_size * world_size
    start = step * global_batch + rank * batch_size
    out = []
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, n)
        out.append(_epoch_permutation(n, seed, epoch)[offset])
    return out


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


class Prefetcher:
    """Draws the next batch on a background thread while the device runs this step.

    On the GPU a step at batch 8 x 256 takes ~80 ms and drawing its batch on the CPU ~14 ms: done in
    line, the device waits for it every step. Draws are pure functions of their key, so prefetching
    cannot change what a step sees; pinned memory lets the copy to the device run asynchronously.
    With the CPU as the device, the thread would only compete with the step for the same cores:
    `background=False` draws in line.
    """

    def __init__(self, draw, pin_memory: bool = False, background: bool = True):
        self.draw, self.pin_memory = draw, pin_memory
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch") if background else None
        self.ahead = None  # (key, future) of the batch being drawn ahead

    def _draw(self, key):
        tensors = self.draw(*key)
        return tuple(t.pin_memory() for t in tensors) if self.pin_memory else tensors

    def get(self, key, next_key=None):
        """The batch for `key`; starts drawing `next_key`'s meanwhile."""
        if self.pool is None:
            return self._draw(key)
        # a step skipped by the NaN guard asks for its own key again: the batch drawn ahead is not it
        future = self.ahead[1] if self.ahead and self.ahead[0] == key else self.pool.submit(self._draw, key)
        self.ahead = (next_key, self.pool.submit(self._draw, next_key)) if next_key is not None else None
        return future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
