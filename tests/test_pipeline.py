"""Inference pipeline: any image in, sizes, caching, colour preservation, refine, errors, CLI."""
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylize.checkpoint import CheckpointError
from stylize.images import ImageInputError, load_image
from stylize.pipeline import Stylizer

from .conftest import REPO


def photo(w=96, h=80, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / w, yy / h, (xx + yy) / (w + h)], -1) * 200 + rng.random((h, w, 3)) * 55
    return Image.fromarray(base.astype(np.uint8))


@pytest.fixture
def stylizer(tiny_model_dir) -> Stylizer:
    return Stylizer.from_pretrained(tiny_model_dir, device="cpu")


def test_output_size_equals_scaled_content_size(stylizer):
    out = stylizer(photo(203, 117), photo(50, 70, 1))
    assert out.size == (203, 117)
    out = stylizer(photo(300, 150), photo(64, 64, 1), max_side=128)
    assert out.size == (128, 64)


def test_small_images_are_upscaled_to_64(stylizer):
    assert stylizer(photo(40, 20), photo(10, 10)).size == (128, 64)


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "CMYK", "I;16", "LA", "1"])
def test_odd_modes_are_converted(stylizer, mode):
    base = photo()
    if mode == "I;16":
        image = Image.fromarray((np.asarray(base.convert("L"), dtype=np.uint16) * 257))
        assert image.mode == "I;16"
        assert np.asarray(load_image(image)).max() > 200  # scaled from 16 bits, not clipped to white
    else:
        image = base.convert(mode)
    assert stylizer(image, photo(seed=2)).size == base.size


def test_rgba_is_composited_on_white():
    transparent = Image.new("RGBA", (70, 70), (255, 0, 0, 0))
    assert np.asarray(load_image(transparent)).min() == 255


def test_exif_orientation_is_applied(stylizer):
    image = photo(120, 64)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    assert load_image(buffer.getvalue()).size == (64, 120)
    assert stylizer(buffer.getvalue(), photo()).size == (64, 120)


def jpeg_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.mark.parametrize("payload,words", [
    (jpeg_bytes(photo())[:400], "truncated"),
    (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not an image"),
])
def test_bad_bytes_raise_dedicated_error(stylizer, payload, words):
    with pytest.raises(ImageInputError, match=words):
        stylizer(payload, photo())


def test_decompression_bomb_is_refused(stylizer):
    buffer = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buffer, format="PNG")  # compresses to ~150 kB
    with pytest.raises(ImageInputError, match="too large|bomb"):
        stylizer(buffer.getvalue(), photo())


def test_missing_file_raises_dedicated_error(stylizer, tmp_path):
    with pytest.raises(ImageInputError, match="not found"):
        stylizer(tmp_path / "nope.jpg", photo())


def test_preserve_color_keeps_content_chroma(stylizer):
    from stylize.functional import rgb_to_yuv
    from stylize.images import to_tensor

    content, style = photo(), Image.new("RGB", (64, 64), (20, 200, 30))
    kept = rgb_to_yuv(to_tensor(stylizer(content, style, preserve_color=True)))
    plain = rgb_to_yuv(to_tensor(stylizer(content, style)))
    target = rgb_to_yuv(to_tensor(content))
    kept_err = (kept[:, 1:] - target[:, 1:]).abs().mean().item()
    plain_err = (plain[:, 1:] - target[:, 1:]).abs().mean().item()
    print(f"chroma error vs content: preserve_color {kept_err:.4f}, plain {plain_err:.4f}")
    assert kept_err < 0.02 and kept_err < plain_err


def test_lambda_change_reuses_cached_encodings(stylizer):
    content, style = photo(256, 256), photo(128, 128, 3)
    t0 = time.perf_counter()
    first = stylizer(content, style)
    t1 = time.perf_counter()
    calls = stylizer.encoder_calls
    second = stylizer(content, style, lambdas={"style": 20.0})
    t2 = time.perf_counter()
    print(f"first call {t1 - t0:.3f} s, lambda change {t2 - t1:.3f} s")
    assert stylizer.encoder_calls == calls == 2  # one content + one style encoding, then none
    assert np.asarray(first).shape == np.asarray(second).shape


def test_out_of_range_lambda_is_clamped_with_warning(stylizer):
    with pytest.warns(UserWarning, match="outside the trained range"):
        lam = stylizer.resolve_lambdas({"style": 1e6})
    assert lam[0, 1].item() == stylizer.lambda_ranges["style"][1]
    with pytest.raises(ValueError, match="unknown lambda"):
        stylizer.resolve_lambdas({"colour": 1.0})


