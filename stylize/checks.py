"""The library's arguments, checked: a number is a real number (numpy scalars too), never a string or a bool; anything
else is one ValueError line naming the argument and what it takes."""
import math
import numbers
import warnings
from collections.abc import Iterable
from pathlib import Path

from .images import MIN_SIDE

MAX_SIDE = 8192  # largest output side (posters: painted in tiles past 2048 px); larger requests are clamped with a warning
MAX_STYLES = 4  # paintings in one mix
STROKE_SCALES = (0.5, 2.0)  # the stroke-size control's range: the working size runs from twice to half the output's


def checked_number(value, name: str, lowest: float = -math.inf, highest: float = math.inf, *, whole: bool = False):
    """`value` as a Python int (whole) or float, finite and within [lowest, highest]; ValueError otherwise."""
    kind = numbers.Integral if whole else numbers.Real
    if isinstance(value, kind) and not isinstance(value, bool):
        value = int(value) if whole else float(value)
        if math.isfinite(value) and lowest <= value <= highest:
            return value
    span = (f" >= {lowest:g}" if highest == math.inf else f" in [{lowest:g}, {highest:g}]") if lowest > -math.inf else ""
    raise ValueError(f"{name} must be a {'whole' if whole else 'finite'} number{span}, got {value!r}")


def checked_flag(value, name: str) -> bool:
    if isinstance(value, (bool, numbers.Integral)) and value in (0, 1) or getattr(value, "dtype", None) == bool:
        return bool(value)
    raise ValueError(f"{name} must be True or False, got {value!r}")


def checked_max_side(max_side) -> int:
    """max_side as the pipeline uses it: a whole number >= MIN_SIDE; above MAX_SIDE it is clamped with a warning."""
    max_side = checked_number(max_side, "max side (pixels)", MIN_SIDE, whole=True)
    if max_side > MAX_SIDE:
        warnings.warn(f"max side {max_side} is above the limit of {MAX_SIDE} px (memory); using {MAX_SIDE}", stacklevel=3)
        return MAX_SIDE
    return max_side


def is_one_image(value) -> bool:
    """A path, bytes, PIL image or array: one picture, where a list of them is a mix."""
    return isinstance(value, (str, Path, bytes, bytearray)) or hasattr(value, "shape") or hasattr(value, "getpixel")


def checked_styles(style, styles, weights) -> tuple[list, list[float]]:
    """The paintings to use and their weights, normalised to sum 1; styles of weight 0 are left out, so a mix of one
    style at weight 1 is exactly that style. styles may be one picture (a mix of one)."""
    if (style is None) == (styles is None):
        raise ValueError("give one style, or a list of styles (styles=[...]), not both" if style is not None else "no style given")
    if styles is not None and not is_one_image(styles) and (isinstance(styles, dict) or not isinstance(styles, Iterable)):
        raise ValueError(f"styles must be a list of images (paths, bytes, PIL images or arrays); got {styles!r}")
    styles = [style] if styles is None else [styles] if is_one_image(styles) else list(styles)
    if not 1 <= len(styles) <= MAX_STYLES:
        raise ValueError(f"a mix takes 1 to {MAX_STYLES} styles, got {len(styles)}")
    if weights is not None and (isinstance(weights, (str, bytes, dict)) or not isinstance(weights, Iterable)):
        raise ValueError(f"style weights must be a list of numbers, one per style; got {weights!r}")
    weights = [1.0] * len(styles) if weights is None else list(weights)
    if len(weights) != len(styles):
        raise ValueError(f"{len(styles)} styles but {len(weights)} style weights")
    weights = [checked_number(w, "a style weight", 0.0) for w in weights]
    if not sum(weights):
        raise ValueError(f"style weights must not all be 0, got {weights}")
    kept = [(s, w / sum(weights)) for s, w in zip(styles, weights) if w > 0]
    return [s for s, _ in kept], [w for _, w in kept]
