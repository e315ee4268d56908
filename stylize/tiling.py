"""Posters: a picture larger than one pass holds, painted tile by tile in memory bounded by a tile.

As URST does, every tile is normalised with statistics of the whole picture, so tiles cannot disagree: a first pass
encodes each tile and sums its share of every feature map's per-channel statistics (exact, not a thumbnail's), a
second encodes it again and decodes it with them. A tile is its core plus MARGIN px on every side for the encoder's
and decoder's reach; only the core is kept, and cores tile the picture. The attention's keys and values come from the
style, the same for every tile. Tiles start on the 1/8 grid, so their feature maps are crops of the whole picture's.
"""
import dataclasses
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .encoder import DOWNSAMPLE
from .generator import StyleMix
from .picture import CONTENT_MARGIN, DETAIL_KEPT, keep_luminance_only, poster_stroke_factor
from .refine import REFINE_SIDE, working_size

ONE_PASS_SIDE = 2048  # pictures painted larger than this are painted in tiles
# Tile cores by model: with MARGIN around them, a tile of the quality generator holds about what a one-pass 1024 px
# picture holds; the student's tiles can be larger (bench/poster.py measures both).
TILE_CORE = {"quality": 768, "fast": 1536}
# Memory a poster needs beside a tile: per pixel of the output, the photo and the picture (uint8) and the luminance
# (float32); per pixel painted, the canvas (uint8) and the painting (float16); plus a tile's working memory.
BYTES_PER_OUTPUT_PIXEL = 3 + 3 + 4
BYTES_PER_PAINTED_PIXEL = 3 + 6
TILE_BYTES = {"quality": 2.5 * 2**30, "fast": 1.0 * 2**30}
MARGIN = 128  # px of context on each side of a tile's core: past it a pixel's influence on the core is below 1 grey level
BAND_ROWS = 256  # rows finished (resized, colour kept) at a time
EPS = 1e-5  # as functional.mean_std


@dataclasses.dataclass(frozen=True)
class Tile:
    crop: tuple[int, int, int, int]  # top, left, bottom, right in the canvas: what is encoded and decoded
    core: tuple[int, int, int, int]  # the part of the crop kept, in canvas coordinates