def test_stylize_steps_yields_the_one_pass_result_then_each_refine_step(stylizer):
    content, style = photo(80, 64), photo(80, 64, seed=1)
    steps = list(stylizer.stylize_steps(content, style, refine_steps=3, seed=5))
    assert len(steps) == 4
    assert np.array_equal(np.asarray(steps[0]), np.asarray(stylizer(content, style)))
    assert np.array_equal(np.asarray(steps[-1]), np.asarray(stylizer(content, style, refine_steps=3, seed=5)))
    assert not np.array_equal(np.asarray(steps[1]), np.asarray(steps[3]))


def test_the_cpu_paints_in_bf16_only_where_amx_makes_it_fast(monkeypatch):
    from stylize.devices import pick_dtype

    for has_amx, dtype in ((True, torch.bfloat16), (False, torch.float32)):
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: has_amx)
        assert pick_dtype(torch.device("cpu")) == dtype
    assert pick_dtype(torch.device("cuda")) == torch.float16
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")  # a torch without the probe: fp32, as before
    assert pick_dtype(torch.device("cpu")) == torch.float32


def test_refine_in_half_precision_uses_its_own_fp32_copy(tiny_model_dir):
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu", dtype=torch.bfloat16)
    image = stylizer(photo(64, 64), photo(64, 64, seed=1), refine_steps=1)
    assert image.size == (64, 64)
    assert {p.dtype for p in stylizer.generator.parameters()} == {torch.bfloat16}  # a render meanwhile is unaffected


def test_refine_changes_the_image_and_lowers_its_objective(stylizer, measuring_vgg):
    from stylize import losses
    from stylize.images import to_tensor

    content, style = photo(64, 64), photo(64, 64, 7)
    plain = stylizer(content, style)
    refined = stylizer(content, style, refine_steps=5, seed=0, lambdas={"style": 30.0})
    enc = measuring_vgg
    with torch.no_grad():
        grams = losses.style_grams(enc(to_tensor(style)))
        style_plain = losses.style_loss(enc(to_tensor(plain)), grams).item()
        style_refined = losses.style_loss(enc(to_tensor(refined)), grams).item()
    assert style_refined < style_plain


def test_a_refine_budget_in_seconds_ends_within_a_step_of_it(stylizer, monkeypatch):
    import stylize.refine

    clock = iter(range(0, 10_000, 2))  # every reading of the clock 2 s later: each step "takes" 2-4 s
    monkeypatch.setattr(stylize.refine, "perf_counter", lambda: next(clock))
    pictures = list(stylizer.stylize_steps(photo(64, 64), photo(64, 64, 1), refine_seconds=11))
    assert 3 <= len(pictures) - 1 <= 5  # stopped where the next step would end past 11 s
    assert len(list(stylizer.stylize_steps(photo(64, 64), photo(64, 64, 1), refine_seconds=11, refine_steps=2))) == 3
    for bad in (-1, float("nan"), float("inf"), "15", True):
        with pytest.raises(ValueError, match="refine seconds"):
            stylizer(photo(64, 64), photo(64, 64, 1), refine_seconds=bad)


def test_refine_works_at_its_own_resolution_and_carries_the_change_up(stylizer, monkeypatch):
    """A large picture is optimised at the working side; the change lands at the output's size, smooth (no blocks),
    over the one-pass picture's own detail."""
    import stylize.refine

    sizes = []
    objective = stylize.refine.Objective.__call__
    monkeypatch.setattr(stylize.refine.Objective, "__call__", lambda self, image: sizes.append(image.shape[-2:]) or objective(self, image))
    monkeypatch.setitem(stylize.refine.refine.__kwdefaults__, "side", 64)
    plain, refined = stylizer.stylize_steps(photo(256, 192), photo(64, 64, 7), refine_steps=1, lambdas={"style": 30.0})
    assert set(sizes) == {(48, 64)} and refined.size == plain.size == (256, 192)
    change = np.asarray(refined, float) - np.asarray(plain, float)
    assert np.abs(change).mean() > 0.5
    steps_across = np.abs(np.diff(change, axis=1)).mean()
    assert steps_across < np.abs(change).mean() / 2  # enlarged smoothly, not copied in 4x4 blocks


def test_broken_checkpoint_names_the_file(tiny_model_dir):
    (tiny_model_dir / "generator.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="generator.safetensors"):
        Stylizer.from_pretrained(tiny_model_dir, device="cpu")


def test_missing_checkpoint_names_the_file(tmp_path):
    (tmp_path / "m").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        Stylizer.from_pretrained(tmp_path / "m", device="cpu")
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="config.json"):
        Stylizer.from_pretrained(tmp_path / "m", device="cpu")


