"""Training: CLI smoke, resume equivalence, atomic saves, unreadable files, NaN guard, Hub upload."""
import csv
import json
import shutil
import subprocess
from concurrent.futures import Future
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import train.data as train_data
import train.distill as distill_mod
import train.train as train_mod
from stylize import checkpoint
from stylize.pipeline import Stylizer
from train.data import ImageSource

from .conftest import REPO


def args_for(data_dirs, out: Path, *extra: str) -> list[str]:
    content, style = data_dirs
    return ["--content-dir", str(content), "--style-dir", str(style), "--out", str(out), "--size", "64",
            "--batch-size", "2", "--log-every", "1", "--sample-every", "1000", "--save-every", "1000", *extra]


def test_cli_smoke_trains_and_loads_in_pipeline(data_dirs, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "train.train", *args_for(data_dirs, out, "--iters", "3", "--sample-every", "3")],
                          capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 unreadable" in done.stderr  # reported once, not a crash
    assert sorted(p.name for p in (out / "model").iterdir()) == sorted(
        ["config.json", "generator.safetensors", "discriminator.safetensors", "vgg16_imagenet.safetensors", "README.md", "samples.png", "loss_curve.png"])
    assert (out / "samples" / "step_000003.png").exists() and (out / "resume.pt").exists()
    assert len((out / "log.csv").read_text().splitlines()) == 4  # header + 3 steps
    stylizer = Stylizer.from_pretrained(out / "model", device="cpu")
    assert stylizer.config["training"]["step"] == 3
    assert stylizer(Image.new("RGB", (70, 66), "red"), Image.new("RGB", (64, 64), "blue")).size == (70, 66)


def test_help_explains_every_flag():
    done = subprocess.run([sys.executable, "-m", "train.train", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0
    for flag in ("--content-dir", "--style-dir", "--size", "--batch-size", "--iters", "--lr", "--device", "--amp", "--out",
                 "--resume", "--overwrite", "--seed", "--sample-every", "--save-every", "--push-to-hub", "--hub-private", "--grad-accum",
                 "--lambda-style", "--lambda-style-range", "--max-minutes"):
        assert flag in done.stdout, flag


def generator_weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "resume.pt", weights_only=True)["generator"]


def test_discriminator_and_generator_both_learn(data_dirs, tmp_path):
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1", "--save-every", "1")) == 0
    first = torch.load(out / "resume.pt", weights_only=True)
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--save-every", "1", "--resume")) == 0
    second = torch.load(out / "resume.pt", weights_only=True)
    for model in ("generator", "discriminator"):
        changed = [k for k, v in first[model].items() if v.is_floating_point() and not torch.equal(v, second[model][k])]
        assert changed, f"{model} did not change in a training step"
    assert any("original" in k for k in changed)  # D's spectrally normalised weights themselves moved


def test_style_conditional_critic_continues_an_unconditional_model(data_dirs, tmp_path, caplog):
    plain, conditional = tmp_path / "plain", tmp_path / "conditional"
    assert train_mod.main(args_for(data_dirs, plain, "--iters", "1")) == 0
    assert train_mod.main(args_for(data_dirs, conditional, "--iters", "2", "--init-from", str(plain / "model"),
                                   "--d-style-condition")) == 0
    before = load_file(plain / "model" / "discriminator.safetensors")
    after = load_file(conditional / "model" / "discriminator.safetensors")
    assert set(after) - set(before) and all(k.startswith("projections.") for k in set(after) - set(before))
    assert any(after[k].abs().sum() > 0 for k in after if k.startswith("projections."))  # the condition was learned
    stylizer = Stylizer.from_pretrained(conditional / "model", device="cpu")
    assert stylizer.discriminator.conditional
    assert train_mod.main(args_for(data_dirs, conditional, "--iters", "3", "--resume")) == 1  # flag forgotten: told, not crashed
    assert "was run with --d-style-condition" in caplog.text and "(add --d-style-condition)" in caplog.text
    content, style = Image.new("RGB", (64, 64), "red"), Image.new("RGB", (64, 64), "blue")
    assert stylizer(content, style, refine_steps=1, lambdas={"adv": 1.0}).size == (64, 64)  # refine feeds D the code


def test_deep_decoder_with_smaller_painting_crops_trains_and_loads(data_dirs, tmp_path):
    out = tmp_path / "deep"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--skip-taps", "relu3_1", "--style-size", "48",
                                   "--d-style-condition")) == 0
    stylizer = Stylizer.from_pretrained(out / "model", device="cpu")
    assert stylizer.generator.config["skip_taps"] == ["relu3_1"] and set(stylizer.generator.merge_skip) == {"0"}
    assert stylizer.config["training"]["stages"][-1]["style_size"] == 48
    assert stylizer(Image.new("RGB", (70, 66), "red"), Image.new("RGB", (50, 40), "blue")).size == (70, 66)


