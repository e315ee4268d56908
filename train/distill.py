"""Distil the fast student (stylize/student.py) from a teacher model folder (default: the embedded weights/).

    python -m train.distill --content-dir ../shared/data/content --style-dir ../shared/data/style --out runs/fast
    python -m train.distill ... --out runs/fast --resume           # continue exactly
    python -m train.distill ... --install                          # when done, put the student beside its teacher

One loop: draw photo and painting crops, λ (half at the teacher's defaults, half log-uniform in its trained ranges)
and a strength (mostly 1, some 0, some in between) -> the teacher's picture (no gradient) -> the student's. The
student matches it in pixels (L1), in the teacher's VGG features and in their Gram matrices (the texture, which pixel
and feature matches alone average away into a colour grade), plus a small share of the teacher's own λ-weighted VGG
objective (content, style, TV), so where it cannot copy it still optimises what the teacher was trained for. Every
draw is a pure function of (seed, step, example), as in train.py, so --resume continues exactly. The student folder
(OUT/fast/) records the SHA-256 of the teacher's generator.safetensors: the pipeline uses a student only beside the
teacher it came from. Re-run unchanged on a new teacher.
"""
import argparse
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from stylize import losses
from stylize.checkpoint import (
    EMBEDDED_DIR, GENERATOR_FILE, STUDENT_DIR, CheckpointError, atomic_write, file_sha256, load_model_folder,
    load_resume_state, load_student, save_student_folder,
)
from stylize.encoder import DOWNSAMPLE, TAPS
from stylize.generator import Generator
from stylize.lambda_spec import LambdaSpec
from stylize.devices import bf16_is_emulated, pick_device
from stylize.student import Student
from stylize.images import read_name_list
from train.data import Examples, ImageSource, loader, worker_count
from train.runs import EMULATED_AMP_WARNING, EVERY, append_log_row, check_option_ranges, claim_run_folder, start_log

log = logging.getLogger("stylize.distill")

OPTION_RANGES = {
    "size": (64, 4096), "style_size": (64, 4096), "batch_size": (1, 4096), "iters": (1, EVERY), "lr": (0, 1),
    "default_share": (0, 1), "pixel_weight": (0, EVERY), "feature_weight": (0, EVERY), "texture_weight": (0, EVERY),
    "objective_weight": (0, EVERY), "widths": (1, 512), "blocks": (0, 16), "code_dim": (1, 1024), "film_hidden": (1, 1024),
    "negative_slope": (0, 1), "seed": (0, 2**63 - 1), "workers": (-1, 64), "log_every": (1, EVERY),
    "save_every": (1, EVERY), "max_minutes": (0, EVERY),
}
LOG_COLUMNS = ["step", "seconds", "loss", "pixel", "feature", "texture", "objective", "lr"]


@dataclass
class DistillConfig:
    content_dir: str = ""
    style_dir: str = ""
    out: str = "runs/fast"
    teacher: str = str(EMBEDDED_DIR)
    holdout: str = str(Path(__file__).resolve().parents[1] / "bench" / "holdout.txt")
    size: int = 256
    style_size: int = 256
    batch_size: int = 8
    iters: int = 3000
    lr: float = 2e-3
    default_share: float = 0.5
    pixel_weight: float = 1.0
    feature_weight: float = 1.0
    feature_taps: str = ",".join(TAPS)
    texture_weight: float = 2.0
    objective_weight: float = 0.1
    widths: tuple = (16, 32, 64)
    blocks: int = 3
    code_dim: int = 64
    film_hidden: int = 64
    negative_slope: float = 0.2
    init_from: str = ""
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    workers: int = -1
    log_every: int = 25
    save_every: int = 250
    max_minutes: float = 0.0
    resume: bool = False
    overwrite: bool = False
    install: bool = False


