"""Any image in: decode, validate and normalise user images to RGB, with one dedicated error type."""
import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 8192 * 8192  # decoded size refused above this (decompression bombs); an 8K x 8K photo is admitted
MIN_SIDE = 64  # smaller images are upscaled to this short side: VGG's relu4_1 needs 8 px
MAX_ASPECT = 20


class ImageInputError(ValueError):
    """The input is not a usable image; the message says why in one line."""


def load_image(source, name: str = "image") -> Image.Image:
    """Path, bytes, file object, numpy array or PIL image -> RGB PIL image, orientation applied."""
    return _to_rgb(decode_image(source, name), name)


def load_mask(source, size: tuple[int, int]) -> Image.Image:
    """A region mask, any image -> an "L" image of `size` (w, h): the style applies where it is white, or, in an image
    with transparency (a layer painted in the app), where it is opaque. Another size than the photo's is resized."""
    image = decode_image(source, "mask")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (image.mode == "P" and "transparency" in image.info):
        mask = ImageOps.exif_transpose(image).convert("RGBA").getchannel("A")
    else:
        mask = _to_rgb(image, "mask").convert("L")
    return mask if mask.size == tuple(size) else mask.resize(tuple(size), Image.BILINEAR)


def decode_image(source, name: str = "image") -> Image.Image:
    """Path, bytes, file object, numpy array or PIL image -> a decoded PIL image in its own mode; ImageInputError if
    it is not one (missing, broken, a decompression bomb, an unusable array)."""
    if isinstance(source, Image.Image):
        image = source
    elif isinstance(source, np.ndarray):
        image = _from_array(source, name)
    else:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise ImageInputError(f"{name}: file not found: {path}")
            source = path.read_bytes()
        if isinstance(source, (bytes, bytearray)):
            source = io.BytesIO(source)
        image = _open(source, name)
    return image


def _open(stream, name: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(stream)
            if image.width * image.height > MAX_PIXELS:
                raise ImageInputError(f"{name}: {image.width}x{image.height} is too large to decode (limit {MAX_PIXELS // 1_000_000} megapixels)")
            image.load()
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageInputError(f"{name}: refused as a decompression bomb ({err})") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"{name}: not an image file (or a format Pillow cannot read)") from None
    except MemoryError:
        raise ImageInputError(f"{name}: not enough memory to decode this image") from None
    except Exception as err:  # noqa: BLE001 - decoders raise anything (OSError, SyntaxError, RuntimeError, struct.error...)
        raise ImageInputError(f"{name}: broken or truncated image file ({one_line(err)})") from None
    return image


def one_line(err: BaseException) -> str:
    """An exception's message on one line of at most 200 characters (its class name where it has none)."""
    text = " ".join(str(err).split()) or err.__class__.__name__
    return text if len(text) <= 200 else text[:197] + "..."


def _from_array(array: np.ndarray, name: str) -> Image.Image:
    """uint8 arrays (0-255) or float arrays (0-1), HxW or HxWx{1,3,4}."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageInputError(f"{name}: an image array must be HxW or HxWx1/3/4, got shape {array.shape}")
    if array.dtype.kind == "f":
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise ImageInputError(f"{name}: a float image array must hold finite values in [0, 1]")
        array = (array * 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageInputError(f"{name}: an image array must be uint8 (0-255) or float (0-1), got {array.dtype}")
    return Image.fromarray(np.ascontiguousarray(array))


def _to_rgb(image: Image.Image, name: str) -> Image.Image:
    if image.width < 1 or image.height < 1:
        raise ImageInputError(f"{name}: empty image")
    if max(image.size) / min(image.size) > MAX_ASPECT:
        raise ImageInputError(f"{name}: aspect ratio {image.width}x{image.height} is beyond 1:{MAX_ASPECT}")
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - a corrupt EXIF block: keep the pixels as stored
        pass
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        peak = 1.0 if image.mode == "F" and array.max() <= 1.0 else (255.0 if array.max() <= 255 else 65535.0)
        image = Image.fromarray((np.clip(array / peak, 0, 1) * 255).round().astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def fit_scale(width: int, height: int, max_side: int) -> float:
    """The scale that brings the long side to at most max_side, or the short side up to MIN_SIDE."""
    return max(min(1.0, max_side / max(width, height)), MIN_SIDE / min(width, height))


def fit_size(image: Image.Image, max_side: int) -> Image.Image:
    """Downscale so the long side is at most max_side; upscale if the short side is under MIN_SIDE."""
    w, h = image.size
    scale = fit_scale(w, h, max_side)
    if scale != 1.0:
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS if scale < 1 else Image.BICUBIC)
    return image


def to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL -> (1, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None].float().contiguous() / 255.0


def to_pil(tensor: torch.Tensor) -> Image.Image:
    """(1, 3, H, W) or (3, H, W) in [0, 1] -> RGB PIL."""
    array = tensor.detach().float().clamp(0, 1).squeeze(0).permute(1, 2, 0).mul(255).round().byte().cpu().numpy()
    return Image.fromarray(array, "RGB")


CORPUS_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}  # what training folders and the benches' data are read as


def list_images(folder: Path, suffixes: set[str] = CORPUS_SUFFIXES) -> list[Path]:
    """The files under `folder` (searched recursively) whose suffix is one of `suffixes`, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())


def paste_grid(rows: list[list[Image.Image]], cell: tuple[int, int]) -> Image.Image:
    """The images row by row on white, each at the top left of its `cell` = (width, height)."""
    grid = Image.new("RGB", (cell[0] * max(len(row) for row in rows), cell[1] * len(rows)), "white")
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            grid.paste(image, (c * cell[0], r * cell[1]))
    return grid


def read_name_list(path: Path, section: str | None = None) -> list[str]:
    """One file name per line; '#' starts a comment line. With `section`, only the names under the line '# <section>'
    (bench/holdout.txt's '# content' and '# style')."""
    names, current = [], None
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            current = line[1:].strip()
        elif line.strip() and (section is None or current == section):
            names.append(line.strip())
    return names
