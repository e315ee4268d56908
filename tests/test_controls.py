"""Creative controls, each checked for its effect: style mixing, painted regions, stroke size, batches (CLI)."""
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from .helpers import spearman, texture_frequency
from stylize.encoder import TAPS
from stylize.functional import mean_std
from stylize.images import ImageInputError, to_tensor
from stylize.pipeline import Stylizer

from .conftest import REPO

CONTENT = REPO / "examples" / "content" / "deb-skimage-astronaut.jpg"
STYLE_A = REPO / "examples" / "style" / "deb-gcompris-van_gogh_the_night_cafe.jpg"
STYLE_B = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"
SIDE = 160


@pytest.fixture(scope="module")
def default() -> Stylizer:
    torch.set_num_threads(2)
    return Stylizer.from_pretrained(device="cpu", variant="fast")  # the generator is "quality"; its student "fast"


def pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float64)


@pytest.mark.parametrize("variant", ["quality", "fast"])
def test_a_mix_at_weights_1_0_is_exactly_the_single_style(default, variant):
    single = default(CONTENT, STYLE_A, max_side=SIDE, variant=variant)
    mixed = default(CONTENT, styles=[STYLE_A, STYLE_B], style_weights=[1, 0], max_side=SIDE, variant=variant)
    assert np.array_equal(pixels(single), pixels(mixed))


@pytest.mark.parametrize("variant", ["quality", "fast"])
def test_a_half_and_half_mix_lies_between_the_two_styles(default, variant, measuring_vgg):
    """Per VGG tap, the mix output's channel statistics project between the two single-style outputs' (t in (0.2, 0.8))."""
    outputs = [default(CONTENT, STYLE_A, max_side=SIDE, variant=variant),
               default(CONTENT, styles=[STYLE_A, STYLE_B], max_side=SIDE, variant=variant),
               default(CONTENT, STYLE_B, max_side=SIDE, variant=variant)]
    with torch.no_grad():
        feats = [measuring_vgg(to_tensor(o)) for o in outputs]
    for tap in range(len(TAPS)):
        a, mix, b = (torch.cat([t.flatten() for t in mean_std(f[tap])]) for f in feats)
        t = ((mix - a) @ (b - a) / (b - a).pow(2).sum()).item()
        assert 0.2 < t < 0.8, (TAPS[tap], t)


