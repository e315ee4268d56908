"""The inference folder (config.json + generator/discriminator/VGG safetensors) and a run's resume state: each saved
and loaded here, written atomically."""
import hashlib
import inspect
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .discriminator import MultiScaleDiscriminator
from .encoder import VGGEncoder
from .generator import Generator
from .lambda_spec import LambdaSpec
from .student import Student

CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
VGG_FILE = "vgg16_imagenet.safetensors"
STUDENT_DIR = "fast"  # the fast student's folder inside its teacher's model folder
STUDENT_FILE = "student.safetensors"
# Written before issue 21: derived from the λ ranges since, and stored in the weights as buffers.
LEGACY_ARCHITECTURE_KEYS = ("log_lambda_center", "log_lambda_halfwidth")
# Installed: stylize/weights (pyproject maps the checkout's weights/ there); in a checkout or an editable install: weights/
_INSTALLED_WEIGHTS = Path(__file__).resolve().parent / "weights"
EMBEDDED_DIR = _INSTALLED_WEIGHTS if _INSTALLED_WEIGHTS.is_dir() else Path(__file__).resolve().parents[1] / "weights"
STYLE_MAX_SIDE = 512  # paintings are fitted to this long side before encoding: what training writes, and the default
# Each number a config.json may set, by type and range, checked before a network is built: a malformed folder can neither
# fail deep inside a layer nor ask for more memory than any Stylize model needs (the largest shipped widths are 256).
# (int or float, lowest, highest); a list setting holds such numbers.
SETTING_LIMITS = {
    "top": {"style_max_side": (int, 64, 4096)},
    "generator": {"widths": (int, 1, 1024), "blocks": (int, 0, 16), "attention_key_dim": (int, 1, 1024),
                  "attention_value_dim": (int, 1, 2048), "film_hidden": (int, 1, 2048)},
    "discriminator": {"scales": (int, 1, 6), "base_channels": (int, 1, 512), "layers": (int, 1, 8), "style_dim": (int, 0, 8192)},
    "student": {"widths": (int, 1, 512), "blocks": (int, 0, 16), "code_dim": (int, 1, 1024), "film_hidden": (int, 1, 1024),
                "negative_slope": (float, 0.0, 1.0)},
}


class CheckpointError(RuntimeError):
    """A model folder is missing, incomplete or corrupt; the message names the file."""


def atomic_write(path: Path, write) -> None:
    """write(tmp_path) then rename over `path`: a crash at any moment leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _save_half(state: dict[str, torch.Tensor], path: Path) -> None:
    # fp16 halves the download; inference upcasts on load. Resume state keeps fp32 elsewhere.
    tensors = {k: (v.half() if v.is_floating_point() else v).contiguous().cpu() for k, v in state.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp)))


def save_model_folder(folder: Path, generator: Generator, discriminator: MultiScaleDiscriminator | None, config: dict) -> None:
    """Weights first, config.json last: a reader never sees a config newer than its weights."""
    folder = Path(folder)
    _save_half(generator.trainable_state_dict(), folder / GENERATOR_FILE)
    if discriminator is not None:
        _save_half(discriminator.state_dict(), folder / DISCRIMINATOR_FILE)
    vgg_target = folder / VGG_FILE
    if not vgg_target.exists():
        atomic_write(vgg_target, lambda tmp: shutil.copyfile(EMBEDDED_DIR / VGG_FILE, tmp))
    config = {**config, "generator": generator.config, "discriminator": discriminator.config if discriminator is not None else None}
    atomic_write(folder / CONFIG_FILE, lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))


def read_config(folder: Path) -> dict:
    """config.json, checked for everything inference reads: a missing piece is a CheckpointError naming it."""
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"model config not found: {path}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"model config is not valid JSON ({err}): {path}") from None
    problem = _config_problem(config)
    if problem:
        raise CheckpointError(f"model config is not a Stylize config ({problem}): {path}")
    return config


def settings_problem(section: dict, kind: str) -> str | None:
    """What is wrong with a config section's numbers (SETTING_LIMITS[kind]), or None."""
    for key, (number_type, lowest, highest) in SETTING_LIMITS[kind].items():
        if key not in section:
            continue
        value = section[key]
        values = value if isinstance(value, list) and value else [value]
        allowed = (int, float) if number_type is float else int
        if not all(isinstance(v, allowed) and not isinstance(v, bool) and lowest <= v <= highest for v in values):
            what = "a float" if number_type is float else "an integer"
            return f"{key} = {json.dumps(value)[:40]}: each must be {what} in [{lowest}, {highest}]"
    return None


