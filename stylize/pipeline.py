"""Inference: Stylizer.from_pretrained(...)(content, style, lambdas=...) -> PIL image.

Example:
    >>> from stylize.pipeline import Stylizer
    >>> stylizer = Stylizer.from_pretrained()            # the embedded weights/
    >>> image = stylizer("photo.jpg", "painting.jpg", lambdas={"style": 3.0}, strength=0.8)
"""
import hashlib
import warnings
from collections import OrderedDict
from pathlib import Path

import torch
from PIL import Image

from . import losses
from .checkpoint import load_model_folder
from .discriminator import MultiScaleDiscriminator, style_code
from .functional import rgb_to_yuv, yuv_to_rgb
from .generator import LAMBDA_NAMES, ContentEncoding, Generator, StyleEncoding
from .hub import resolve_model_folder
from .images import fit_size, load_image, to_pil, to_tensor

CACHE_ENTRIES = 8  # encodings kept per kind (content, style); an entry at 1024 px is ~60 MB


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class Stylizer:
    def __init__(self, generator: Generator, config: dict, discriminator: MultiScaleDiscriminator | None = None,
                 device: str | torch.device | None = "auto", dtype: torch.dtype | None = None):
        self.device = pick_device(device)
        # Half precision on accelerators; fp32 on the CPU, where half is slower and less exact.
        self.dtype = dtype or (torch.float16 if self.device.type in ("cuda", "mps") else torch.float32)
        self.generator = generator.eval().to(self.device, self.dtype, memory_format=torch.channels_last)
        self.discriminator = discriminator.eval().to(self.device) if discriminator is not None else None
        self.config = config
        self.style_max_side = config.get("style_max_side", 512)
        lam = config["lambdas"]
        self.lambda_defaults = {n: float(lam["defaults"][n]) for n in LAMBDA_NAMES}
        self.lambda_ranges = {n: tuple(map(float, lam["ranges"][n])) for n in LAMBDA_NAMES}
        self.normalisers = {n: float(lam["normalisers"][n]) for n in LAMBDA_NAMES}
        self._content_cache: OrderedDict = OrderedDict()
        self._style_cache: OrderedDict = OrderedDict()
        self.encoder_calls = 0  # content + style encodings actually computed (cache misses)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path | None = None, revision: str | None = None,
                        device: str | torch.device | None = "auto", dtype: torch.dtype | None = None) -> "Stylizer":
        generator, discriminator, config = load_model_folder(resolve_model_folder(path_or_repo_id, revision))
        return cls(generator, config, discriminator, device=device, dtype=dtype)

    # --- lambdas ---------------------------------------------------------------------------
    def resolve_lambdas(self, lambdas: dict[str, float] | None = None) -> torch.Tensor:
        """Checkpoint defaults overridden by `lambdas`; out-of-range values clamped with a warning. -> (1, 5)."""
        values = dict(self.lambda_defaults)
        unknown = set(lambdas or {}) - set(LAMBDA_NAMES)
        if unknown:
            raise ValueError(f"unknown lambda(s) {sorted(unknown)}; expected some of {list(LAMBDA_NAMES)}")
        for name, value in (lambdas or {}).items():
            lo, hi = self.lambda_ranges[name]
            value = float(value)
            if not lo <= value <= hi:
                clamped = min(max(value, lo), hi)
                warnings.warn(f"lambda_{name}={value:g} is outside the trained range [{lo:g}, {hi:g}]; using {clamped:g}", stacklevel=3)
                value = clamped
            values[name] = value
        return torch.tensor([[values[n] for n in LAMBDA_NAMES]], device=self.device)

    # --- cached encodings ------------------------------------------------------------------
    @staticmethod
    def _key(image: Image.Image) -> str:
        return hashlib.blake2b(image.tobytes(), digest_size=16, key=f"{image.size}".encode()).hexdigest()

    def _cached(self, cache: OrderedDict, key: str, compute):
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
        value = compute()
        self.encoder_calls += 1
        cache[key] = value
        while len(cache) > CACHE_ENTRIES:
            cache.popitem(last=False)
        return value

    def clear_cache(self) -> None:
        self._content_cache.clear()
        self._style_cache.clear()

    def _tensor(self, image: Image.Image) -> torch.Tensor:
        return to_tensor(image).to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)

    @torch.no_grad()
    def encode_content(self, image: Image.Image) -> ContentEncoding:
        return self._cached(self._content_cache, self._key(image), lambda: self.generator.encode_content(self._tensor(image)))

    @torch.no_grad()
    def encode_style(self, image: Image.Image) -> StyleEncoding:
        image = fit_size(image, self.style_max_side)
        return self._cached(self._style_cache, self._key(image), lambda: self.generator.encode_style(self._tensor(image)))

    # --- the one forward path ----------------------------------------------------------------
    @torch.no_grad()
    def stylize_tensor(self, content: ContentEncoding, style: StyleEncoding, lambdas: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
        return self.generator.decode(content, style, lambdas.to(self.device), strength).float()

    def __call__(self, content, style, lambdas: dict[str, float] | None = None, strength: float = 1.0,
                 preserve_color: bool = False, max_side: int = 1024, refine_steps: int = 0, seed: int | None = None) -> Image.Image:
        """content, style: path, bytes, PIL or array. Returns an RGB PIL image of the (max_side-scaled) content's size.

        Images under 64 px on the short side are upscaled to 64 (VGG needs that much); bad input raises
        stylize.images.ImageInputError.
        """
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"strength must be in [0, 1], got {strength}")
        content_image = fit_size(load_image(content, "content"), max_side)
        style_image = fit_size(load_image(style, "style"), self.style_max_side)  # once; encode_style's fit is then a no-op
        lambda_tensor = self.resolve_lambdas(lambdas)
        content_enc, style_enc = self.encode_content(content_image), self.encode_style(style_image)
        out = self.stylize_tensor(content_enc, style_enc, lambda_tensor, strength)
        if refine_steps > 0:
            out = self.refine(out, content_image, style_image, lambda_tensor, refine_steps, seed)
        if preserve_color:
            out = keep_luminance_only(out, to_tensor(content_image).to(out.device))
        return to_pil(out)

    def lambda_sweep_grid(self, contents: list[Image.Image], styles: list[Image.Image], tile: int = 192) -> Image.Image:
        """Rows: each (content, style) pair. Columns: content | style | default lambdas | low and high of each lambda."""
        settings = [{}] + [{name: self.lambda_ranges[name][i]} for name in LAMBDA_NAMES for i in (0, 1)]
        rows = []
        for content in contents:
            for style in styles:
                content_tile = fit_size(content, tile)
                cells = [content_tile, fit_size(style, tile)]
                content_enc, style_enc = self.encode_content(content_tile), self.encode_style(style)
                for overrides in settings:
                    cells.append(to_pil(self.stylize_tensor(content_enc, style_enc, self.resolve_lambdas(overrides))))
                rows.append(cells)
        cell_w = max(c.width for row in rows for c in row)
        cell_h = max(c.height for row in rows for c in row)
        grid = Image.new("RGB", (cell_w * len(rows[0]), cell_h * len(rows)), "white")
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                grid.paste(cell, (c * cell_w, r * cell_h))
        return grid

    def critic(self, image: torch.Tensor, style: StyleEncoding) -> list[torch.Tensor]:
        """The discriminator's patch logits for `image` as a stylisation of `style` (an unconditional D ignores it)."""
        return self.discriminator(image.float(), style_code(style.stats) if self.discriminator.conditional else None)

    # --- refine: optimise the image with exactly these lambdas ---------------------------------
    def refine(self, start: torch.Tensor, content_image: Image.Image, style_image: Image.Image,
               lambdas: torch.Tensor, steps: int, seed: int | None = None, lr: float = 0.01) -> torch.Tensor:
        """style_image already fitted to style_max_side, as __call__ passes it."""
        gen = torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)
        generator = self.generator.float()  # optimisation in fp32 whatever the inference dtype
        try:
            return self._refine(generator, start, content_image, style_image, lambdas, steps, gen, lr)
        finally:
            generator.to(self.dtype)

    def _refine(self, generator, start, content_image, style_image, lambdas, steps, gen, lr) -> torch.Tensor:
        encoder = generator.encoder
        with torch.no_grad():
            content = to_tensor(content_image).to(self.device)
            content_feats = encoder(content)
            style_feats = encoder(to_tensor(style_image).to(self.device))
            style_grams = losses.style_grams(style_feats)
            style_enc = Generator.style_encoding_from_feats(style_feats)
        # a little noise lets the optimiser leave the generator's exact output
        noise = torch.randn(start.shape, generator=gen).to(self.device) * 0.01
        image = (start.float() + noise).clamp(0, 1).requires_grad_(True)
        optimiser = torch.optim.Adam([image], lr=lr)
        content_enc_as_style = Generator.style_encoding_from_feats(content_feats)
        for _ in range(steps):
            with torch.enable_grad():
                feats = encoder(image)
                terms = {
                    "content": losses.content_loss(feats, content_feats),
                    "style": losses.style_loss(feats, style_grams),
                    "tv": losses.tv_loss(image),
                    "cycle": losses.cycle_loss(generator.decode(generator.encode_content(image), content_enc_as_style, lambdas), content),
                }
                if self.discriminator is not None:
                    terms["adv"] = losses.generator_adversarial_loss(self.critic(image, style_enc))
                loss = losses.weighted_objective(terms, lambdas, self.normalisers).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
            optimiser.step()
            with torch.no_grad():
                image.clamp_(0, 1)
        return image.detach()


def keep_luminance_only(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance from the stylised image, chroma (U, V) from the content."""
    yuv = rgb_to_yuv(stylized.float())
    yuv[:, 1:] = rgb_to_yuv(content.float())[:, 1:]
    return yuv_to_rgb(yuv).clamp(0, 1)
