"""Hostile input and careless operation: bounded caches, non-finite numbers, any decoder failure, one-line errors,
no local paths published, clean restarts after kill -9."""
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import train.train as train_mod
from stylize.checkpoint import CheckpointError
from stylize.images import ImageInputError, load_image
from stylize.encoding_cache import tensor_bytes
from stylize.pipeline import Stylizer

from .conftest import REPO
from .test_pipeline import photo
from .test_train import args_for


@pytest.fixture
def stylizer(tiny_model_dir) -> Stylizer:
    return Stylizer.from_pretrained(tiny_model_dir, device="cpu")


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stylize", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def cli_files(tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    photo(96, 80).save(content)
    photo(64, 64, 3).save(style)
    return str(content), str(style), str(tmp_path / "out.png")


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


# --- 1. memory ---------------------------------------------------------------------------
def test_encoding_cache_is_bounded_by_bytes(tiny_model_dir):
    probe = Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    one_content = tensor_bytes(probe.encode_content(photo(200, 160)))
    budget = int(2.5 * one_content)
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu", cache_bytes=budget)
    style = photo(64, 64, 99)
    for seed in range(10):  # ten distinct uploads
        stylizer(photo(200, 160, seed), style, max_side=200)
        assert stylizer.cache.nbytes <= budget
        assert stylizer.cache.nbytes == sum(size for _, size in stylizer.cache.entries.values())
    assert len(stylizer.cache.entries) == 3  # the style and the two most recent photos
    calls = stylizer.encoder_calls
    stylizer(photo(200, 160, 9), style, max_side=200, lambdas={"style": 10.0})  # the latest photo: a slider move
    assert stylizer.encoder_calls == calls
    small = Stylizer.from_pretrained(tiny_model_dir, device="cpu", cache_bytes=one_content // 2)
    small(photo(200, 160), style, max_side=200)  # larger than the whole budget: used, not kept
    assert small.cache.nbytes <= one_content // 2


# --- 2. non-finite numbers -------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), "many"])
def test_non_finite_lambda_is_an_error(stylizer, value):
    with pytest.raises(ValueError, match="lambda_style must be a"):
        stylizer(photo(), photo(seed=1), lambdas={"style": value})
    with pytest.raises(ValueError, match="lambda_style must be a"):
        stylizer(photo(), photo(seed=1), lambdas={"style": value}, refine_steps=1)


@pytest.mark.parametrize("flag,value,words", [
    ("--lambda-style", "nan", ["lambda_style", "finite"]),
    ("--lambda-tv", "-inf", ["lambda_tv", "finite"]),  # not taken for a flag
    ("--strength", "nan", ["strength"]),
    ("--max-side", "0", ["max side", ">= 64"]),
    ("--max-side", "-5", ["max side"]),
    ("--max-side", "10", ["max side"]),
    ("--refine", "-5", ["refine steps"]),
    ("--refine-seconds", "-1", ["refine seconds"]),
    ("--refine-seconds", "nan", ["refine seconds"]),
    ("--device", "cuda:7", ["not available"]),
    ("--device", "foo", ["unknown device"]),
])
def test_cli_bad_numbers_and_devices_give_one_line(tiny_model_dir, cli_files, flag, value, words):
    content, style, out = cli_files
    assert_one_line_error(run_cli(content, style, "-o", out, "--model", str(tiny_model_dir), flag, value), *words)


def test_cli_paints_harder_for_a_time_budget(tiny_model_dir, cli_files):
    content, style, out = cli_files
    done = run_cli(content, style, "-o", out, "--model", str(tiny_model_dir), "--refine-seconds", "2")
    assert done.returncode == 0, done.stderr
    assert "refine steps)" in done.stdout  # how many steps the budget held
    assert Image.open(out).size == (96, 80)


def test_batch_names_are_unique_for_same_stem_photos_in_nested_folders(tiny_model_dir, tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("a.jpg", "a.png", "sub/a.jpg", "b.jpg"):
        photo(48, 40, seed=len(name)).save(photos / name)
    style = tmp_path / "wave.png"
    photo(40, 40, 9).save(style)
    done = run_cli(str(photos), str(style), "-o", str(tmp_path / "out"), "--model", str(tiny_model_dir))
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["a_jpg__wave.png", "a_png__wave.png", "b__wave.png", "sub_a_jpg__wave.png"]
    assert "4 of 4 images written" in done.stdout
    assert_one_line_error(run_cli(str(photos), str(style), "-o", str(style), "--model", str(tiny_model_dir)), "is a file")


def test_an_output_that_names_an_input_a_folder_or_an_unknown_suffix_is_one_line_and_writes_nothing(tiny_model_dir, cli_files, tmp_path):
    content, style, _ = cli_files
    before = Path(content).read_bytes()
    assert_one_line_error(run_cli(content, style, "-o", content, "--model", str(tiny_model_dir)), "input images")
    assert Path(content).read_bytes() == before
    assert_one_line_error(run_cli(content, style, "-o", str(tmp_path), "--model", str(tiny_model_dir)), "is a folder")
    assert_one_line_error(run_cli(content, style, "-o", str(tmp_path / "out.xyz"), "--model", str(tiny_model_dir)), "'.xyz'")
    assert not (tmp_path / "out.xyz").exists()


def batch_run(tiny_model_dir, tmp_path) -> tuple[subprocess.Popen, Path]:
    photos, out = tmp_path / "photos", tmp_path / "out"
    photos.mkdir(parents=True, exist_ok=True)
    for k in range(6):
        photo(400, 300, seed=k).save(photos / f"p{k}.png")
    photo(64, 64, 9).save(tmp_path / "s.png")
    command = [sys.executable, "-m", "stylize", str(photos), str(tmp_path / "s.png"), "-o", str(out), "--model",
               str(tiny_model_dir), "--max-side", "400"]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True), out


def complete_pictures(folder: Path) -> list[str]:
    """The PNGs under their final names, each decoded to its last byte (a truncated one raises)."""
    names = sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []
    for name in names:
        with Image.open(folder / name) as image:
            image.load()
    return names


def test_kill_9_at_any_moment_leaves_no_truncated_picture_under_a_final_name(tiny_model_dir, tmp_path):
    rng = random.Random(0)
    seen = set()
    for attempt in range(20):
        run, out = batch_run(tiny_model_dir, tmp_path / str(attempt))
        time.sleep(rng.uniform(1.0, 4.0))
        run.kill()
        run.wait()
        seen.add(len(complete_pictures(out)))
    assert len(seen) > 1  # the kills landed at different points of the batch


def test_ctrl_c_ends_with_one_line_and_no_partial_file(tiny_model_dir, tmp_path):
    run, out = batch_run(tiny_model_dir, tmp_path)
    deadline = time.time() + 60
    while not list(out.glob("*.png")) and time.time() < deadline:  # the batch is under way
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 130 and "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), stderr
    complete_pictures(out)
    assert not [p for p in out.iterdir() if p.suffix != ".png"]  # no temporary file left behind


def test_cli_max_side_above_the_limit_is_clamped_and_said(tiny_model_dir, cli_files, monkeypatch):
    import stylize.checks as checks
    import stylize.picture as picture

    for module in (checks, picture):
        monkeypatch.setattr(module, "MAX_SIDE", 80)
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    with pytest.warns(UserWarning, match="max side 5000 is above the limit of 80 px"):
        assert stylizer(photo(96, 80), photo(seed=1), max_side=5000).size == (80, 67)


def test_device_that_is_not_here_is_a_value_error(tiny_model_dir):
    for device in ("cuda", "mps", "foo"):
        if device in ("cuda", "mps") and (torch.cuda.is_available() or torch.backends.mps.is_available()):
            continue
        with pytest.raises(ValueError, match="device"):
            Stylizer.from_pretrained(tiny_model_dir, device=device)


# --- 3. any decoder failure ----------------------------------------------------------------
def encoded_samples() -> dict[str, bytes]:
    samples = {}
    for fmt in ("JPEG", "PNG", "WEBP", "AVIF"):
        buffer = io.BytesIO()
        photo(48, 40, 5).save(buffer, format=fmt, quality=80) if fmt != "PNG" else photo(48, 40, 5).save(buffer, format=fmt)
        samples[fmt] = buffer.getvalue()
    return samples


def mutate(data: bytes, rng: random.Random) -> bytes:
    data = bytearray(data)
    kind = rng.randrange(4)
    if kind == 0:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:  # truncate
        data = data[: rng.randrange(1, len(data))]
    elif kind == 2:  # duplicate a chunk
        i, j = sorted(rng.sample(range(len(data)), 2))
        data[i:i] = data[i:j]
    else:  # zero a run (header fields included)
        i = rng.randrange(min(len(data), 64))
        data[i : i + rng.randint(1, 16)] = bytes(rng.randint(1, 16))
    return bytes(data)


def test_fuzzed_image_files_give_an_image_or_one_line_error():
    rng = random.Random(2026)
    outcomes = {"image": 0, "error": 0}
    for fmt, data in encoded_samples().items():
        for _ in range(80):
            payload = mutate(data, rng)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    image = load_image(payload, "content")
                except ImageInputError as err:
                    message = str(err)
                    assert message.startswith("content: ") and "\n" not in message and len(message) < 400, (fmt, message)
                    outcomes["error"] += 1
                    continue
            assert image.mode == "RGB" and image.width > 0 and image.height > 0
            outcomes["image"] += 1
    assert sum(outcomes.values()) == 320 and outcomes["error"] > 50


def corrupt_avif() -> bytes:
    """A damaged AVIF on which Pillow's decoder raises RuntimeError, which it documents for no format."""
    rng, data = random.Random(0), encoded_samples()["AVIF"]
    for _ in range(100):
        damaged = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            Image.open(io.BytesIO(bytes(damaged))).load()
        except RuntimeError:
            return bytes(damaged)
        except Exception:  # noqa: BLE001 - other failures are not the case wanted here
            pass
    raise AssertionError("no mutation made the AVIF decoder raise RuntimeError")


def test_corrupt_avif_is_one_line_in_the_cli_and_skipped_in_training(tiny_model_dir, cli_files, tmp_path):
    corrupt = corrupt_avif()
    with pytest.raises(ImageInputError):
        load_image(corrupt, "style")
    bad = tmp_path / "bad.avif"
    bad.write_bytes(corrupt)
    content, _, out = cli_files
    assert_one_line_error(run_cli(content, str(bad), "-o", out, "--model", str(tiny_model_dir)), "style")
    from train.data import ImageSource

    folder = tmp_path / "styles"
    folder.mkdir()
    photo(64, 64).save(folder / "good.png")
    (folder / "bad.webp").write_bytes(corrupt)  # any decoder's failure, whatever the suffix says
    source = ImageSource.from_folder(folder)
    good = source.image(1, 64)  # bad.webp sorts first: counted, and the next image stands in for it, every time
    assert torch.equal(source.image(0, 64), good) and source.skipped == {0}


def test_numpy_arrays_float_in_0_1_or_uint8_are_accepted_others_explained(stylizer):
    array = np.asarray(photo(96, 80)).astype(np.float64) / 255
    assert stylizer(array, photo(seed=1)).size == (96, 80)
    assert load_image(array[:, :, :1]).size == (96, 80)
    for bad, words in ((array * 255, "float"), (np.full((8, 8, 3), np.nan), "finite"), (array.astype(np.int64), "uint8"),
                       (np.zeros((4, 4, 4, 4), np.uint8), "shape")):
        with pytest.raises(ImageInputError, match=words):
            stylizer(bad, photo(seed=1))


# --- 4. broken checkpoints and resume states --------------------------------------------------
@pytest.mark.parametrize("edit,words", [
    (lambda c: c["lambdas"].pop("defaults"), "lambdas.defaults"),
    (lambda c: c["lambdas"].pop("normalizers"), "lambdas.normalizers"),
    (lambda c: c["lambdas"]["normalizers"].pop("tv"), "lacks tv"),
    (lambda c: c["lambdas"]["ranges"].update(style=[3, 1]), "lambdas.ranges.style"),
    (lambda c: c["generator"].update(wings=2), "unknown generator setting(s) wings"),
    (lambda c: c["generator"].update(widths=[1]), "generator settings unusable"),
    (lambda c: c.update(style_max_side="big"), 'style_max_side = "big": each must be an integer in [64, 4096]'),
    (lambda c: c.update(style_max_side=float("nan")), "style_max_side = NaN"),
    (lambda c: c["generator"].update(widths=[65536, 128, 64, 32]), "widths = [65536, 128, 64, 32]: each must be an integer"),
    (lambda c: c["generator"].update(film_hidden=True), "film_hidden = true"),
    (lambda c: c.update(discriminator={**c["discriminator"], "base_channels": 10 ** 6}), "base_channels = 1000000"),
])
def test_broken_config_is_one_checkpoint_error(tiny_model_dir, cli_files, edit, words):
    path = tiny_model_dir / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=re.escape(words)):
        Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    content, style, out = cli_files
    assert_one_line_error(run_cli(content, style, "-o", out, "--model", str(tiny_model_dir)), "config.json")


