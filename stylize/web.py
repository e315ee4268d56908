"""The web app's requests: what a page or an API caller sends, as one settings object that gives Stylizer's arguments
(or a one-line ValueError), and the line that describes a result. No Gradio here: app.py wires these to the page."""
import math
from dataclasses import dataclass, field

from PIL import Image, ImageChops

from .lambda_spec import LAMBDA_NAMES

MIX_SLOTS = (2, 3, 4)  # the further styles of a mix: style_2 ... style_4, weighted by weight_2 ... weight_4


def painted_mask(layers: list | None, mask_upload):
    """The region the style applies to: the uploaded mask, else what was painted on the photo (the layers' opaque
    pixels); None where neither holds anything."""
    if mask_upload is not None:
        return mask_upload
    if not layers:
        return None
    alpha = layers[0].getchannel("A")
    for layer in layers[1:]:
        alpha = ImageChops.lighter(alpha, layer.getchannel("A").resize(alpha.size))
    return alpha if alpha.getextrema()[1] > 0 else None


@dataclass
class Request:
    """One render's settings, from the page (λ as log10 sliders, a painted region) or the API (λ itself, a mask file)."""

    content: object
    style: object
    lambdas: dict
    strength: float = 1.0
    preserve_color: bool = False
    resolution: int = 512
    variant: str = "quality"
    stroke_scale: float = 1.0
    mix: list = field(default_factory=list)  # (image, weight) of every style, the first's first; empty slots left out
    mask: object = None
    outside_style: object = None

    @classmethod
    def from_inputs(cls, inputs: dict, default_variant: str) -> "Request":
        """inputs: the event's keyword arguments (app.py's component names); missing ones take their defaults."""
        if "lambda_content" in inputs or not any(f"log_{n}" in inputs for n in LAMBDA_NAMES):
            lambdas = {n: inputs[f"lambda_{n}"] for n in LAMBDA_NAMES if inputs.get(f"lambda_{n}") is not None}
        else:  # the page's sliders move log10 λ
            lambdas = {n: 10.0 ** to_number(inputs[f"log_{n}"], f"λ {n}") for n in LAMBDA_NAMES}
        styles = [inputs.get("style"), *(inputs.get(f"style_{k}") for k in MIX_SLOTS)]
        weights = [inputs.get(f"weight_{k}", 1.0) for k in (1, *MIX_SLOTS)]
        mask = inputs.get("mask") or painted_mask(inputs.get("region"), inputs.get("mask_upload"))
        return cls(content=inputs.get("content"), style=inputs.get("style"), lambdas=lambdas,
                   strength=inputs.get("strength", 1.0), preserve_color=inputs.get("preserve_color", False),
                   resolution=inputs.get("resolution", 512), variant=inputs.get("variant") or default_variant,
                   stroke_scale=inputs.get("stroke_scale", 1.0),
                   mix=[(s, w) for s, w in zip(styles, weights) if s is not None], mask=mask,
                   outside_style=inputs.get("outside_style") if mask is not None else None)

    def images(self) -> list:
        """The files this request reads (uploads the disk budget must keep)."""
        return [i for i in (self.content, *(s for s, _ in self.mix), self.mask, self.outside_style) if isinstance(i, str)]

    def options(self, variants: tuple[str, ...], regions: bool = True) -> dict:
        """Stylizer keyword arguments (the content apart); ValueError in one line where a setting is wrong.
        regions=False leaves the mask out (refine paints the whole picture)."""
        if self.content is None or self.style is None:
            raise ValueError("Add a content photo and a style image first.")
        if self.variant not in variants:
            raise ValueError(f"model must be one of: {', '.join(variants)}")
        options = dict(lambdas={n: to_number(v, f"λ {n}") for n, v in self.lambdas.items()},
                       strength=to_number(self.strength, "strength"), preserve_color=bool(self.preserve_color),
                       max_side=int(to_number(self.resolution, "resolution")), variant=self.variant,
                       stroke_scale=to_number(self.stroke_scale, "stroke size"))
        if len(self.mix) == 1:
            options["style"] = self.style
        else:
            options["styles"] = [s for s, _ in self.mix]
            options["style_weights"] = [to_number(w, "a style weight") for _, w in self.mix]
        if regions and self.mask is not None:
            options.update(mask=self.mask, outside_style=self.outside_style)
        return options


def to_number(value, name: str) -> float:
    """A number from a form or an API call (a string of digits too); the pipeline checks its range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def refine_budget(seconds, steps, max_seconds: float) -> tuple[float, int]:
    """Paint harder's seconds (in (0, max_seconds]) and steps (a whole number >= 0; 0: as many as fit)."""
    seconds, steps = to_number(seconds, "seconds"), to_number(steps or 0, "steps")
    if not (0 < seconds <= max_seconds and steps >= 0 and steps == int(steps)):
        raise ValueError(f"seconds must be in (0, {max_seconds:g}] and steps a whole number >= 0.")
    return seconds, int(steps)


def describe(image: Image.Image, elapsed: float, options: dict, stylizer, note: str = "") -> str:
    weights = ", ".join(f"{n} {v:.3g}" for n, v in options["lambdas"].items())
    mix = f" · {len(options['styles'])} styles mixed" if "styles" in options else ""
    region = " · painted regions" if "mask" in options else ""
    return (f"**{image.width}×{image.height}** in **{elapsed:.2f} s** on `{stylizer.device}`, {stylizer.precision} ({options['variant']}) · "
            f"λ: {weights}{mix}{region}{note}")


def describe_video(frames: int, rate: float, sound: bool, elapsed: float, options: dict, stylizer) -> str:
    return (f"**{frames} frames** at {rate:g} fps in **{elapsed:.1f} s** ({frames / elapsed:.1f} frames/s) on `{stylizer.device}` "
            f"({options['variant']}) · {'sound kept' if sound else 'no sound'}")