HELP = {
    "content_dir": "folder of photos (searched recursively)",
    "style_dir": "folder of paintings (searched recursively)",
    "out": "run folder: OUT/fast/ (the student), OUT/distill.pt (resume state), OUT/log.csv (default %(default)s)",
    "teacher": "teacher model folder (default: the embedded weights/)",
    "holdout": "file names never trained on, one per line (default: bench/holdout.txt; '' for none)",
    "size": "photo crop side in px, a multiple of 8 (default %(default)s)",
    "style_size": "painting crop side in px, a multiple of 8 (default %(default)s)",
    "batch_size": "examples per step (default %(default)s)",
    "iters": "total steps (default %(default)s)",
    "lr": "Adam learning rate, cosine-decayed to 1/20 of it (default %(default)s)",
    "default_share": "share of examples at the teacher's default λ, what most people run; the rest are log-uniform over the "
                     "trained ranges, the sliders (default %(default)s)",
    "pixel_weight": "weight of the L1 match to the teacher's pixels (default %(default)s)",
    "feature_weight": "weight of the teacher-VGG feature match (default %(default)s)",
    "feature_taps": "VGG taps of the feature match, comma-separated: the shallow ones pin the teacher's strokes pixel by "
                    "pixel, where a student that cannot place them exactly learns to smooth them away (default %(default)s)",
    "texture_weight": "weight of matching the Gram matrices of the teacher's picture: its texture wherever it lies, which "
                      "pixel and feature matches alone average away (default %(default)s)",
    "objective_weight": "weight of the teacher's own λ-weighted content/style/TV objective (default %(default)s)",
    "init_from": "start from this student folder's weights (e.g. a shorter run's OUT/fast), not from random ones",
    "widths": "student channels at 1/2, 1/4, 1/8 resolution (default 16 32 64)",
    "blocks": "FiLM residual blocks at 1/8 resolution (default %(default)s)",
    "code_dim": "size of the style code that modulates the decoder (default %(default)s)",
    "film_hidden": "hidden units of the λ/strength/style MLP (default %(default)s)",
    "negative_slope": "initial negative slope of the student's activations, which learn their own (default %(default)s)",
    "seed": "seed of every random draw (default %(default)s)",
    "device": "auto | cpu | cuda | cuda:N | mps (default %(default)s)",
    "amp": "bf16 autocast for the teacher's and the student's passes and the VGG of the loss (Gram matrices stay fp32): "
           "on a CUDA GPU, or a CPU with AMX (bench/train_speed.py); other CPUs emulate bf16 slowly",
    "workers": "DataLoader worker processes that read, decode and crop the next batches (-1: none on a CPU device, "
               "where they would compete with the step for the cores; else min(8, cores)); draws are the same for any "
               "number",
    "log_every": "steps between log.csv rows (default %(default)s)",
    "save_every": "steps between checkpoints (default %(default)s)",
    "max_minutes": "save and stop after this many minutes (0: no limit; default %(default)s)",
    "resume": "continue from OUT/distill.pt",
    "overwrite": "start a new run in an OUT that already holds one (without it, such an OUT is refused)",
    "install": "when done, copy OUT/fast/ into the teacher folder's fast/ (where the pipeline looks for it)",
}


def parse_args(argv=None) -> DistillConfig:
    parser = argparse.ArgumentParser(prog="python -m train.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(DistillConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help=HELP[f.name])
        elif isinstance(f.default, tuple):
            parser.add_argument(flag, type=int, nargs=len(f.default), default=f.default, help=HELP[f.name])
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=HELP[f.name])
    cfg = DistillConfig(**vars(parser.parse_args(argv)))
    if not cfg.content_dir or not cfg.style_dir:
        parser.error("--content-dir and --style-dir are required")
    check_option_ranges(parser, cfg, OPTION_RANGES)
    if cfg.size % DOWNSAMPLE or cfg.style_size % DOWNSAMPLE:
        parser.error(f"--size and --style-size must be multiples of {DOWNSAMPLE} (the teacher's encodings are reused unpadded)")
    unknown = set(cfg.feature_taps.split(",")) - set(TAPS)
    if unknown:
        parser.error(f"--feature-taps: unknown {', '.join(sorted(unknown))}; choose from {', '.join(TAPS)}")
    cfg.widths = tuple(cfg.widths)
    return cfg


def draw_strength(uniform) -> float:
    """Mostly 1 (what users run), 10 % at 0 (the photo back), 20 % anywhere in between (the strength slider)."""
    u = uniform()
    return 0.0 if u < 0.1 else uniform() if u < 0.3 else 1.0


def examples(cfg: DistillConfig, sources: tuple[ImageSource, ImageSource], spec: LambdaSpec) -> Examples:
    def draw_lambdas(uniform) -> list[float]:
        return spec.resolve() if uniform() < cfg.default_share else spec.sample(uniform)

    return Examples(sources, cfg.batch_size, (cfg.size, cfg.style_size), cfg.seed,
                    lambda uniform: (draw_lambdas(uniform), draw_strength(uniform)))


def teacher_pass(teacher: Generator, content, style, lambdas, strengths):
    """The teacher's picture and the VGG features of photo, painting and picture: the photo's and painting's are the
    teacher's own encodings (crops are multiples of 8, so unpadded), which the loss reuses rather than recomputing."""
    with torch.no_grad():
        content_encoding = teacher.encode_content(content)
        style_feats = teacher.encoder(style)
        target = teacher.decode(content_encoding, Generator.style_encoding_from_feats(style_feats), lambdas, strengths).float()
        return target, teacher.encoder(target), content_encoding.feats, style_feats


def distillation_loss(cfg: DistillConfig, teacher: Generator, normalizers: dict, student_out, teacher_pass_out,
                      lambdas) -> tuple[torch.Tensor, dict[str, float]]:
    target, teacher_feats, content_feats, style_feats = teacher_pass_out
    student_feats = teacher.encoder(student_out)
    pixel = (student_out - target).abs().mean()
    taps = cfg.feature_taps.split(",")
    feature = sum(F.mse_loss(getattr(student_feats, t), getattr(teacher_feats, t)) for t in taps) / len(taps)
    texture = losses.style_loss(student_feats, losses.style_grams(teacher_feats)).mean()
    terms = losses.generator_terms(student_out, student_feats, content_feats, losses.style_grams(style_feats))
    objective = losses.weighted_objective(terms, lambdas, normalizers).mean()
    loss = cfg.pixel_weight * pixel + cfg.feature_weight * feature + cfg.texture_weight * texture + cfg.objective_weight * objective
    return loss, {"loss": loss.item(), "pixel": pixel.item(), "feature": feature.item(), "texture": texture.item(),
                  "objective": objective.item()}