def test_a_student_config_out_of_range_is_one_checkpoint_error(tiny_model_dir):
    from stylize.checkpoint import load_student
    folder = tiny_model_dir / "fast"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"student": {"widths": [16, 32, 65536], "blocks": 1}}))
    with pytest.raises(CheckpointError, match=r"widths = \[16, 32, 65536\]: each must be an integer in \[1, 512\]"):
        load_student(folder)


def test_corrupt_generator_error_names_the_file_once(tiny_model_dir):
    path = tiny_model_dir / "generator.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError) as err:
        Stylizer.from_pretrained(tiny_model_dir, device="cpu")
    assert str(err.value).count(str(path)) == 1


def test_corrupt_critic_costs_refine_its_adversarial_term_only(tiny_model_dir):
    (tiny_model_dir / "discriminator.safetensors").write_bytes(b"\x00" * 100)
    stylizer = Stylizer.from_pretrained(tiny_model_dir, device="cpu")  # loads: the critic is read on first use
    assert stylizer(photo(), photo(seed=1)).size == photo().size
    with pytest.warns(UserWarning, match="critic is unavailable.*discriminator.safetensors"):
        assert stylizer(photo(), photo(seed=1), refine_steps=1).size == photo().size


def test_refine_leaves_no_gradients_on_the_models(stylizer):
    stylizer(photo(64, 64), photo(64, 64, 1), refine_steps=2, lambdas={"adv": 1.0})
    assert stylizer.discriminator is not None
    for module in (stylizer.generator, stylizer.discriminator):
        assert all(p.grad is None for p in module.parameters())


