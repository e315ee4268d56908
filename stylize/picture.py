"""A picture around the model: the photo's reflected margin, the size it is painted at for a stroke scale, a region
mask's feathered edge, the painting back at the photo's size, colour preservation."""
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from .checks import MAX_SIDE
from .functional import resized, rgb_to_yuv, yuv_to_rgb
from .images import MIN_SIDE, to_pil

# Larger strokes are painted smaller and enlarged; half the photo's luminance detail finer than that comes back (all
# of it returns the photo's own fine texture, which reads as small strokes again: bench/results/controls.md).
DETAIL_KEPT = 0.5
MASK_FEATHER = 0.01  # a region mask's edge is blurred over this share of the photo's long side, so no seam shows
# The photo is reflected this far outwards on every side before it is encoded, and the margin cut from the picture:
# the encoders' zero padding otherwise paints a frame and stripes along the edges (bench/border.py). Two cells of the
# 1/8 grid; 8 % more pixels at 1024 px.
CONTENT_MARGIN = 16
POSTER_FROM = 2048


def with_margin(image_or_map, margin: int = CONTENT_MARGIN):
    """A photo or a region map (B, C, H, W) reflected `margin` px outwards on every side; numbers as they are."""
    if not isinstance(image_or_map, torch.Tensor) or image_or_map.dim() != 4 or image_or_map.shape[-2:] == (1, 1):
        return image_or_map
    return F.pad(image_or_map, (margin,) * 4, mode="reflect")


def without_margin(picture: torch.Tensor, margin: int = CONTENT_MARGIN) -> torch.Tensor:
    """The picture of a photo given `with_margin`, cut back to the photo (explicit ends: any margin, 0 too)."""
    return picture[..., margin:picture.shape[-2] - margin, margin:picture.shape[-1] - margin]


def poster_stroke_factor(long_side: int) -> float:
    """How much larger the strokes are painted on a picture this large: 1 up to POSTER_FROM px, then growing as the
    square root of the side (at 8192 px, twice), so that a poster's strokes stay strokes a viewer sees, not a texture
    finer than print shows (bench/results/poster.md); the stroke-size control multiplies it."""
    return max(1.0, long_side / POSTER_FROM) ** 0.5


def painting_size(photo: Image.Image, stroke_scale: float) -> Image.Image:
    """The photo at the size the model paints it: its size divided by the stroke scale, within MIN_SIDE and MAX_SIDE."""
    if stroke_scale == 1:
        return photo
    scale = min(1 / stroke_scale, MAX_SIDE / max(photo.size))
    scale = max(scale, MIN_SIDE / min(photo.size))
    return photo.resize((round(photo.width * scale), round(photo.height * scale)), Image.LANCZOS if scale < 1 else Image.BICUBIC)


def feathered(mask: Image.Image) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(max(1.0, MASK_FEATHER * max(mask.size))))


def at_photo_size(out: torch.Tensor, photo: torch.Tensor, with_detail: bool) -> torch.Tensor:
    """The painting resized to the photo's size; with_detail adds back DETAIL_KEPT of the photo's luminance detail finer
    than the painting's size (large strokes, sharper outlines)."""
    if out.shape[-2:] == photo.shape[-2:]:
        return out
    result = resized(out, photo.shape[-2:])
    if with_detail:
        luminance = photo.mean(dim=1, keepdim=True)
        result = result + DETAIL_KEPT * (luminance - resized(resized(luminance, out.shape[-2:]), photo.shape[-2:]))
    return result.clamp(0, 1)


def finished_picture(out: torch.Tensor, photo: torch.Tensor, preserve_color: bool, with_detail: bool) -> Image.Image:
    """A painting (1, 3, h, w) as the user gets it: at the photo's size (at_photo_size), in the photo's colours where
    asked, as an RGB image."""
    out = at_photo_size(out.float().cpu(), photo, with_detail)
    return to_pil(keep_luminance_only(out, photo) if preserve_color else out)


def keep_luminance_only(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance from the stylised image, chroma (U, V) from the content."""
    yuv = rgb_to_yuv(stylized.float())
    yuv[:, 1:] = rgb_to_yuv(content.float())[:, 1:]
    return yuv_to_rgb(yuv).clamp(0, 1)
