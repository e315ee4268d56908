"""Posters: tiled painting equals the one-pass picture where both fit; 8K sizes admitted; memory checked first."""
import io

import numpy as np
import pytest
import torch
from PIL import Image

import stylize.pipeline as pipeline
import stylize.tiling as tiling
from stylize.images import ImageInputError, load_image
from stylize.pipeline import Stylizer

from .conftest import REPO

PHOTO = REPO / "examples" / "content" / "deb-skimage-chelsea.jpg"
STYLE = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"


@pytest.fixture(scope="module")
def default() -> Stylizer:
    torch.set_num_threads(2)
    return Stylizer.from_pretrained(device="cpu", variant="fast")


def at_side(side: int) -> Image.Image:
    return Image.open(PHOTO).convert("RGB").resize((side, side * 2 // 3), Image.LANCZOS)


def tiled(monkeypatch, core: int) -> None:
    """Every picture painted in tiles of `core` px, however small."""
    monkeypatch.setattr(pipeline, "ONE_PASS_SIDE", 0)
    monkeypatch.setattr(tiling, "TILE_CORE", {"quality": core, "fast": core})


@pytest.mark.parametrize("variant,side", [("fast", 2048), ("fast", 1024), ("quality", 1024)])
def test_tiles_paint_the_one_pass_picture(default, monkeypatch, variant, side):
    photo, mask = at_side(side), Image.new("L", (side, side * 2 // 3), 0)
    mask.paste(255, (0, 0, side // 2, side))
    settings = [{"style": STYLE}, {"style": STYLE, "stroke_scale": 2.0, "preserve_color": True},
                {"style": STYLE, "mask": mask, "strength": 0.7, "outside_style": PHOTO},
                {"styles": [STYLE, PHOTO], "style_weights": [0.7, 0.3], "lambdas": {"style": 20.0}}][: 4 if variant == "fast" else 1]
    whole = [np.asarray(default(photo, max_side=side, variant=variant, **s), dtype=float) for s in settings]
    tiled(monkeypatch, 512)
    for one_pass, s in zip(whole, settings):
        in_tiles = np.asarray(default(photo, max_side=side, variant=variant, **s), dtype=float)
        difference = np.abs(in_tiles - one_pass)
        assert difference.mean() < 1 and difference.max() <= 8, (s.keys(), difference.mean(), difference.max())


def test_refine_carries_its_change_up_to_a_tiled_picture(default, monkeypatch):
    tiled(monkeypatch, 256)
    pictures = list(default.stylize_steps(at_side(600), STYLE, max_side=600, refine_steps=2))
    assert len(pictures) == 3 and all(p.size == (600, 400) for p in pictures)
    assert np.abs(np.asarray(pictures[-1], dtype=float) - np.asarray(pictures[0], dtype=float)).mean() > 0.5


def test_a_poster_the_machine_cannot_hold_is_one_line_before_any_work(default, monkeypatch):
    monkeypatch.setattr(tiling, "available_memory", lambda: 2**30)
    monkeypatch.setattr(tiling, "paint", lambda *a, **k: pytest.fail("painted although it could not fit"))
    with pytest.raises(ValueError, match=r"a 8192x5461 picture needs about \d+\.\d GiB with the fast model and this "
                                         r"machine has 1\.0 GiB free: choose a smaller max side"):
        default(at_side(8192), STYLE, max_side=8192)


def test_eight_k_photos_are_admitted_and_larger_ones_refused():
    def png(width: int, height: int) -> bytes:
        buffer = io.BytesIO()
        Image.new("L", (width, height)).save(buffer, format="PNG")
        return buffer.getvalue()

    assert load_image(png(8192, 8192)).size == (8192, 8192)
    with pytest.raises(ImageInputError, match="too large to decode"):
        load_image(png(8193, 8192))


def test_strokes_grow_with_a_poster_and_the_control_still_works():
    from stylize.picture import poster_stroke_factor

    assert [poster_stroke_factor(side) for side in (1024, 2048, 8192)] == [1.0, 1.0, 2.0]
