"""The fast student: its interface, its distillation (train/distill.py), and the pipeline's choice between it and its teacher."""
import copy
import csv
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import train.distill as distill_mod
from stylize.checkpoint import EMBEDDED_DIR, GENERATOR_FILE, STUDENT_DIR, file_sha256, load_model_folder, load_student
from stylize.lambda_spec import LambdaSpec
from stylize.pipeline import Stylizer
from stylize.student import Student
from train.data import ImageSource

from .conftest import REPO
from .test_pipeline import photo


def distill_args(data_dirs, teacher, out, *extra) -> list[str]:  # noqa: F811
    content, style = data_dirs
    return ["--content-dir", str(content), "--style-dir", str(style), "--teacher", str(teacher), "--out", str(out),
            "--holdout", "", "--size", "64", "--style-size", "64", "--batch-size", "2", "--widths", "4", "8", "8",
            "--blocks", "1", "--code-dim", "8", "--film-hidden", "8", "--log-every", "1", *extra]


def test_student_has_the_generator_interface_and_strength_zero_is_a_function_of_the_photo():
    torch.manual_seed(0)
    student = Student(widths=(4, 8, 8), blocks=1, code_dim=8, film_hidden=8).eval()
    content, style = torch.rand(2, 3, 50, 70), torch.rand(2, 3, 64, 64)
    lambdas = torch.ones(2, 5)
    with torch.no_grad():
        out = student.decode(student.encode_content(content), student.encode_style(style), lambdas, torch.tensor([1.0, 0.5]))
        assert out.shape == (2, 3, 50, 70) and 0 <= out.min() and out.max() <= 1
        other_style = student(content, torch.rand(2, 3, 64, 64), lambdas, 1.0)
        assert not torch.allclose(out[:1], other_style[:1])
        # at strength 0 AdaIN is the identity: the style enters only through the decoder's code
        zero = student(content, style, lambdas, 0.0)
    assert zero.shape == out.shape


def test_the_photos_half_resolution_features_reach_the_picture_only_below_full_strength():
    torch.manual_seed(0)
    student = Student(widths=(4, 8, 8), blocks=1, code_dim=8, film_hidden=8).eval()
    content, style, lambdas = torch.rand(1, 3, 48, 48), student.encode_style(torch.rand(1, 3, 48, 48)), torch.ones(1, 5)
    encoding = student.encode_content(content)
    without_half = copy.copy(encoding)
    without_half.feats = [torch.zeros_like(encoding.feats[0]), *encoding.feats[1:]]
    with torch.no_grad():
        for strength, same in ((1.0, True), (torch.ones(1), True), (0.5, False), (0.0, False)):
            assert torch.equal(student.decode(encoding, style, lambdas, strength),
                               student.decode(without_half, style, lambdas, strength)) == same, strength
        # full strength as a number skips the 1/2-resolution skip that a tensor multiplies by 0: the same picture
        assert torch.equal(student.decode(encoding, style, lambdas, 1.0), student.decode(encoding, style, lambdas, torch.ones(1)))


@pytest.mark.parametrize("height, width", [(7, 9), (1, 2), (8, 8)])
def test_the_decoders_upsampling_convs_equal_a_conv_of_the_upsampled_map_in_value_and_gradient(height, width):
    """The student never builds its 4x-larger upsampled maps (256 MB at 2048 px): same pictures, same training."""
    import torch.nn.functional as F

    from stylize.generator import conv3x3, conv3x3_upsampled

    torch.manual_seed(0)
    conv, x = conv3x3(16, 3), torch.randn(2, 16, height, width)
    direct = conv(F.interpolate(x, scale_factor=2, mode="nearest"))
    grad_direct = torch.autograd.grad(direct.square().sum(), conv[1].weight)[0]
    phased = conv3x3_upsampled(conv, x)
    grad_phased = torch.autograd.grad(phased.square().sum(), conv[1].weight)[0]
    assert phased.shape == direct.shape == (2, 3, 2 * height, 2 * width)
    assert torch.allclose(phased, direct, atol=1e-5) and torch.allclose(grad_phased, grad_direct, rtol=1e-4, atol=1e-4)