@pytest.mark.parametrize("variant", ["quality", "fast"])
def test_a_painted_region_takes_the_style_and_the_rest_keeps_the_photo_or_takes_a_second_style(default, variant):
    photo = Image.open(CONTENT).convert("RGB")
    photo.thumbnail((SIDE, SIDE))
    mask = Image.new("L", (photo.width * 3, photo.height * 3))  # another size than the photo's: resized
    ImageDraw.Draw(mask).rectangle([0, 0, mask.width // 2, mask.height], fill=255)
    left, right = np.s_[:, : photo.width * 3 // 8], np.s_[:, photo.width * 5 // 8:]  # away from the feathered edge
    single_a, single_b = (pixels(default(CONTENT, s, max_side=SIDE, variant=variant)) for s in (STYLE_A, STYLE_B))
    photo_back = pixels(default(CONTENT, STYLE_A, strength=0.0, max_side=SIDE, variant=variant))  # as well as the model can
    kept = pixels(default(CONTENT, STYLE_A, mask=mask, max_side=SIDE, variant=variant))
    assert np.abs(kept[left] - single_a[left]).mean() < 3
    assert np.abs(kept[right] - photo_back[right]).mean() < 3  # strength 0 there
    assert np.abs(kept[right] - pixels(photo)[right]).mean() < np.abs(single_a[right] - pixels(photo)[right]).mean() / 2
    if variant == "quality":
        assert np.abs(kept[right] - pixels(photo)[right]).mean() < 8
    two = pixels(default(CONTENT, STYLE_A, mask=mask, outside_style=STYLE_B, max_side=SIDE, variant=variant))
    for region, own, other in ((left, single_a, single_b), (right, single_b, single_a)):
        # 20 px from the edge a region is its own style's picture: the student's FiLM takes each region's style code
        # (a code mixed by the regions' shares gave both halves 6-7 % of the other style, all the way across)
        assert np.abs(two[region] - own[region]).mean() < min(1, np.abs(own[region] - other[region]).mean() / 40)


def test_bad_controls_are_one_line_errors(default):
    for kwargs, words in (({"mask": b"not an image"}, "mask: not an image"), ({"stroke_scale": 5}, "stroke scale"),
                          ({"stroke_scale": float("nan")}, "stroke scale"), ({"mask": STYLE_A, "refine_steps": 1}, "refine")):
        with pytest.raises((ImageInputError, ValueError), match=words):
            default(CONTENT, STYLE_A, max_side=64, variant="quality", **kwargs)
    for kwargs, words in (({"styles": [STYLE_A] * 5}, "1 to 4 styles"), ({"styles": [STYLE_A, STYLE_B], "style_weights": [1]}, "2 styles but 1"),
                          ({"styles": [STYLE_A, STYLE_B], "style_weights": [0, 0]}, "must not all be 0")):
        with pytest.raises(ValueError, match=words):
            default(CONTENT, max_side=64, **kwargs)


def test_the_stroke_size_control_moves_the_texture_scale_monotonically(default):
    photo = Image.open(CONTENT).convert("RGB")
    photo.thumbnail((192, 192))
    scales = [0.5, 0.71, 1.0, 1.41, 2.0]
    frequencies = [texture_frequency(default(photo, STYLE_A, max_side=192, stroke_scale=k, variant="quality")) for k in scales]
    print("stroke scale -> texture frequency", dict(zip(scales, np.round(frequencies, 4))))
    assert spearman(scales, frequencies) <= -0.9  # larger strokes, lower frequency
    assert default(photo, STYLE_A, max_side=192, stroke_scale=2).size == photo.size


def test_the_cli_mixes_paints_regions_and_batches_folders_and_globs(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "stylize", *map(str, args), "--max-side", "96", "--variant", "fast"],
                              capture_output=True, text=True, timeout=300)

    mask = tmp_path / "mask.png"
    Image.new("L", (10, 10), 255).save(mask)
    done = cli(CONTENT, "--style", STYLE_A, "--style", STYLE_B, "--style-weights", "0.7", "0.3", "--mask", mask,
               "--stroke-scale", "1.5", "-o", tmp_path / "one.png")
    assert done.returncode == 0, done.stderr
    assert Image.open(tmp_path / "one.png").size == (96, 96)
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a.jpg", "b.jpg"):
        Image.open(CONTENT).convert("RGB").resize((80, 64)).save(photos / name)
    (photos / "broken.jpg").write_bytes(b"not a jpeg")
    done = cli(photos, REPO / "examples" / "style" / "deb-gcompris-*.jpg", "-o", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    styles = sorted(p.stem for p in (REPO / "examples" / "style").glob("deb-gcompris-*.jpg"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(f"{c}__{s}.png" for c in ("a", "b") for s in styles)
    assert done.stderr.count("skipped broken.jpg") == len(styles) and "content: not an image file" in done.stderr
    assert f"{2 * len(styles)} of {3 * len(styles)} images written" in done.stdout and f"{len(styles)} skipped" in done.stdout
    done = cli(CONTENT, STYLE_A, "--style", STYLE_B, "-o", tmp_path / "x.png")
    assert done.returncode == 2 and "not both" in done.stderr


def test_refine_of_a_mix_moves_toward_the_mixed_gram_matrices(default, measuring_vgg):
    from stylize import losses
    from stylize.images import fit_size, load_image

    encoder = measuring_vgg
    with torch.no_grad():
        grams = [losses.style_grams(encoder(to_tensor(fit_size(load_image(s), 512)))) for s in (STYLE_A, STYLE_B)]
        target = [0.6 * a + 0.4 * b for a, b in zip(*grams)]
        pictures = list(default.stylize_steps(CONTENT, styles=[STYLE_A, STYLE_B], style_weights=[0.6, 0.4], max_side=96,
                                              refine_steps=4, variant="quality", lambdas={"style": 30.0}))
        distance = [losses.style_loss(encoder(to_tensor(p)), target).item() for p in (pictures[0], pictures[-1])]
    assert distance[1] < distance[0], distance