def test_cli_end_to_end_and_error_path(tiny_model_dir, tmp_path):
    content, style, out = tmp_path / "c.png", tmp_path / "s.jpg", tmp_path / "out" / "o.png"
    photo(200, 100).save(content)
    photo(60, 60, 3).save(style)
    cmd = [sys.executable, "-m", "stylize", str(content), str(style), "-o", str(out), "--model", str(tiny_model_dir),
           "--lambda-style", "5", "--strength", "0.7", "--preserve-color", "--device", "cpu", "--max-side", "160"]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert str(out) in done.stdout and " s" in done.stdout
    with Image.open(out) as written:
        assert written.size == (160, 80)
    (tmp_path / "bad.jpg").write_bytes(b"garbage")
    bad = subprocess.run([*cmd[:3], str(tmp_path / "bad.jpg"), *cmd[4:]], capture_output=True, text=True, cwd=REPO)
    assert bad.returncode != 0
    assert len(bad.stderr.strip().splitlines()) == 1 and "content" in bad.stderr and "Traceback" not in bad.stderr


def hub_cache_with(cache_dir: Path, repo_id: str, folder: Path, extra_files: dict[str, bytes]) -> str:
    """A Hub cache as snapshot_download leaves it (refs/main -> snapshots/<commit>/...), filled from a local folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    for name, data in extra_files.items():
        (repo / "snapshots" / commit / name).write_bytes(data)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return commit


@pytest.fixture
def unreachable_hub(monkeypatch):
    """The network boundary: the Hub endpoint is a closed local port, so every request fails to connect."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_ETAG_TIMEOUT", 2, raising=False)


def test_hub_repo_id_uses_the_cached_snapshot_when_the_hub_is_unreachable(tiny_model_dir, tmp_path, unreachable_hub):
    cache = tmp_path / "hub-cache"
    commit = hub_cache_with(cache, "someone/cached", tiny_model_dir, {"resume.pt": b"x" * 100})
    stylizer = Stylizer.from_pretrained("someone/cached", cache_dir=cache, device="cpu")
    assert stylizer(photo(), photo(seed=1)).size == photo().size
    offline = Stylizer.from_pretrained("someone/cached", cache_dir=cache, local_files_only=True, device="cpu")
    assert offline.config == stylizer.config
    with pytest.raises(CheckpointError, match="no cached copy of someone/missing and the Hub cannot be reached"):
        Stylizer.from_pretrained("someone/missing", cache_dir=cache, device="cpu")
    with pytest.raises(CheckpointError, match="no cached copy of someone/missing and local_files_only is set"):
        Stylizer.from_pretrained("someone/missing", cache_dir=cache, local_files_only=True, device="cpu")
    assert (cache / "models--someone--cached" / "snapshots" / commit).is_dir()


def test_hub_arguments_reach_snapshot_download_and_only_model_files_are_asked_for(tiny_model_dir, monkeypatch):
    from stylize import hub

    seen = {}

    def snapshot_download(repo_id, **kwargs):  # stands in for the download; returns what it would have fetched
        seen.update(kwargs, repo_id=repo_id)
        return str(tiny_model_dir)

    monkeypatch.setattr(hub, "snapshot_download", snapshot_download)
    Stylizer.from_pretrained("someone/model", revision="v2", token="hf_x", cache_dir="/tmp/c", force_download=True, device="cpu")
    assert {k: seen[k] for k in ("repo_id", "revision", "token", "cache_dir", "force_download", "local_files_only")} == {
        "repo_id": "someone/model", "revision": "v2", "token": "hf_x", "cache_dir": "/tmp/c", "force_download": True,
        "local_files_only": False}
    assert sorted(seen["allow_patterns"]) == sorted(
        ["config.json", "generator.safetensors", "discriminator.safetensors", "vgg16_imagenet.safetensors", "README.md",
         "fast/config.json", "fast/student.safetensors"])


@pytest.mark.parametrize("bad", ["not/a/repo/id", "bad id!", "owner/", "-owner/name", "x" * 200 + "/y"])
def test_a_malformed_model_name_is_one_line(bad):
    with pytest.raises(CheckpointError, match="not a Hub repo id"):
        Stylizer.from_pretrained(bad, device="cpu")


def test_app_with_a_malformed_stylize_model_exits_with_one_line():
    done = subprocess.run([sys.executable, "app.py"], cwd=REPO, env={**os.environ, "STYLIZE_MODEL": "bad id!"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == ["error: model not found: no folder 'bad id!' here, and it is not a Hub repo id (owner/name)"]

def test_a_file_sent_again_is_not_decoded_again_unless_it_changed(stylizer, tmp_path, monkeypatch):
    import stylize.pipeline as pipeline

    path = tmp_path / "photo.png"
    photo(96, 80).save(path)
    decoded = []
    real = pipeline.load_image
    monkeypatch.setattr(pipeline, "load_image", lambda source, name="image": decoded.append(name) or real(source, name))
    first = stylizer(path, photo(64, 64, 1), lambdas={"style": 1.0})
    stylizer(path, photo(64, 64, 1), lambdas={"style": 2.0})  # a slider move
    assert decoded.count("content") == 1
    photo(96, 80, seed=3).save(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert np.asarray(stylizer(path, photo(64, 64, 1), lambdas={"style": 1.0})).tolist() != np.asarray(first).tolist()
    assert decoded.count("content") == 2
