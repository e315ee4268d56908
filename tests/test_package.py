"""The package as users install it: a wheel from `pip install .` and the editable install scripts/setup.sh makes."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

from PIL import Image

from .conftest import REPO

CONTENT = REPO / "examples" / "content" / "deb-skimage-chelsea.jpg"  # 451 x 300
STYLE = REPO / "examples" / "style" / "deb-gcompris-hokusai_the_great_wave_off_kanagawa.jpg"


def run(cmd, cwd: Path, **env) -> subprocess.CompletedProcess:
    done = subprocess.run([str(c) for c in cmd], cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def test_wheel_install_gives_the_stylize_command_with_embedded_weights_from_any_directory(tmp_path):
    source = tmp_path / "source"  # what the package is built from: a build in the checkout would leave build/ there
    for name in ("stylize", "weights"):
        shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.png"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path / "dist", source], cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("stylize-*.whl")
    site = tmp_path / "site"
    run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", site, wheel], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    where = run([sys.executable, "-c", "import stylize.checkpoint as c; print(c.__file__); print(c.EMBEDDED_DIR)"],
                cwd=elsewhere, PYTHONPATH=site).stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where), where  # the installed copy, not the checkout
    assert sorted(p.name for p in Path(where[1]).iterdir()) == [
        "README.md", "config.json", "discriminator.safetensors", "fast", "generator.safetensors", "vgg16_imagenet.safetensors"]
    assert sorted(p.name for p in (Path(where[1]) / "fast").iterdir()) == ["config.json", "student.safetensors"]

    done = run([site / "bin" / "stylize", CONTENT, STYLE, "-o", "out.png", "--max-side", "128"], cwd=elsewhere, PYTHONPATH=site)
    assert "out.png" in done.stdout
    with Image.open(elsewhere / "out.png") as image:
        assert image.size == (128, 85)


def test_editable_install_runs_python_m_stylize_outside_the_checkout(tmp_path):
    run([sys.executable, "-m", "stylize", CONTENT, STYLE, "-o", tmp_path / "out.jpg", "--max-side", "96"], cwd=tmp_path)
    with Image.open(tmp_path / "out.jpg") as image:
        assert image.size == (96, 64)