def tiles(height: int, width: int, core: int, margin: int = MARGIN) -> list[Tile]:
    """Cores of about `core` px (multiples of 8) covering a canvas of height x width (multiples of 8), each with its crop."""
    def spans(length: int) -> list[tuple[int, int]]:
        count = max(1, -(-length // core))
        cuts = [round(length * k / count / DOWNSAMPLE) * DOWNSAMPLE for k in range(count + 1)]
        return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]

    return [Tile((max(0, top - margin), max(0, left - margin), min(height, bottom + margin), min(width, right + margin)),
                 (top, left, bottom, right))
            for top, bottom in spans(height) for left, right in spans(width)]


def canvas(photo: Image.Image) -> np.ndarray:
    """The photo as one pass encodes it (pipeline.with_margin, then functional.pad_to_multiple): (H, W, 3) uint8."""
    array = np.pad(np.asarray(photo, dtype=np.uint8), ((CONTENT_MARGIN,) * 2, (CONTENT_MARGIN,) * 2, (0, 0)), mode="reflect")
    pad_h, pad_w = (-array.shape[0]) % DOWNSAMPLE, (-array.shape[1]) % DOWNSAMPLE
    return np.pad(array, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect") if pad_h or pad_w else array


def map_canvas(region: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A (1, 1, h, w) map at the photo's size laid out as `canvas` lays out the photo."""
    region = F.pad(region, (CONTENT_MARGIN,) * 4, mode="reflect")
    return F.pad(region, (0, shape[1] - region.shape[-1], 0, shape[0] - region.shape[-2]), mode="replicate")


def cropped(value, box: tuple[int, int, int, int]):
    """A strength or a StyleMix with its map weights cut to `box` (top, left, bottom, right)."""
    top, left, bottom, right = box
    return cropped_map(value, lambda m: m[..., top:bottom, left:right])


def stat_feats(encoding) -> list[torch.Tensor]:
    """The feature maps whose per-channel statistics an encoding holds (the generator: every tap; the student: 1/4, 1/8)."""
    return list(encoding.feats)[len(encoding.feats) - len(encoding.stats):]


def paint(model, picture: np.ndarray, style, lambdas: torch.Tensor, strength, core: int, device, dtype,
          progress=None) -> np.ndarray:
    """The painting of a `canvas` (H, W, 3) uint8 by `model` (a generator or a student), tile by tile: (H, W, 3) float16.
    style and strength as a decode takes them, any maps laid out as the canvas (map_canvas). progress(done, total) is
    called after each tile of either pass."""
    height, width = picture.shape[:2]
    grid = tiles(height, width, core)

    def encoded(tile: Tile):
        top, left, bottom, right = tile.crop
        crop = torch.from_numpy(picture[top:bottom, left:right]).permute(2, 0, 1)[None].float().div_(255)
        return model.encode_content(crop.to(device, dtype).contiguous(memory_format=torch.channels_last))

    done = 0

    def tile_done() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, 2 * len(grid))

    sums = None
    for tile in grid:  # the whole picture's statistics, summed over the cores
        with torch.no_grad():
            feats = stat_feats(encoded(tile))
        parts = []
        for feat in feats:
            scale = (tile.crop[2] - tile.crop[0]) // feat.shape[-2]
            top, left, bottom, right = ((c - o) // scale for c, o in zip(tile.core, tile.crop[:2] * 2))
            core_feat = feat[..., top:bottom, left:right].double()
            parts.append((core_feat.sum((0, 2, 3)), core_feat.square().sum((0, 2, 3)), core_feat[0, 0].numel()))
        sums = parts if sums is None else [(s + a, q + b, n + c) for (s, q, n), (a, b, c) in zip(sums, parts)]
        tile_done()
    stats = []
    for total, squares, count in sums:
        mean = total / count
        std = ((squares / count - mean.square()).clamp_min(0) + EPS).sqrt()
        stats.append((mean.view(1, -1, 1, 1).to(device, dtype), std.view(1, -1, 1, 1).to(device, dtype)))

    painting = np.empty((height, width, 3), np.float16)
    for tile in grid:
        with torch.no_grad():
            encoding = dataclasses.replace(encoded(tile), stats=stats)
            out = model.decode(encoding, cropped(style, tile.crop), lambdas, cropped(strength, tile.crop))
        top, left, bottom, right = (c - o for c, o in zip(tile.core, tile.crop[:2] * 2))
        core_out = out[0, :, top:bottom, left:right].float().clamp_(0, 1).permute(1, 2, 0).cpu().numpy()
        painting[tile.core[0]:tile.core[2], tile.core[1]:tile.core[3]] = core_out
        tile_done()
    return painting


def without_canvas_margin(painting: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The painting of a `canvas` cut back to the photo's (w, h)."""
    return painting[CONTENT_MARGIN:CONTENT_MARGIN + size[1], CONTENT_MARGIN:CONTENT_MARGIN + size[0]]


def bands(height: int) -> Iterator[tuple[int, int]]:
    for top in range(0, height, BAND_ROWS):
        yield top, min(height, top + BAND_ROWS)


def resized_band(plane: np.ndarray, size: tuple[int, int], rows: tuple[int, int]) -> np.ndarray:
    """Rows [top, bottom) of a float plane (h, w) resized to `size` (w, h), bicubic; Pillow's box resampling reads the
    rows around the band too, so bands meet without a seam."""
    scale = plane.shape[0] / size[1]
    box = (0, rows[0] * scale, plane.shape[1], rows[1] * scale)
    return np.asarray(Image.fromarray(plane, "F").resize((size[0], rows[1] - rows[0]), Image.BICUBIC, box=box))


def finished(painting: np.ndarray, photo: Image.Image, preserve_color: bool, with_detail: bool,
             change: torch.Tensor | None = None) -> Image.Image:
    """pipeline's finish, band by band: the painting (h, w, 3) at the photo's size (its fine luminance detail back
    `with_detail`), plus refine's `change` (1, 3, h', w') resized over it, in the photo's colours where asked."""
    width, height = photo.size
    out = np.empty((height, width, 3), np.uint8)
    planes = [np.ascontiguousarray(painting[..., c], dtype=np.float32) for c in range(3)]
    changes = [np.ascontiguousarray(change[0, c].float().cpu().numpy()) for c in range(3)] if change is not None else None
    if with_detail:  # as pipeline.at_photo_size: the mean of R, G and B
        luminance = np.asarray(photo, dtype=np.uint8).mean(axis=-1, dtype=np.float32) / 255
        small = np.asarray(Image.fromarray(luminance, "F").resize((painting.shape[1], painting.shape[0]), Image.BICUBIC))
    for top, bottom in bands(height):
        band = np.stack([plane[top:bottom] if plane.shape[:2] == (height, width) else resized_band(plane, photo.size, (top, bottom))
                         for plane in planes], axis=-1)
        if changes is not None:
            band += np.stack([resized_band(plane, photo.size, (top, bottom)) for plane in changes], axis=-1)
        if with_detail:
            band += DETAIL_KEPT * (luminance[top:bottom] - resized_band(small, photo.size, (top, bottom)))[..., None]
        np.clip(band, 0, 1, out=band)
        if preserve_color:
            photo_band = np.asarray(photo.crop((0, top, width, bottom)), dtype=np.float32) / 255
            as_tensor = lambda rgb: torch.from_numpy(rgb).permute(2, 0, 1)[None]  # noqa: E731
            band = keep_luminance_only(as_tensor(band), as_tensor(photo_band))[0].permute(1, 2, 0).numpy()
        out[top:bottom] = np.round(band * 255).astype(np.uint8)
    return Image.fromarray(out, "RGB")


def thumbnail(painting: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """The painting (h, w, 3) at `size` (h, w), antialiased: where refine works. -> (1, 3, h, w) float32."""
    planes = [Image.fromarray(np.ascontiguousarray(painting[..., c], dtype=np.float32), "F").resize(size[::-1], Image.BICUBIC)
              for c in range(3)]
    return torch.from_numpy(np.stack([np.asarray(p) for p in planes]))[None].clamp_(0, 1)


def poster_steps(stylizer, photo: Image.Image, work_image: Image.Image, style, lambdas: torch.Tensor, strength,
                 variant: str, preserve_color: bool, with_detail: bool, refine: dict | None, progress=None) -> Iterator[Image.Image]:
    """Stylizer.stylize_steps for a picture painted above ONE_PASS_SIDE: the one-pass picture tile by tile, then, where
    `refine` holds Stylizer.refine's arguments, the picture after each refine step, refine's change carried up to it."""
    model, device, dtype = stylizer.model(variant), stylizer.device, stylizer.dtype
    check_memory(photo.size, work_image.size, variant)
    picture = canvas(work_image)
    shape = picture.shape[:2]
    on_canvas = lambda value: cropped_map(value, lambda m: map_canvas(m, shape))  # noqa: E731
    painting = without_canvas_margin(paint(model, picture, on_canvas(style), lambdas.to(device), on_canvas(strength),
                                           TILE_CORE[variant], device, dtype, progress), work_image.size)
    del picture
    yield finished(painting, photo, preserve_color, with_detail)
    if refine:
        size = working_size(painting.shape[:2], REFINE_SIDE)
        start = thumbnail(painting, size)
        content = work_image.resize(size[::-1], Image.LANCZOS)
        for small in stylizer.refine(start.to(device), content, **refine):
            yield finished(painting, photo, preserve_color, with_detail, change=small.float().cpu() - start)


def cropped_map(value, crop):
    """`value` (a strength or a StyleMix) with `crop` applied to each of its maps."""
    if isinstance(value, StyleMix):
        return StyleMix(value.styles, [cropped_map(w, crop) for w in value.weights])
    if isinstance(value, torch.Tensor) and value.dim() == 4 and value.shape[-2:] != (1, 1):
        return crop(value)
    return value


def available_memory() -> int | None:
    """Bytes this machine can still give (Linux's MemAvailable), or None where it does not say."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def memory_needed(photo_size: tuple[int, int], painted_size: tuple[int, int], variant: str) -> float:
    return (photo_size[0] * photo_size[1] * BYTES_PER_OUTPUT_PIXEL + painted_size[0] * painted_size[1] * BYTES_PER_PAINTED_PIXEL
            + TILE_BYTES[variant])


def poster_fits(side: int) -> bool:
    """Whether this machine holds a square poster of `side` px with the quality model now (the app offers it then)."""
    free = available_memory()
    painted = round(side / poster_stroke_factor(side))
    return free is None or memory_needed((side, side), (painted, painted), "quality") <= free


def check_memory(photo_size: tuple[int, int], painted_size: tuple[int, int], variant: str) -> None:
    """A one-line ValueError, before any memory is spent, where a poster would not fit in what the machine has free."""
    need = memory_needed(photo_size, painted_size, variant)
    free = available_memory()
    if free is not None and need > free:
        raise ValueError(f"a {photo_size[0]}x{photo_size[1]} picture needs about {need / 2**30:.1f} GiB with the {variant} "
                         f"model and this machine has {free / 2**30:.1f} GiB free: choose a smaller max side")
