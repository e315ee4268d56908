"""Distil the fast student (stylize/student.py) from a teacher model folder (default: the embedded weights/).

    python -m train.distill --content-dir ../shared/data/content --style-dir ../shared/data/style --out runs/fast
    python -m train.distill ... --out runs/fast --resume           # continue exactly
    python -m train.distill ... --install                          # when done, put the student beside its teacher
    python -m train.distill --content-dataset detection-datasets/coco --style-dataset huggan/wikiart --streaming ...

One loop: draw photo and painting crops, λ (half at the teacher's defaults, half log-uniform in its trained ranges)
and a strength (mostly 1, some 0, some in between) -> the teacher's picture (no gradient) -> the student's. The
student matches it in pixels (L1), in the teacher's VGG features and in their Gram matrices (the texture, which pixel
and feature matches alone average away into a colour grade), plus a small share of the teacher's own λ-weighted VGG
objective (content, style, TV), so where it cannot copy it still optimises what the teacher was trained for. Every
draw is a pure function of (seed, step, example), as in train.py, so --resume continues exactly. The student folder
(OUT/fast/) records the SHA-256 of the teacher's generator.safetensors: the pipeline uses a student only beside the
teacher it came from. Re-run unchanged on a new teacher.
"""
import logging
import math
import shutil
import sys
import time
from dataclasses import asdict, dataclass
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
from train.data import DataOptions, Examples, ImageSource, check_data_options, load_sources, loader, worker_count
from train.runs import (
    EMULATED_AMP_WARNING, EVERY, ReportOptions, RunLog, check_option_ranges, check_resume_flags, claim_run_folder,
    entry_point, option, options_parser,
)

log = logging.getLogger("stylize.distill")

LOG_COLUMNS = ["step", "seconds", "loss", "pixel", "feature", "texture", "objective", "lr"]
HOLDOUT = Path(__file__).resolve().parents[1] / "bench" / "holdout.txt"  # the benches' test and validation images
# Flags a resumed distillation must repeat: they shape the student or the stream of examples it was trained on.
RESUME_MUST_MATCH = ("widths", "blocks", "code_dim", "film_hidden", "streaming", "shuffle_buffer")


@dataclass
class DistillConfig(DataOptions, ReportOptions):
    out: str = option("runs/fast", "run folder: OUT/fast/ (the student), OUT/distill.pt (resume state), OUT/log.csv "
                                   "(default %(default)s)")
    teacher: str = option(str(EMBEDDED_DIR), "teacher model folder (default: the embedded weights/)")
    size: int = option(256, "photo crop side in px, a multiple of 8 (default %(default)s)", 64, 4096)
    style_size: int = option(256, "painting crop side in px, a multiple of 8 (default %(default)s)", 64, 4096)
    batch_size: int = option(8, "examples per step (default %(default)s)", 1, 4096)
    iters: int = option(3000, "total steps (default %(default)s)", 1, EVERY)
    lr: float = option(0.002, "Adam learning rate, cosine-decayed to 1/20 of it (default %(default)s)", 0, 1)
    default_share: float = option(0.5, "share of examples at the teacher's default λ, what most people run; the rest"
                                       " are log-uniform over the trained ranges, the sliders (default %(default)s)", 0, 1)
    pixel_weight: float = option(1.0, "weight of the L1 match to the teacher's pixels (default %(default)s)", 0, EVERY)
    feature_weight: float = option(1.0, "weight of the teacher-VGG feature match (default %(default)s)", 0, EVERY)
    feature_taps: str = option(",".join(TAPS), "VGG taps of the feature match, comma-separated: the shallow ones pin"
                                               " the teacher's strokes pixel by pixel, where a student that cannot "
                                               "place them exactly learns to smooth them away (default %(default)s)")
    texture_weight: float = option(2.0, "weight of matching the Gram matrices of the teacher's picture: its texture "
                                        "wherever it lies, which pixel and feature matches alone average away "
                                        "(default %(default)s)", 0, EVERY)
    objective_weight: float = option(0.1, "weight of the teacher's own λ-weighted content/style/TV objective "
                                          "(default %(default)s)", 0, EVERY)
    widths: tuple = option((16, 32, 64), "student channels at 1/2, 1/4, 1/8 resolution (default 16 32 64)", 1, 512)
    blocks: int = option(3, "FiLM residual blocks at 1/8 resolution (default %(default)s)", 0, 16)
    code_dim: int = option(64, "size of the style code that modulates the decoder (default %(default)s)", 1, 1024)
    film_hidden: int = option(64, "hidden units of the λ/strength/style MLP (default %(default)s)", 1, 1024)
    negative_slope: float = option(0.2, "initial negative slope of the student's activations, which learn their own "
                                        "(default %(default)s)", 0, 1)
    init_from: str = option("", "start from this student folder's weights (e.g. a shorter run's OUT/fast), not from "
                                "random ones")
    seed: int = option(0, "seed of every random draw (default %(default)s)", 0, 2**63 - 1)
    device: str = option("auto", "auto | cpu | cuda | cuda:N | mps (default %(default)s)")
    amp: bool = option(False, "bf16 autocast for the teacher's and the student's passes and the VGG of the loss "
                              "(Gram matrices stay fp32): on a CUDA GPU, or a CPU with AMX (bench/train_speed.py); "
                              "other CPUs emulate bf16 slowly")
    log_every: int = option(25, "steps between log.csv rows (default %(default)s)", 1, EVERY)
    save_every: int = option(250, "steps between checkpoints (default %(default)s)", 1, EVERY)
    max_minutes: float = option(0.0, "save and stop after this many minutes (0: no limit; default %(default)s)", 0, EVERY)
    resume: bool = option(False, "continue from OUT/distill.pt")
    overwrite: bool = option(False, "start a new run in an OUT that already holds one (without it, such an OUT is "
                                    "refused)")
    install: bool = option(False, "when done, copy OUT/fast/ into the teacher folder's fast/ (where the pipeline "
                                  "looks for it)")


