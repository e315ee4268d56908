"""Inference: Stylizer.from_pretrained(...)(content, style, lambdas=...) -> PIL image.

Example:
    >>> from stylize.pipeline import Stylizer
    >>> stylizer = Stylizer.from_pretrained()            # the embedded weights/
    >>> image = stylizer("photo.jpg", "painting.jpg", lambdas={"style": 3.0}, strength=0.8)
"""
import copy
import hashlib
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

import torch
from PIL import Image

from .checks import STROKE_SCALES, checked_flag, checked_max_side, checked_number, checked_styles
from .checkpoint import STUDENT_DIR, STYLE_MAX_SIDE, CheckpointError, load_discriminator, load_model_folder, matching_student
from .devices import pick_device, pick_dtype, precision_name
from .discriminator import MultiScaleDiscriminator, style_code
from .encoding_cache import CACHE_BYTES, EncodingCache
from .generator import Generator, StyleEncoding, StyleMix
from .hub import resolve_model_folder
from .images import fit_size, load_image, load_mask, to_tensor
from .lambda_spec import LambdaSpec
from .picture import (
    feathered, finished_picture, painting_size, poster_stroke_factor, with_margin, without_margin,
)
from .refine import refine as refined_pictures
from .student import Student
from .tiling import ONE_PASS_SIDE, poster_steps
from .video import stylize_video

VARIANTS = ("quality", "fast")  # the VGG generator (the teacher); its distilled student, for CPUs
FITTED_IMAGES, FITTED_BYTES = 8, 512 * 2**20  # decoded image files kept for repeated calls: 8 at 2048 px hold ~100 MB