def distill(cfg: DistillConfig) -> Path:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    device = pick_device(cfg.device)
    if cfg.amp and bf16_is_emulated(device):
        log.warning(EMULATED_AMP_WARNING)
    teacher, teacher_config = load_model_folder(Path(cfg.teacher))
    teacher = teacher.to(device).requires_grad_(False)
    spec = LambdaSpec.from_config(teacher_config["lambdas"])
    teacher_hash = file_sha256(Path(cfg.teacher) / GENERATOR_FILE)
    out = Path(cfg.out)
    claim_run_folder(out, cfg.resume, cfg.overwrite, "distill.pt")
    torch.manual_seed(cfg.seed)
    student = Student(widths=cfg.widths, blocks=cfg.blocks, code_dim=cfg.code_dim, film_hidden=cfg.film_hidden,
                      negative_slope=cfg.negative_slope, lambda_ranges=spec.ranges).to(device)
    if cfg.init_from:
        initial, _ = load_student(Path(cfg.init_from))
        student.load_state_dict(initial.state_dict())
        log.info("initialized from %s", cfg.init_from)
    optimizer = torch.optim.Adam(student.parameters(), lr=cfg.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(s / cfg.iters, 1))))
    step = 0
    if cfg.resume:
        state = load_resume_state(out / "distill.pt", device, ("student", "optimizer", "schedule", "step", "teacher_sha256"))
        if state["teacher_sha256"] != teacher_hash:
            raise ValueError(f"--resume: {out / 'distill.pt'} was distilled from another teacher than {cfg.teacher}")
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log.info("resumed at step %d", step)

    exclude = set(read_name_list(Path(cfg.holdout))) if cfg.holdout else set()
    sources = (ImageSource.from_folder(Path(cfg.content_dir), exclude), ImageSource.from_folder(Path(cfg.style_dir), exclude))
    draws = examples(cfg, sources, spec)
    log.info("student: %.2f M parameters; teacher %s (generator sha256 %s); %d photos, %d paintings",
             sum(p.numel() for p in student.parameters()) / 1e6, cfg.teacher, teacher_hash[:12], len(sources[0]), len(sources[1]))

    def save() -> None:
        info = {"step": step, "size": cfg.size, "style_size": cfg.style_size, "batch_size": cfg.batch_size,
                "data": {"content": sources[0].description(), "style": sources[1].description()}}
        save_student_folder(out / STUDENT_DIR, student, teacher_hash, info)
        state = {"student": student.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "step": step, "teacher_sha256": teacher_hash, "config": asdict(cfg)}
        atomic_write(out / "distill.pt", lambda tmp: torch.save(state, tmp))

    log_path = out / "log.csv"
    start_log(log_path, LOG_COLUMNS, step if cfg.resume else None)
    started = time.time()
    batches = loader(draws, step, worker_count(cfg.workers, device), pin_memory=device.type == "cuda")
    while step < cfg.iters:
        content, style, lambdas, strengths = (t.to(device, non_blocking=True) for t in next(batches))
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
            targets = teacher_pass(teacher, content, style, lambdas, strengths)
            out_image = student(content, style, lambdas, strengths)
            loss, parts = distillation_loss(cfg, teacher, spec.normalizers, out_image, targets, lambdas)
        if not math.isfinite(parts["loss"]):
            raise FloatingPointError(f"step {step}: the distillation loss is {parts['loss']}; the last checkpoint is intact")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        step += 1
        out_of_time = cfg.max_minutes > 0 and time.time() - started > cfg.max_minutes * 60
        if step % cfg.log_every == 0 or step == cfg.iters or out_of_time:
            append_log_row(log_path, LOG_COLUMNS, {"step": step, "seconds": round(time.time() - started, 2),
                                                   "lr": schedule.get_last_lr()[0], **parts})
            log.info("step %d  %.0f s  loss %.4f  pixel %.4f  feature %.4f  texture %.4f  objective %.4f", step,
                     time.time() - started, parts["loss"], parts["pixel"], parts["feature"], parts["texture"], parts["objective"])
        if step % cfg.save_every == 0 or step == cfg.iters or out_of_time:
            save()
        if out_of_time:
            log.info("stopped at the %g-minute limit after step %d", cfg.max_minutes, step)
            break
    if cfg.install:
        target_dir = Path(cfg.teacher) / STUDENT_DIR
        shutil.copytree(out / STUDENT_DIR, target_dir, dirs_exist_ok=True)
        log.info("installed the student into %s", target_dir)
    return out / STUDENT_DIR


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        distill(cfg)
    except (FileNotFoundError, ValueError, CheckpointError, FloatingPointError) as err:
        log.error("error: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