def test_resume_equals_straight_run(data_dirs, tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_mod.main(args_for(data_dirs, straight, "--iters", "4", "--seed", "3")) == 0
    assert train_mod.main(args_for(data_dirs, split, "--iters", "2", "--seed", "3")) == 0
    assert train_mod.main(args_for(data_dirs, split, "--iters", "4", "--seed", "3", "--resume")) == 0
    a, b = generator_weights(straight), generator_weights(split)
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < 1e-6, f"resumed run differs from the straight run by {worst}"


def test_interrupted_save_keeps_previous_checkpoint(data_dirs, tmp_path, monkeypatch):
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1")) == 0
    before = (out / "model" / "generator.safetensors").read_bytes()

    def dies_half_way(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt("killed mid-write")

    monkeypatch.setattr(checkpoint, "save_file", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        train_mod.main(args_for(data_dirs, out, "--iters", "2", "--resume"))
    assert (out / "model" / "generator.safetensors").read_bytes() == before
    assert not list((out / "model").glob(".*.tmp"))  # no temp files left behind
    Stylizer.from_pretrained(out / "model", device="cpu")


def test_nan_step_is_skipped_and_counted_then_repeated_nans_stop(data_dirs, tmp_path, monkeypatch, caplog):
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1")) == 0
    real_tv, calls = train_mod.losses.tv_loss, {"n": 0}

    def tv_nan_once(image):
        calls["n"] += 1
        value = real_tv(image)
        return value * float("nan") if calls["n"] == 2 else value

    monkeypatch.setattr(train_mod.losses, "tv_loss", tv_nan_once)
    assert train_mod.main(args_for(data_dirs, out, "--iters", "3", "--resume")) == 0
    assert "non-finite loss, step skipped (1 in a row, 1 total)" in caplog.text
    with (out / "log.csv").open() as f:
        assert list(csv.DictReader(f))[-1]["nonfinite"] == "1"  # counted in the log
    good = (out / "model" / "generator.safetensors").read_bytes()

    monkeypatch.setattr(train_mod.losses, "tv_loss", lambda image: real_tv(image) * float("nan"))
    assert train_mod.main(args_for(data_dirs, out, "--iters", "10", "--resume", "--max-nonfinite", "3")) == 1
    assert "3 consecutive non-finite steps" in caplog.text
    assert (out / "model" / "generator.safetensors").read_bytes() == good


def test_push_to_hub_uploads_the_model_folder(data_dirs, tmp_path, monkeypatch):
    calls = []

    class FakeFuture(Future):  # an upload that has finished: it saw the folder as it was when pushed
        def __init__(self, folder):
            super().__init__()
            self.files = sorted(p.name for p in Path(folder).iterdir())
            self.readme = (Path(folder) / "README.md").read_text()
            self.set_result("commit-url")

    def fake_create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))

    def fake_upload_folder(self, **kwargs):
        future = FakeFuture(kwargs["folder_path"])
        calls.append(("upload_folder", kwargs, future))
        return future

    from huggingface_hub import HfApi
    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)  # the network boundary
    monkeypatch.setattr(HfApi, "upload_folder", fake_upload_folder)
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--save-every", "1", "--sample-every", "1",
                                   "--push-to-hub", "someone/stylize-test", "--hub-private")) == 0
    assert calls[0] == ("create_repo", "someone/stylize-test", {"repo_type": "model", "private": True, "exist_ok": True})
    uploads = [c for c in calls if c[0] == "upload_folder"]
    assert len(uploads) == 2  # one per save
    for _, kwargs, future in uploads:
        assert kwargs["repo_id"] == "someone/stylize-test" and kwargs["run_as_future"] is True
        assert future.files == ["README.md", "config.json", "discriminator.safetensors", "generator.safetensors",
                                "loss_curve.png", "samples.png", "vgg16_imagenet.safetensors"]
        assert "library_name: stylize" in future.readme and "- style-transfer" in future.readme and "- gan" in future.readme
        assert "| style | 3 | 0.3 – 30 |" in future.readme and "![samples](samples.png)" in future.readme
        assert "](loss_curve.png)" in future.readme
        assert 'pip install "stylize @ git+https://' in future.readme and "--model someone/stylize-test" in future.readme
        assert "CC BY 4.0" in future.readme and "Simonyan & Zisserman" in future.readme
    assert "step 2" in uploads[-1][1]["commit_message"]
    calls.clear()
    assert train_mod.main(args_for(data_dirs, tmp_path / "public", "--iters", "1", "--push-to-hub", "someone/stylize-test")) == 0
    assert calls[0][2]["private"] is None  # not forced public: the Hub's default for the account applies