def test_truncated_resume_state_is_one_line(data_dirs, tmp_path, caplog):  # noqa: F811
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1")) == 0
    state = out / "resume.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--resume")) == 1
    assert "is truncated or not a Stylize resume state" in caplog.text


# --- 5 and 6. what is published, what a killed run leaves --------------------------------------
def test_no_absolute_path_in_published_files(data_dirs, tmp_path, monkeypatch):  # noqa: F811
    published = {}

    def fake_upload_folder(self, **kwargs):
        for path in sorted(Path(kwargs["folder_path"]).iterdir()):
            published[path.name] = path.read_bytes()
        future = Future()
        future.set_result("commit-url")
        return future

    from huggingface_hub import HfApi
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)  # the network boundary
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    first = tmp_path / "first"
    assert train_mod.main(args_for(data_dirs, first, "--iters", "1")) == 0
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1", "--init-from", str(first / "model"),
                                   "--push-to-hub", "someone/x")) == 0
    assert {"config.json", "README.md", "generator.safetensors"} <= set(published)
    for name, data in published.items():
        for secret in (str(tmp_path), str(REPO), str(data_dirs[0].parent)):
            assert secret.encode() not in data, (name, secret)
    config = json.loads(published["config.json"])
    stage = config["training"]["stages"][-1]
    assert stage["data"]["style"]["folder"] == "style" and stage["data"]["style"]["images"] == 5  # listed; broken.jpg skipped when drawn
    assert stage["initialized_from"] == "model" and len(config["training"]["stages"]) == 2  # the first run's, then this
    assert "4 from a folder named `content`" in published["README.md"].decode()


