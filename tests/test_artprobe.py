"""The painting probe of bench/artprobe.py (a measuring instrument, never a loss): it tells the example photos from
the example paintings, and reads the shipped default's output as more painting-like than the old default λ's."""
import pytest
from PIL import Image

from artprobe import ArtProbe
from stylize.pipeline import Stylizer

from .conftest import REPO

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="module")
def probe() -> ArtProbe:
    return ArtProbe.load()


def test_probe_tells_example_photos_from_example_paintings(probe):
    photos = [Image.open(p).convert("RGB") for p in sorted((EXAMPLES / "content").glob("*.jpg"))]
    paintings = [Image.open(p).convert("RGB") for p in sorted((EXAMPLES / "style").glob("*.jpg"))]
    assert max(probe(photos)) < 0.5 < min(probe(paintings))


def test_default_reads_as_more_painting_like_than_the_old_default(probe):
    stylizer = Stylizer.from_pretrained(device="cpu")
    contents = sorted((EXAMPLES / "content").glob("*.jpg"))[:3]
    style = EXAMPLES / "style" / "deb-gcompris-vincentvangoghbridge.jpg"
    default = probe([stylizer(c, style, max_side=256) for c in contents])
    old = probe([stylizer(c, style, max_side=256, lambdas={"content": 2.0, "style": 3.0, "cycle": 0.5}) for c in contents])
    assert sum(default) > sum(old), (default, old)