def test_push_to_hub_without_network_fails_in_one_line_before_any_work(tmp_path, monkeypatch, caplog):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # the network boundary: refused
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    out = tmp_path / "run"
    started = time.perf_counter()
    # the data folders do not exist: the Hub check must come first, so the error is the Hub's, not theirs
    code = train_mod.main(["--content-dir", str(tmp_path / "nope"), "--style-dir", str(tmp_path / "nope"), "--out", str(out),
                           "--push-to-hub", "someone/stylize-test"])
    assert code == 1 and time.perf_counter() - started < 30
    (message,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message.startswith("error: cannot create or reach Hub repo someone/stylize-test (ConnectError")
    assert "hf auth login" in message and "\n" not in message
    assert not out.exists()


def test_a_failed_upload_is_reported_when_it_fails_and_training_goes_on(data_dirs, tmp_path, monkeypatch, caplog):
    from huggingface_hub import HfApi

    def failing_upload(self, **kwargs):
        future = Future()
        future.set_exception(ConnectionError("connection reset by peer"))
        return future

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: None)  # the network boundary
    monkeypatch.setattr(HfApi, "upload_folder", failing_upload)
    assert train_mod.main(args_for(data_dirs, tmp_path / "run", "--iters", "2", "--save-every", "1",
                                   "--push-to-hub", "someone/stylize-test")) == 0
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert errors[:2] == [f"Hub upload of step {s} to someone/stylize-test failed (ConnectionError: connection reset by peer); "
                          "the next save uploads again" for s in (1, 2)]
    assert errors[2].startswith("2 Hub upload(s) failed")
    assert (tmp_path / "run" / "model" / "generator.safetensors").exists()


def test_worker_processes_draw_exactly_what_one_process_draws(data_dirs):
    sources = tuple(train_data.ImageSource.from_folder(d) for d in data_dirs)
    examples = train_data.Examples(sources, 3, (32, 40), 5, lambda uniform: (uniform(), uniform() < 0.5))
    direct = [examples.batch(step) for step in range(4, 7)]
    for workers in (0, 2):
        batches = train_data.loader(examples, 4, workers, pin_memory=False)
        for expected in direct:
            got = next(batches)
            assert all(torch.equal(a, b) for a, b in zip(got, expected))
        del batches
    assert direct[0][0].shape == (3, 3, 32, 32) and direct[0][1].shape == (3, 3, 40, 40)


def test_compiled_training_matches_eager(data_dirs, tmp_path):
    """--compile (torch.compile of encoder, decoder and D) trains the same model; slow: compiles on the CPU."""
    def losses_of(out: Path, *extra: str) -> list[list[float]]:
        assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--recon-fraction", "0", *extra)) == 0
        rows = (out / "log.csv").read_text().splitlines()[1:]
        return [[float(v) for v in r.split(",")[2:9]] for r in rows]

    eager, compiled = losses_of(tmp_path / "eager"), losses_of(tmp_path / "compiled", "--compile", "default")
    assert np.allclose(eager, compiled, rtol=1e-3, atol=1e-5), (eager, compiled)


def test_time_budget_saves_and_stops_then_the_same_command_resumes_to_the_end(data_dirs, tmp_path):
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "3", "--max-minutes", "1e-9")) == 0
    state = torch.load(out / "resume.pt", weights_only=True)
    assert state["step"] == 1 and state["train_config"]["iters"] == 3  # the run's length is not rewritten
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]] == ["1"]
    assert train_mod.main(args_for(data_dirs, out, "--iters", "3", "--resume")) == 0
    assert [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]] == ["1", "2", "3"]