def test_restart_after_kill_cleans_temp_files_and_log(data_dirs, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--save-every", "2")) == 0
    stale = [out / ".resume.pt.abc123.tmp", out / "model" / ".generator.safetensors.x.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    log = out / "log.csv"
    header, *rows = log.read_text().splitlines()
    log.write_text("\n".join([header, *rows, "3,1.0,0,0", "4,1.0,0,0"]) + "\n")  # logged, then killed before saving
    assert train_mod.main(args_for(data_dirs, out, "--iters", "4", "--resume")) == 0
    assert not any(p.exists() for p in stale)
    steps = [int(line.split(",")[0]) for line in log.read_text().splitlines()[1:]]
    assert steps == [1, 2, 3, 4]


def test_a_new_run_in_a_folder_holding_one_is_refused_and_loses_nothing(data_dirs, tmp_path, caplog):  # noqa: F811
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--log-every", "1")) == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2")) == 1
    assert "already holds a run" in caplog.text and "--resume" in caplog.text and "--overwrite" in caplog.text
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1", "--overwrite")) == 0
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]] == ["1"]
    state = torch.load(out / "resume.pt", weights_only=True)
    assert state["step"] == 1
    (tmp_path / "file").write_text("mine")
    assert train_mod.main(args_for(data_dirs, tmp_path / "file", "--iters", "1")) == 1
    assert (tmp_path / "file").read_text() == "mine" and "is a file" in caplog.text