def parse_args(argv=None) -> DistillConfig:
    parser = options_parser(DistillConfig, __doc__, prog="python -m train.distill")
    parser.set_defaults(holdout=str(HOLDOUT))
    cfg = DistillConfig(**vars(parser.parse_args(argv)))
    check_data_options(parser, cfg)
    check_option_ranges(parser, cfg)
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
        check_resume_flags(out / "distill.pt", state.get("config", {}), cfg, RESUME_MUST_MATCH)
        if state["teacher_sha256"] != teacher_hash:
            raise ValueError(f"--resume: {out / 'distill.pt'} was distilled from another teacher than {cfg.teacher}")
        student.load_state_dict(state["student"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        log.info("resumed at step %d", step)

    sources = load_sources(cfg, cfg.seed)
    draws = examples(cfg, sources, spec)
    log.info("student: %.2f M parameters; teacher %s (generator sha256 %s)",
             sum(p.numel() for p in student.parameters()) / 1e6, cfg.teacher, teacher_hash[:12])

    def save() -> None:
        info = {"step": step, "size": cfg.size, "style_size": cfg.style_size, "batch_size": cfg.batch_size,
                "data": {"content": sources[0].description(), "style": sources[1].description()}}
        save_student_folder(out / STUDENT_DIR, student, teacher_hash, info)
        state = {"student": student.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "step": step, "teacher_sha256": teacher_hash, "config": asdict(cfg)}
        atomic_write(out / "distill.pt", lambda tmp: torch.save(state, tmp))

    run_log = RunLog(out, LOG_COLUMNS, step if cfg.resume else None, cfg.report_to)
    started = time.time()
    batches = loader(draws, step, worker_count(cfg.workers, device, streamed=any(s.streamed for s in sources)),
                     pin_memory=device.type == "cuda")
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
            run_log.write({"step": step, "seconds": round(time.time() - started, 2), "lr": schedule.get_last_lr()[0], **parts},
                          {**{f"loss/{name}": value for name, value in parts.items()}, "lr": schedule.get_last_lr()[0]})
            log.info("step %d  %.0f s  loss %.4f  pixel %.4f  feature %.4f  texture %.4f  objective %.4f", step,
                     time.time() - started, parts["loss"], parts["pixel"], parts["feature"], parts["texture"], parts["objective"])
        if step % cfg.save_every == 0 or step == cfg.iters or out_of_time:
            save()
        if out_of_time:
            log.info("stopped at the %g-minute limit after step %d", cfg.max_minutes, step)
            break
    run_log.close()
    if cfg.install:
        target_dir = Path(cfg.teacher) / STUDENT_DIR
        shutil.copytree(out / STUDENT_DIR, target_dir, dirs_exist_ok=True)
        log.info("installed the student into %s", target_dir)
    return out / STUDENT_DIR


main = entry_point(parse_args, distill, (FileNotFoundError, ValueError, CheckpointError, FloatingPointError), "stylize.distill")


if __name__ == "__main__":
    sys.exit(main())