def test_resume_with_other_model_shaping_flags_is_one_line_and_stages_are_recorded(data_dirs, tmp_path, caplog):
    out = tmp_path / "run"
    assert train_mod.main(args_for(data_dirs, out, "--iters", "1")) == 0
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--resume", "--skip-taps", "relu3_1")) == 1
    assert "run with --skip-taps relu1_1,relu2_1,relu3_1, not relu3_1" in caplog.text
    assert train_mod.main(args_for(data_dirs, out, "--iters", "2", "--resume")) == 0
    stages = Stylizer.from_pretrained(out / "model", device="cpu").config["training"]["stages"]
    assert [(s["from_step"], s["steps"]) for s in stages] == [(0, 2)]  # a resumed run continues its stage


def test_trains_from_datasets_saved_to_disk_and_from_an_imagefolder_with_tensorboard(data_dirs, tmp_path):
    datasets = pytest.importorskip("datasets")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    images = [Image.open(p).convert("RGB") for p in sorted(data_dirs[0].glob("*.png"))]
    saved = tmp_path / "photos_arrow"
    datasets.Dataset.from_dict({"picture": images}, features=datasets.Features({"picture": datasets.Image()})).save_to_disk(saved)
    out = tmp_path / "run"
    args = ["--content-dataset", str(saved), "--content-image-column", "picture", "--style-dataset", str(data_dirs[1] / "nested"),
            "--out", str(out), "--size", "64", "--batch-size", "2", "--iters", "2", "--log-every", "1", "--sample-every", "2",
            "--report-to", "tensorboard"]
    assert train_mod.main(args) == 0
    stage = Stylizer.from_pretrained(out / "model", device="cpu").config["training"]["stages"][-1]
    assert stage["data"]["content"]["dataset"] == "photos_arrow" and stage["data"]["content"]["images"] == 4
    assert stage["data"]["style"]["images"] == 4  # the imagefolder
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"loss/style", "loss/d_loss", "discriminator/score_on_stylized", "speed/images_per_s"} <= set(events.Tags()["scalars"])
    assert events.Tags()["images"] == ["samples"]
    assert train_mod.main([*args[:2], "--content-image-column", "photo", *args[4:]]) == 1  # a wrong column: one line