def _config_problem(config) -> str | None:
    if not isinstance(config, dict):
        return "not a JSON object"
    problem = settings_problem(config, "top")
    if problem:
        return problem
    try:
        LambdaSpec.from_config(config.get("lambdas"))
    except ValueError as err:
        return str(err)
    if not isinstance(config.get("generator"), dict):
        return "no 'generator' section"
    unknown = set(architecture(config["generator"])) - (set(inspect.signature(Generator).parameters) - {"encoder", "lambda_ranges"})
    if unknown:
        return f"unknown generator setting(s) {', '.join(sorted(unknown))}"
    if isinstance(config.get("discriminator"), dict):
        return settings_problem(config["generator"], "generator") or settings_problem(config["discriminator"], "discriminator")
    return settings_problem(config["generator"], "generator")


def architecture(section: dict) -> dict:
    """A network's config.json section without the keys older folders carried."""
    return {k: v for k, v in section.items() if k not in LEGACY_ARCHITECTURE_KEYS}


def _load_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"weights file not found: {path}")
    try:
        return {k: v.float() for k, v in load_file(str(path)).items()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"weights file is corrupt ({err}): {path}") from None


def load_model_folder(folder: Path) -> tuple[Generator, dict]:
    """The generator (VGG included) and config of an inference folder; the critic is load_discriminator's."""
    folder = Path(folder)
    config = read_config(folder)
    vgg_path = folder / VGG_FILE if (folder / VGG_FILE).exists() else EMBEDDED_DIR / VGG_FILE
    try:
        encoder = VGGEncoder.from_file(vgg_path)
    except (SafetensorError, OSError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"VGG weights unusable ({err}): {vgg_path}") from None
    try:
        generator = Generator(encoder, lambda_ranges=LambdaSpec.from_config(config["lambdas"]).ranges, **architecture(config["generator"]))
    except (TypeError, ValueError, AssertionError) as err:
        raise CheckpointError(f"generator settings unusable ({err}): {folder / CONFIG_FILE}") from None
    state = _load_tensors(folder / GENERATOR_FILE)
    try:
        generator.load_trainable_state_dict(state)
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"{err}: {folder / GENERATOR_FILE}") from None
    return generator.eval(), config


def load_discriminator(folder: Path, config: dict) -> MultiScaleDiscriminator | None:
    """The folder's critic, or None where it has none."""
    path = Path(folder) / DISCRIMINATOR_FILE
    if not config.get("discriminator") or not path.exists():
        return None
    try:
        discriminator = MultiScaleDiscriminator(**config["discriminator"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"discriminator settings unusable ({err}): {Path(folder) / CONFIG_FILE}") from None
    state = _load_tensors(path)
    try:
        discriminator.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"discriminator weights do not match ({err}): {path}") from None
    return discriminator.eval()


def save_student_folder(folder: Path, student: Student, teacher_sha256: str, training: dict) -> None:
    """student.safetensors + config.json (architecture, the teacher's generator hash, training summary); λ names, ranges
    and defaults are the teacher's, read from its config.json beside it."""
    folder = Path(folder)
    _save_half(student.state_dict(), folder / STUDENT_FILE)
    config = {"format": "stylize-student", "student": student.config, "teacher_generator_sha256": teacher_sha256, "training": training}
    atomic_write(folder / CONFIG_FILE, lambda tmp: tmp.write_text(json.dumps(config, indent=2) + "\n"))


def load_student(folder: Path) -> tuple[Student, dict]:
    """The student in `folder` (a model folder's fast/) and its config (its λ normalization comes with its weights);
    CheckpointError if missing or broken."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"no fast student: {path} not found")
    try:
        config = json.loads(path.read_text())
        problem = settings_problem(config["student"], "student")
        if problem:
            raise ValueError(problem)
        student = Student(**architecture(config["student"]))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"student config unusable ({err.__class__.__name__}: {err}): {path}") from None
    try:
        student.load_state_dict(_load_tensors(folder / STUDENT_FILE))
    except RuntimeError as err:
        raise CheckpointError(f"student weights do not match ({str(err).splitlines()[0]}): {folder / STUDENT_FILE}") from None
    return student.eval(), config


def load_resume_state(path: Path, device: torch.device, required: tuple[str, ...]) -> dict:
    """A training or distillation run's torch.save'd state, with `required` keys; ValueError in one line otherwise."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
        for key in required:
            state[key]
    except Exception as err:  # noqa: BLE001 - a truncated or foreign file fails in the unpickler, zipfile or a lookup
        raise ValueError(f"--resume: {path} is truncated or not a Stylize resume state "
                         f"({err.__class__.__name__}); delete it to start over") from None
    return state


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def matching_student(folder: Path) -> Student | None:
    """The folder's fast student if it was distilled from the generator beside it; otherwise a warning and None."""
    try:
        student, config = load_student(Path(folder) / STUDENT_DIR)
    except CheckpointError as err:
        warnings.warn(f"{err}; using the quality generator", stacklevel=3)
        return None
    if config.get("teacher_generator_sha256") != file_sha256(Path(folder) / GENERATOR_FILE):
        warnings.warn(f"the fast student in {Path(folder) / STUDENT_DIR} was distilled from another generator than the one "
                      "beside it (re-run train/distill.py); using the quality generator", stacklevel=3)
        return None
    return student