def test_a_mistyped_local_model_folder_or_a_file_is_named_as_such(tiny_model_dir, cli_files, tmp_path):
    content, style, out = cli_files
    env = {"HF_HUB_OFFLINE": "1"}  # the network boundary
    typo = tiny_model_dir.parent / "modle"
    done = run_cli(content, style, "-o", out, "--model", str(typo), env=env)
    assert_one_line_error(done, f"no folder '{typo}' here")
    assert_one_line_error(run_cli(content, style, "-o", out, "--model", "weights/fsat", env=env),  # weights/ exists
                          "model folder not found: weights/fsat (weights holds no such folder")
    assert_one_line_error(run_cli(content, style, "-o", out, "--model", str(tiny_model_dir / "config.json"), env=env),
                          "is a file: a model is the folder")


def test_flags_may_come_before_the_painting(tiny_model_dir, cli_files):
    content, style, out = cli_files
    done = run_cli(content, "-o", out, style, "--model", str(tiny_model_dir))
    assert done.returncode == 0, done.stderr
    assert Image.open(out).size == (96, 80)


@pytest.mark.parametrize("flag,value", [("--batch-size", "0"), ("--lr", "nan"), ("--iters", "-3"), ("--recon-fraction", "2")])
def test_training_numbers_out_of_range_are_one_line_before_any_work(data_dirs, tmp_path, flag, value):  # noqa: F811
    done = subprocess.run([sys.executable, "-m", "train.train", *args_for(data_dirs, tmp_path / "run", flag, value)],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"train.py: error: {flag} must be " + done.stderr.split(" must be ", 1)[1].strip()], done.stderr
    assert not (tmp_path / "run").exists()


def test_a_hub_dataset_that_cannot_be_reached_is_one_quick_line(monkeypatch):
    import datasets
    import httpx
    from huggingface_hub import HfApi

    from train.data import ImageSource

    def unreachable(self, *args, **kwargs):  # the network boundary
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "dataset_info", unreachable)
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: pytest.fail("datasets was asked to retry"))
    with pytest.raises(ValueError, match=re.escape("cannot load dataset 'huggan/wikiart': the Hub cannot be reached (ConnectError)")):
        ImageSource.from_dataset("huggan/wikiart")


def test_deploy_refuses_a_non_empty_folder_and_a_bad_space_id_in_one_line(tmp_path):
    script = [sys.executable, "scripts/deploy_space.py"]
    (tmp_path / "mine.txt").write_text("kept")
    for args, words in ((["you/stylize", "--out", str(tmp_path), "--dry-run"], "is not empty"),
                        (["bad id!", "--dry-run"], "'bad id!' is not a Space id (owner/name)"),
                        (["a/b/c", "--dry-run"], "is not a Space id")):
        done = subprocess.run([*script, *args], capture_output=True, text=True, cwd=REPO)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]