def test_a_hub_dataset_without_network_is_one_line(data_dirs, tmp_path, monkeypatch, caplog):
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the network boundary
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    code = train_mod.main(["--content-dir", str(data_dirs[0]), "--style-dataset", "huggan/wikiart", "--out", str(tmp_path / "x")])
    assert code == 1
    (message,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert message.startswith("error: cannot load dataset 'huggan/wikiart'") and "\n" not in message


def test_nothing_is_decoded_before_the_first_step(data_dirs, tmp_path, monkeypatch):
    decoded = []
    real_load = train_data.load_image
    monkeypatch.setattr(train_data, "load_image", lambda *a, **k: decoded.append(a[0]) or real_load(*a, **k))
    sources = train_mod.load_sources(train_mod.parse_args(args_for(data_dirs, tmp_path / "run")), seed=0)
    assert decoded == [] and len(sources[0]) == 4 and len(sources[1]) == 5  # listed, not read
    sources[0].crop(0, 32, torch.Generator().manual_seed(0))
    assert len(decoded) == 1


def test_amp_on_a_cpu_without_amx_warns_that_bf16_is_emulated(tmp_path, monkeypatch, caplog):
    from train.runs import EMULATED_AMP_WARNING

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    missing = str(tmp_path / "nope")  # the warning comes first, before the data folders fail
    assert train_mod.main(["--content-dir", missing, "--style-dir", missing, "--out", str(tmp_path / "run"), "--device", "cpu",
                           "--amp"]) == 1
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [EMULATED_AMP_WARNING]


def test_the_working_tree_leaves_room_for_the_gpu_calls_data_pack():
    """A device call sends the working tree with what it carries, 64 MiB in all, and scripts/gpu_run.sh carries every
    training photo and painting as one pack (`scripts/shrink_dataset.py` with the flags it names: 28.5 MB on
    2026-12-03), so the tracked files must leave room for it."""
    pack_bytes, device_limit = 28_500_000, 64 * 2**20
    names = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    tracked = sum((REPO / n).stat().st_size for n in names if n and (REPO / n).is_file())
    assert tracked + pack_bytes < device_limit, (
        f"tracked files {tracked / 2**20:.1f} MiB + the data pack leave no room under the device's 64 MiB: move superseded "
        "result pictures to the git history (docs/history.md names where)")


def streamed_photos(data_dirs, tmp_path, count: int = 12) -> Path:
    """An imagefolder of `count` photos (the data_dirs' four, repeated), which `datasets` streams like a Hub dataset."""
    folder = tmp_path / "streamed"
    folder.mkdir()
    sources = sorted(data_dirs[0].glob("*.png"))
    for i in range(count):
        shutil.copy(sources[i % len(sources)], folder / f"{i:03d}.png")
    return folder


def test_a_streamed_dataset_is_read_as_drawn_in_a_seeded_order_and_resumes_exactly(data_dirs, tmp_path):
    """--streaming: rows come in a shuffled order fixed by the seed, no further than the draws need; a run resumed at
    any step (a fresh process reading the stream up to there) draws what the unbroken run drew; epochs go on."""
    pytest.importorskip("datasets")
    from train.data import Stream

    folder = streamed_photos(data_dirs, tmp_path)

    def draws(seed: int, steps: range) -> list[torch.Tensor]:
        source = ImageSource.from_dataset(str(folder), stream=Stream(seed, buffer=4))
        examples = train_data.Examples((source, source), 2, (32, 32), seed, lambda uniform: ())
        return [examples.batch(step)[0] for step in steps], source

    unbroken, source = draws(0, range(8))  # 16 rows: past the end of the 12-row stream, into its second epoch
    assert source.streamed and source.read.position == 16 and source.read.epoch == 1
    resumed, _ = draws(0, range(5, 8))
    assert all(torch.equal(a, b) for a, b in zip(unbroken[5:], resumed))
    other_seed, _ = draws(1, range(3))
    assert not all(torch.equal(a, b) for a, b in zip(unbroken[:3], other_seed))
    first, source = draws(0, range(1))
    assert source.read.position == 2  # one step of batch 2: two rows read, not the dataset


def test_distill_streams_hub_style_datasets_logs_to_tensorboard_and_resumes_exactly(data_dirs, tiny_model_dir, tmp_path):
    pytest.importorskip("datasets")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from .test_student import distill_args

    folder = streamed_photos(data_dirs, tmp_path)
    streamed = ["--content-dataset", str(folder), "--content-dir", "", "--streaming", "--shuffle-buffer", "4"]
    unbroken, resumed = tmp_path / "unbroken", tmp_path / "resumed"
    assert distill_mod.main([*distill_args(data_dirs, tiny_model_dir, unbroken, "--iters", "3"), *streamed,
                             "--report-to", "tensorboard"]) == 0
    events = EventAccumulator(str(unbroken / "tensorboard"))
    events.Reload()
    assert {"loss/texture", "loss/pixel", "lr"} <= set(events.Tags()["scalars"])
    config = json.loads((unbroken / "fast" / "config.json").read_text())
    assert config["training"]["data"]["content"]["streamed"] is True
    assert distill_mod.main([*distill_args(data_dirs, tiny_model_dir, resumed, "--iters", "3", "--max-minutes", "1e-9"), *streamed]) == 0
    assert distill_mod.main([*distill_args(data_dirs, tiny_model_dir, resumed, "--iters", "3", "--resume"), *streamed[:-2],
                             "--shuffle-buffer", "8"]) == 1  # another stream than the one it trained on: refused
    assert distill_mod.main([*distill_args(data_dirs, tiny_model_dir, resumed, "--iters", "3", "--resume"), *streamed]) == 0
    a, b = (load_file(str(run / "fast" / "student.safetensors")) for run in (unbroken, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_training_on_a_streamed_dataset_resumes_exactly_and_its_card_says_so(data_dirs, tmp_path):
    pytest.importorskip("datasets")
    folder = streamed_photos(data_dirs, tmp_path)
    streamed = ["--content-dataset", str(folder), "--content-dir", "", "--streaming", "--shuffle-buffer", "4"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert train_mod.main([*args_for(data_dirs, straight, "--iters", "3"), *streamed]) == 0
    assert train_mod.main([*args_for(data_dirs, split, "--iters", "1"), *streamed]) == 0
    assert train_mod.main([*args_for(data_dirs, split, "--iters", "3", "--resume"), *streamed]) == 0
    a, b = generator_weights(straight), generator_weights(split)
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
    card = (straight / "model" / "README.md").read_text()
    assert f"the dataset `{folder.name}` streamed (split train, shuffled in a buffer of 4 with seed 0)" in card