class Stylizer:
    def __init__(self, generator: Generator, config: dict, discriminator: MultiScaleDiscriminator | None = None,
                 device: str | torch.device | None = "auto", dtype: torch.dtype | None = None,
                 cache_bytes: int = CACHE_BYTES, model_folder: Path | None = None, student: Student | None = None,
                 variant: str = "quality"):
        """`model_folder`: where a critic not passed in is loaded from, on first use (refine, the λ_adv sweep).
        `student`: the fast variant (train/distill.py), rendering with the generator's λ; refine always uses the generator."""
        self.device = pick_device(device)
        self.dtype = dtype or pick_dtype(self.device)
        self.generator = generator.eval().to(self.device, self.dtype, memory_format=torch.channels_last)
        self.student = student.eval().to(self.device, self.dtype, memory_format=torch.channels_last) if student else None
        self._discriminator = discriminator.eval().to(self.device) if discriminator is not None else None
        self._critic_folder = None if discriminator is not None else model_folder
        self.config = config
        self.style_max_side = config.get("style_max_side", STYLE_MAX_SIDE)
        self.lambda_spec = LambdaSpec.from_config(config["lambdas"])
        self.cache = EncodingCache(cache_bytes)
        self.encoder_calls = 0  # content + style encodings actually computed (cache misses)
        self._refine_generator: Generator | None = None
        self._fitted: OrderedDict = OrderedDict()  # recently used image files, decoded and fitted (fitted())
        self.variant = self.checked_variant(variant)

    @property
    def lambda_defaults(self) -> dict[str, float]:
        return self.lambda_spec.defaults

    @property
    def lambda_ranges(self) -> dict[str, tuple[float, float]]:
        return self.lambda_spec.ranges

    @property
    def variants(self) -> tuple[str, ...]:
        return VARIANTS if self.student is not None else VARIANTS[:1]

    def checked_variant(self, variant: str | None) -> str:
        variant = self.variant if variant is None else variant
        if not isinstance(variant, str) or variant not in self.variants:
            raise ValueError(f"variant {variant!r} is not available; choose one of: {', '.join(self.variants)}")
        return variant

    def model(self, variant: str | None = None) -> Generator | Student:
        return self.student if self.checked_variant(variant) == "fast" else self.generator

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path | None = None, *, variant: str = "quality", revision: str | None = None,
                        token: str | bool | None = None, cache_dir: str | Path | None = None, local_files_only: bool = False,
                        force_download: bool = False, device: str | torch.device | None = "auto",
                        dtype: torch.dtype | None = None, cache_bytes: int = CACHE_BYTES) -> "Stylizer":
        """None: the embedded default; a folder; or a Hub repo id, downloaded (only the model's files) and cached.

        variant: "quality" (the VGG generator), "fast" (its distilled student, where one distilled from this very
        generator is in the folder; otherwise a warning and the generator) or "auto" (fast on a CPU, else quality).
        revision, token, cache_dir, local_files_only, force_download: as in huggingface_hub.snapshot_download.
        """
        if variant not in (*VARIANTS, "auto"):
            raise ValueError(f"variant must be one of {', '.join((*VARIANTS, 'auto'))}, got {variant!r}")
        folder = resolve_model_folder(path_or_repo_id, revision=revision, token=token, cache_dir=cache_dir,
                                      local_files_only=local_files_only, force_download=force_download)
        generator, config = load_model_folder(folder)
        if variant == "auto":
            variant = "fast" if pick_device(device).type == "cpu" and (folder / STUDENT_DIR).is_dir() else "quality"
        student = matching_student(folder) if variant == "fast" else None
        return cls(generator, config, device=device, dtype=dtype, cache_bytes=cache_bytes, model_folder=folder,
                   student=student, variant="fast" if student is not None else "quality")

    @property
    def precision(self) -> str:
        """What the renders compute in: "bf16", "fp16" or "fp32"."""
        return precision_name(self.dtype)

    @property
    def discriminator(self) -> MultiScaleDiscriminator | None:
        """The critic, loaded on first use: a missing or broken one costs refine its adversarial term, nothing else."""
        if self._critic_folder is not None:
            folder, self._critic_folder = self._critic_folder, None
            try:
                critic = load_discriminator(folder, self.config)
            except CheckpointError as err:
                warnings.warn(f"the critic is unavailable, so refine leaves out the adversarial term: {err}", stacklevel=2)
                critic = None
            self._discriminator = critic.to(self.device) if critic is not None else None
        return self._discriminator

    # --- lambdas ---------------------------------------------------------------------------
    def resolve_lambdas(self, lambdas: dict[str, float] | None = None) -> torch.Tensor:
        """The checkpoint's defaults overridden by `lambdas`; out-of-range values clamped with a warning. -> (1, 5)."""
        return torch.tensor([self.lambda_spec.resolve(lambdas)], device=self.device)

    # --- cached encodings ------------------------------------------------------------------
    @staticmethod
    def _key(image: Image.Image) -> str:
        return hashlib.blake2b(image.tobytes(), digest_size=16, key=f"{image.size}".encode()).hexdigest()

    def _cached(self, key: tuple, compute):
        value, computed = self.cache.get(key, compute)
        self.encoder_calls += computed
        return value

    def clear_cache(self) -> None:
        self.cache.clear()

    def _tensor(self, image: Image.Image | torch.Tensor) -> torch.Tensor:
        tensor = image if isinstance(image, torch.Tensor) else to_tensor(image)
        return tensor.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def encode_content(self, image: Image.Image, variant: str | None = None, cached: bool = True):
        """cached=False for a picture seen once (a video's frame, also as a (1, 3, H, W) tensor): kept, it would only push
        the others out."""
        variant = self.checked_variant(variant)
        encode = lambda: self.model(variant).encode_content(with_margin(self._tensor(image)))  # noqa: E731
        return self._cached(("content", variant, self._key(image)), encode) if cached else encode()

    @torch.no_grad()
    def encode_style(self, image: Image.Image, variant: str | None = None):
        variant = self.checked_variant(variant)
        image = fit_size(image, self.style_max_side)
        return self._cached(("style", variant, self._key(image)), lambda: self.model(variant).encode_style(self._tensor(image)))

    # --- the one forward path ----------------------------------------------------------------
    @torch.no_grad()
    def stylize_tensor(self, content, style, lambdas: torch.Tensor, strength: float = 1.0, variant: str | None = None) -> torch.Tensor:
        """content, style: encode_content / encode_style of the same variant; region maps (in strength or a StyleMix) at
        the photo's size."""
        if isinstance(style, StyleMix):
            style = StyleMix(style.styles, [with_margin(w) for w in style.weights])
        out = self.model(variant).decode(content, style, lambdas.to(self.device), with_margin(strength)).float()
        return without_margin(out)

    def __call__(self, content, style=None, lambdas: dict[str, float] | None = None, strength: float = 1.0,
                 preserve_color: bool = False, max_side: int = 1024, refine_steps: int = 0, seed: int | None = None,
                 variant: str | None = None, **controls) -> Image.Image:
        """content, style: path, bytes, PIL or array. Returns an RGB PIL image of the (max_side-scaled) content's size.

        Images under 64 px on the short side are upscaled to 64 (VGG needs that much); max_side is at most MAX_SIDE
        (larger values are clamped with a warning); bad input raises stylize.images.ImageInputError, bad numbers
        ValueError. variant: "quality" or "fast" (default: the one from_pretrained chose).
        controls (see stylize_steps): styles, style_weights (a mix), mask, outside_style (regions), stroke_scale,
        refine_seconds, progress.
        """
        for image in self.stylize_steps(content, style, lambdas, strength, preserve_color, max_side, refine_steps, seed,
                                        variant, **controls):
            pass
        return image

    def stylize_steps(self, content, style=None, lambdas: dict[str, float] | None = None, strength: float = 1.0,
                      preserve_color: bool = False, max_side: int = 1024, refine_steps: int = 0,
                      seed: int | None = None, variant: str | None = None, *, styles: list | None = None,
                      style_weights: list[float] | None = None, mask=None, outside_style=None,
                      stroke_scale: float = 1.0, refine_seconds: float | None = None, progress=None) -> Iterator[Image.Image]:
        """What __call__ computes, one picture at a time: the one-pass result, then the image after each refine step.
        A caller may stop early (a time budget, a Stop button) and keep the last picture it got.

        styles, style_weights: up to MAX_STYLES paintings mixed with these weights (default equal) in place of `style`.
        mask: an image, white (or opaque) where the style applies; elsewhere the photo stays, or `outside_style` paints.
        stroke_scale: brush strokes larger (up to 2) or smaller (down to 0.5) at the same output size: the model paints
        the photo at its size divided by this, and larger strokes get some of the photo's fine detail back.
        refine_seconds: refine for this long (the one-pass picture not counted), as many steps as fit; with refine_steps
        too, whichever ends first. A stronger painting on any machine: docs/usage.md.
        progress: called with (tiles done, tiles in all) while a poster (painted past 2048 px) is painted."""
        strength = checked_number(strength, "strength", 0.0, 1.0)
        preserve_color = checked_flag(preserve_color, "preserve_color")
        refine_steps = checked_number(refine_steps, "refine steps", 0, whole=True)
        stroke_scale = checked_number(stroke_scale, "stroke scale", *STROKE_SCALES)
        if refine_seconds is not None:
            refine_seconds = checked_number(refine_seconds, "refine seconds", 0.0)
        if seed is not None:
            seed = checked_number(seed, "seed", 0, 2**63 - 1, whole=True)
        refining = bool(refine_steps or refine_seconds)
        if mask is not None and refining:
            raise ValueError("refine does not take a region mask: render the regions in one pass, or refine without a mask")
        if outside_style is not None and mask is None:
            raise ValueError("outside_style goes with a mask: it paints where the mask is black")
        max_side = checked_max_side(max_side)
        variant = self.checked_variant(variant)
        lambda_tensor = self.resolve_lambdas(lambdas)
        style_images, weights = checked_styles(style, styles, style_weights)
        photo = self.fitted(content, "content", max_side)
        stroke_scale *= poster_stroke_factor(max(photo.size))
        work_image = painting_size(photo, stroke_scale)
        style_images = [self.fitted(s, f"style {i + 1}" if len(style_images) > 1 else "style", self.style_max_side)
                        for i, s in enumerate(style_images)]  # fitted once: encode_style's own fit is then a no-op
        style_arg = self.style_argument(style_images, weights, variant)
        strength_arg = strength
        if mask is not None:
            region = to_tensor(feathered(load_mask(mask, work_image.size)).convert("RGB"))[:, :1].to(self.device, self.dtype)
            if outside_style is not None:
                outside = self.encode_style(self.fitted(outside_style, "outside style", self.style_max_side), variant)
                inside = style_arg if isinstance(style_arg, StyleMix) else StyleMix([style_arg], [1.0])
                style_arg = StyleMix([*inside.styles, outside], [*(w * region for w in inside.weights), 1 - region])
            else:
                strength_arg = strength * region
        if max(work_image.size) > ONE_PASS_SIDE:
            yield from poster_steps(self, photo, work_image, style_arg, lambda_tensor, strength_arg, variant, preserve_color,
                                    stroke_scale > 1, refining and dict(style_images=style_images, weights=weights,
                                    lambdas=lambda_tensor, steps=refine_steps or None, seconds=refine_seconds or None, seed=seed),
                                    progress)
            return
        photo_tensor = to_tensor(photo)
        finish = lambda out: finished_picture(out, photo_tensor, preserve_color, with_detail=stroke_scale > 1)  # noqa: E731
        content_enc = self.encode_content(work_image, variant)
        out = self.stylize_tensor(content_enc, style_arg, lambda_tensor, strength_arg, variant)
        yield finish(out)
        if refining:
            for out in self.refine(out, work_image, style_images, weights, lambda_tensor, refine_steps or None,
                                   refine_seconds or None, seed):
                yield finish(out)

    def stylize_video(self, content, style=None, output=None, **controls):
        """A clip painted frame by frame: written to `output` (.mp4, sound kept) -> (frames, fps, sound), or without it an
        iterator of PIL frames. controls: lambdas, strength, preserve_color, max_side, stroke_scale, variant, styles and
        style_weights (a mix), steadiness, progress."""
        return stylize_video(self, content, style, output, **controls)

    def fitted(self, source, name: str, max_side: int) -> Image.Image:
        """load_image + fit_size; a file path seen before (same size and modification time) is not decoded and resized
        again: a slider move re-sends the same files."""
        if not isinstance(source, (str, Path)):
            return fit_size(load_image(source, name), max_side)
        try:
            stat = Path(source).stat()
        except OSError:
            return fit_size(load_image(source, name), max_side)  # the loader's own one-line error
        key = (str(source), stat.st_mtime_ns, stat.st_size, max_side)
        if key not in self._fitted:
            self._fitted[key] = fit_size(load_image(source, name), max_side)
            while len(self._fitted) > 1 and (len(self._fitted) > FITTED_IMAGES or
                                             sum(3 * i.width * i.height for i in self._fitted.values()) > FITTED_BYTES):
                self._fitted.popitem(last=False)
        self._fitted.move_to_end(key)
        return self._fitted[key]

    def style_argument(self, style_images: list[Image.Image], weights: list[float], variant: str):
        """The decoders' style input: one style's encoding, or a StyleMix of several."""
        encodings = [self.encode_style(image, variant) for image in style_images]
        return encodings[0] if len(encodings) == 1 else StyleMix(encodings, weights)

    def critic(self, image: torch.Tensor, style: StyleEncoding) -> list[torch.Tensor]:
        """The discriminator's patch logits for `image` as a stylisation of `style` (an unconditional D ignores it)."""
        return self.discriminator(image.float(), style_code(style.stats) if self.discriminator.conditional else None)

    # --- refine: optimise the image with exactly these lambdas ---------------------------------
    def refine(self, start: torch.Tensor, content_image: Image.Image, style_images: list[Image.Image], weights: list[float],
               lambdas: torch.Tensor, steps: int | None = None, seconds: float | None = None,
               seed: int | None = None) -> Iterator[torch.Tensor]:
        """Yields the picture after each refine step on exactly these lambdas' objective (stylize.refine), until `steps`
        steps or `seconds`. Several styles: their Gram matrices and statistics mixed with `weights`. style_images
        already fitted to style_max_side."""
        to_device = lambda image: to_tensor(image).to(self.device)  # noqa: E731
        yield from refined_pictures(self._fp32_generator(), self.discriminator, start, to_device(content_image),
                                    [to_device(image) for image in style_images], weights, lambdas, self.lambda_spec,
                                    steps=steps, seconds=seconds, seed=seed)

    def _fp32_generator(self) -> Generator:
        """Refine optimises an fp32 image with fp32 weights; in half precision it uses its own fp32 copy, so renders
        running meanwhile keep theirs."""
        if self.dtype == torch.float32:
            return self.generator
        if self._refine_generator is None:
            self._refine_generator = copy.deepcopy(self.generator).float()
        return self._refine_generator
