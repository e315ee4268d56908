"""Every public argument of the library, given what a caller may pass by mistake: a picture or one ValueError line."""
import itertools
import math
import re
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from stylize.pipeline import Stylizer

from .test_pipeline import photo

ODD_VALUES = [None, "0.5", "x", "", True, False, math.nan, math.inf, -math.inf, -1, 0, 1, 0.5, 2, 10**12, 1e300,
              np.int64(1), np.float32(0.5), np.float64(2.0), np.bool_(True), np.array([1.0]), [], [1], {}, object(), b"x",
              np.nan]
# Each argument, called with every odd value; the extra arguments keep a valid refine short.
ARGUMENTS = {
    "strength": {}, "preserve_color": {}, "max_side": {}, "seed": {"refine_steps": 1}, "stroke_scale": {},
    "refine_steps": {"refine_seconds": 0.05}, "refine_seconds": {"refine_steps": 1}, "variant": {},
    "lambdas": {}, "lambda_style": {}, "style_weights": {}, "styles": {}, "mask": {}, "outside_style": {},
}


def call_arguments(name: str, value, content, style) -> dict:
    if name == "lambda_style":
        return {"content": content, "style": style, "lambdas": {"style": value}}
    if name in ("styles", "style_weights"):
        mix = {"styles": value} if name == "styles" else {"styles": [style, style], "style_weights": value}
        return {"content": content, **mix}
    return {"content": content, "style": style, name: value, **ARGUMENTS[name]}


def test_every_argument_gives_a_picture_or_one_line(tiny_model_dir):
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    content, style = photo(64, 64), photo(64, 64, 1)
    cases = list(itertools.product(ARGUMENTS, ODD_VALUES))
    started, outcomes = time.perf_counter(), {"picture": 0, "error": 0}
    for name, value in cases:
        kwargs = call_arguments(name, value, content, style)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # clamped values are said with a warning, tested elsewhere
            try:
                picture = stylizer(**kwargs)
            except ValueError as err:  # ImageInputError is one
                message = str(err)
                assert message and "\n" not in message and len(message) < 300, (name, value, message)
                outcomes["error"] += 1
                continue
            except Exception as err:  # noqa: BLE001 - the failure this test exists to find
                pytest.fail(f"{name}={value!r}: {err.__class__.__name__}: {err}")
        assert isinstance(picture, Image.Image) and picture.size == (64, 64), (name, value)
        outcomes["picture"] += 1
    seconds = time.perf_counter() - started
    assert len(cases) >= 300 and seconds < 30, (len(cases), seconds)
    assert outcomes["picture"] >= 40 and outcomes["error"] >= 200, outcomes


def test_the_reported_cases_each_get_their_line_or_their_picture(tiny_model_dir, tmp_path):
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    content, style = photo(64, 64), tmp_path / "a.png"
    photo(64, 64, 1).save(style)
    for kwargs, words in (({"strength": "0.5"}, "strength must be a finite number in [0, 1], got '0.5'"),
                          ({"seed": "x"}, "seed must be a whole number"),
                          ({"outside_style": style}, "outside_style goes with a mask")):
        with pytest.raises(ValueError, match=re.escape(words)):
            stylizer(content, style, **kwargs)
    assert stylizer(content, style, max_side=np.int64(64)).size == (64, 64)
    one = np.asarray(stylizer(content, style=str(style)))
    assert np.array_equal(np.asarray(stylizer(content, styles=str(style))), one)  # one painting, not five letters