def test_distill_trains_saves_resumes_exactly_and_installs_beside_its_teacher(data_dirs, tiny_model_dir, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, out, "--iters", "4", "--save-every", "2")) == 0
    config = json.loads((out / STUDENT_DIR / "config.json").read_text())
    assert config["teacher_generator_sha256"] == file_sha256(tiny_model_dir / GENERATOR_FILE)
    assert config["training"]["step"] == 4 and config["training"]["data"]["content"]["images"] == 4
    unbroken = load_file(str(out / STUDENT_DIR / "student.safetensors"))
    log_before = (out / "log.csv").read_bytes()
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, out, "--iters", "4")) == 1  # holds a run: refused
    assert (out / "log.csv").read_bytes() == log_before

    resumed = tmp_path / "resumed"  # stopped by its time limit after step 1, then resumed with the data drawn ahead
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, resumed, "--iters", "4", "--save-every", "2",
                                         "--max-minutes", "1e-9")) == 0
    assert json.loads((resumed / STUDENT_DIR / "config.json").read_text())["training"]["step"] == 1
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, resumed, "--iters", "4", "--save-every", "2",
                                         "--resume", "--install", "--workers", "2")) == 0
    again = load_file(str(resumed / STUDENT_DIR / "student.safetensors"))
    assert all(torch.equal(unbroken[k], again[k]) for k in unbroken)
    assert len((resumed / "log.csv").read_text().splitlines()) == 5  # header + 4 steps
    student, _ = load_student(tiny_model_dir / STUDENT_DIR)  # --install put it beside its teacher
    assert isinstance(student, Student)

    # --init-from starts from a student's weights: with a zero learning rate they come out unchanged
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, tmp_path / "continued", "--iters", "1", "--lr", "0",
                                         "--init-from", str(out / STUDENT_DIR))) == 0
    continued = load_file(str(tmp_path / "continued" / STUDENT_DIR / "student.safetensors"))
    assert all(torch.equal(unbroken[k], continued[k]) for k in unbroken)


def test_distill_with_amp_trains_on_the_losses_of_fp32(data_dirs, tiny_model_dir, tmp_path, monkeypatch, caplog):  # noqa: F811
    """--amp (bf16 autocast, for CUDA and CPUs with AMX): the first step's loss terms, same draws and weights, as in fp32.
    On a CPU without AMX it still runs, and says that bf16 is emulated there."""
    from train.runs import EMULATED_AMP_WARNING

    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    logged, warned = {}, {}
    for name, flags in (("fp32", ()), ("amp", ("--amp",))):
        caplog.clear()
        assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, tmp_path / name, "--iters", "1", "--log-every", "1",
                                             *flags)) == 0
        logged[name] = next(csv.DictReader((tmp_path / name / "log.csv").open()))
        warned[name] = EMULATED_AMP_WARNING in caplog.text
    assert warned == {"fp32": False, "amp": True}
    for term in ("pixel", "feature", "texture", "objective"):
        assert float(logged["amp"][term]) == pytest.approx(float(logged["fp32"][term]), rel=0.05), term


def test_distill_help_explains_every_flag():
    done = subprocess.run([sys.executable, "-m", "train.distill", "--help"], capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0
    for flag in ("--content-dir", "--style-dir", "--teacher", "--out", "--holdout", "--size", "--style-size", "--batch-size",
                 "--iters", "--lr", "--default-share", "--pixel-weight", "--feature-weight", "--feature-taps", "--texture-weight", "--objective-weight", "--init-from", "--widths",
                 "--blocks", "--code-dim",
                 "--film-hidden", "--seed", "--device", "--amp", "--log-every", "--save-every", "--max-minutes", "--resume", "--overwrite", "--install"):
        assert flag in done.stdout


@pytest.mark.parametrize("flags, message", [
    (("--size", "100"), "multiples of 8"),
    (("--feature-taps", "relu3_1,relu5_1"), "unknown relu5_1"),
    (("--default-share", "nan"), "--default-share must be in [0, 1]"),
])
def test_distill_refuses_flags_it_cannot_honour_in_one_line(data_dirs, tmp_path, capsys, flags, message):  # noqa: F811
    with pytest.raises(SystemExit) as exited:
        distill_mod.parse_args(distill_args(data_dirs, EMBEDDED_DIR, tmp_path / "run", *flags))
    assert exited.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_distill_draws_the_default_lambdas_for_its_share_of_examples(data_dirs, tmp_path, share):  # noqa: F811
    cfg = distill_mod.parse_args(distill_args(data_dirs, EMBEDDED_DIR, tmp_path / "run", "--default-share", str(share),
                                              "--batch-size", "40"))
    spec = LambdaSpec.from_config(load_model_folder(EMBEDDED_DIR)[1]["lambdas"])
    draws = distill_mod.examples(cfg, (ImageSource.from_folder(Path(cfg.content_dir)), ImageSource.from_folder(Path(cfg.style_dir))), spec)
    lambdas = draws.batch(0)[2]
    at_default = (lambdas == torch.tensor(spec.resolve(), dtype=lambdas.dtype)).all(dim=1).float().mean().item()
    assert at_default == share if share in (0.0, 1.0) else 0.25 <= at_default <= 0.75


@pytest.fixture
def model_with_student(data_dirs, tiny_model_dir, tmp_path):  # noqa: F811
    assert distill_mod.main(distill_args(data_dirs, tiny_model_dir, tmp_path / "run", "--iters", "1", "--install")) == 0
    return tiny_model_dir


def test_pipeline_variants_share_one_interface_and_cache_apart(model_with_student):
    fast = Stylizer.from_pretrained(model_with_student, variant="fast", device="cpu")
    assert fast.variant == "fast" and fast.variants == ("quality", "fast")
    content, style = photo(80, 64), photo(80, 64, seed=1)
    student_image, teacher_image = fast(content, style), fast(content, style, variant="quality")
    assert student_image.size == teacher_image.size == (80, 64)
    assert not np.array_equal(np.asarray(student_image), np.asarray(teacher_image))
    assert fast.encoder_calls == 4  # content and style, once per variant
    assert np.array_equal(np.asarray(fast(content, style, refine_steps=1)), np.asarray(fast(content, style, refine_steps=1)))
    assert Stylizer.from_pretrained(model_with_student, variant="auto", device="cpu").variant == "fast"  # on a CPU
    quality = Stylizer.from_pretrained(model_with_student, device="cpu")
    assert quality.variant == "quality" and quality.student is None
    with pytest.raises(ValueError, match="variant 'fast' is not available"):
        quality(content, style, variant="fast")
    with pytest.raises(ValueError, match="variant must be one of"):
        Stylizer.from_pretrained(model_with_student, variant="turbo", device="cpu")


def test_a_student_of_another_teacher_is_refused_with_a_warning(model_with_student, tiny_model_dir, tmp_path):
    other = tmp_path / "other-teacher"
    shutil.copytree(model_with_student, other)
    generator = load_file(str(other / GENERATOR_FILE))
    first = next(iter(generator))
    generator[first] = generator[first] + 1  # a retrained teacher
    from safetensors.torch import save_file

    save_file(generator, str(other / GENERATOR_FILE))
    with pytest.warns(UserWarning, match="distilled from another generator"):
        stylizer = Stylizer.from_pretrained(other, variant="fast", device="cpu")
    assert stylizer.variant == "quality" and stylizer.student is None
    shutil.rmtree(other / STUDENT_DIR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto without a student is normal: no warning
        assert Stylizer.from_pretrained(other, variant="auto", device="cpu").variant == "quality"
    with pytest.warns(UserWarning, match="no fast student"):
        assert Stylizer.from_pretrained(other, variant="fast", device="cpu").variant == "quality"



def test_cli_variant_flag(model_with_student, tmp_path):
    content, style = tmp_path / "c.png", tmp_path / "s.png"
    photo(80, 64).save(content)
    photo(80, 64, seed=1).save(style)
    for variant in ("fast", "quality"):
        done = subprocess.run([sys.executable, "-m", "stylize", str(content), str(style), "-o", str(tmp_path / f"{variant}.png"),
                               "--model", str(model_with_student), "--variant", variant], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"{variant} model" in done.stdout


def test_the_shipped_student_was_distilled_from_the_shipped_teacher():
    _, config = load_student(EMBEDDED_DIR / STUDENT_DIR)
    assert config["teacher_generator_sha256"] == file_sha256(EMBEDDED_DIR / GENERATOR_FILE), \
        "weights/ holds a new teacher: re-run python -m train.distill ... --install"


@pytest.mark.parametrize("negative_slope, learns", [(0.0, False), (0.2, True)])
def test_a_student_layer_whose_inputs_all_turn_negative_still_learns(negative_slope, learns):
    """With plain ReLUs the first students' whole 1/8 level went silent that way and never came back: no gradient
    reached it. Learnable slopes pass one."""
    torch.manual_seed(0)
    student = Student(widths=(4, 8, 8), blocks=1, code_dim=8, film_hidden=8, negative_slope=negative_slope)
    with torch.no_grad():
        student.content_encoder.to_eighth[0].bias.fill_(-1e3)  # every pre-activation negative
    content, style = torch.rand(2, 3, 48, 48), torch.rand(2, 3, 48, 48)
    student(content, style, torch.ones(2, 5)).square().mean().backward()
    assert bool(student.content_encoder.to_eighth[0].weight.grad.abs().sum()) == learns
