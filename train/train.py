"""Train the lambda-conditioned style-transfer GAN.

    python -m train.train --content-dir ../shared/data/content --style-dir ../shared/data/style --out runs/a
    torchrun --nproc_per_node 4 -m train.train ...        # or: accelerate launch -m train.train ...

Run from the checkout's root (`-m` puts it on the path); `stylize` itself is installed (scripts/setup.sh).

One loop, top to bottom: draw a batch (crops, per-example lambdas) -> G forward -> D hinge loss and
G's lambda-weighted objective, both backward -> all-reduce gradients (multi-process) -> optimizer
steps -> log / sample / checkpoint. Every random draw is a pure function of (seed, step, example
position), so a resumed run and a multi-process run see exactly what an unbroken 1-process run sees.
"""
import argparse
import copy
import csv
import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from PIL import Image, ImageDraw
from tqdm import tqdm

from stylize import losses
from stylize.checkpoint import (
    EMBEDDED_DIR, STYLE_MAX_SIDE, VGG_FILE, CheckpointError, atomic_write, load_discriminator, load_model_folder, load_resume_state,
    save_model_folder,
)
from stylize.discriminator import MultiScaleDiscriminator, style_code
from stylize.encoder import TAP_CHANNELS, VGGEncoder
from stylize.generator import Generator, cycle
from stylize.hub import HubError, HubUploader, model_card
from stylize.images import fit_size, paste_grid, read_name_list, to_pil
from stylize.lambda_spec import FIXED_NORMALIZERS, LAMBDA_NAMES, TRAINING_DEFAULTS, TRAINING_RANGES, LambdaSpec
from stylize.devices import bf16_is_emulated, pick_device
from stylize.pipeline import Stylizer
from train.data import Examples, ImageSource, loader, worker_count
from train.runs import EMULATED_AMP_WARNING, EVERY, append_log_row, check_option_ranges, claim_run_folder, start_log

log = logging.getLogger("stylize.train")

STYLE_CODE_DIM = 2 * sum(TAP_CHANNELS)  # per-tap VGG mean and std of the style image
COMPILE_MODES = ("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
# Flags a resumed run must repeat: they shape the models or the λ contract the saved state was trained under.
RESUME_MUST_MATCH = ("d_style_condition", "skip_taps", "init_from", "lambda_ranges")
OPTION_RANGES = {
    "workers": (-1, 64), "cache_mb": (0, EVERY), "size": (32, 4096), "style_size": (0, 4096), "batch_size": (1, 4096),
    "grad_accum": (1, 1024), "iters": (1, EVERY), "max_minutes": (0, EVERY), "lr": (0, 1), "lr_d": (0, 1),
    "seed": (0, 2**63 - 1), "sample_every": (1, EVERY), "save_every": (1, EVERY), "log_every": (1, EVERY),
    "recon_fraction": (0, 1), "normalizer_decay": (0, 1), "max_nonfinite": (1, EVERY),
}
LOG_COLUMNS = ["step", "seconds", "d_loss", "g_loss", *LAMBDA_NAMES, *(f"norm_{n}" for n in LAMBDA_NAMES), "nonfinite",
               "images_per_s"]


@dataclass
class TrainConfig:
    content_dir: str = ""  # folder of photos (searched recursively)
    style_dir: str = ""  # folder of paintings (searched recursively)
    content_dataset: str = ""  # or a `datasets` dataset of photos: Hub id, save_to_disk folder or imagefolder
    style_dataset: str = ""  # or a `datasets` dataset of paintings
    content_split: str = "train"
    style_split: str = "train"
    content_image_column: str = "image"
    style_image_column: str = "image"
    workers: int = -1  # DataLoader worker processes that read and crop (-1: 0 on a CPU device, else up to 8 per process)
    cache_mb: int = 0  # per data process, keep resized images in RAM up to this many MB (0: read every draw)
    report_to: str = ""  # "tensorboard": scalars and sample grids under OUT/tensorboard
    out: str = "runs/stylize"  # output: model/ (inference folder), resume.pt, log.csv, samples/
    size: int = 256  # square crop side of the photos in pixels
    style_size: int = 0  # square crop side of the paintings (0: --size)
    skip_taps: str = "relu1_1,relu2_1,relu3_1"  # taps under relu4_1 that feed the decoder (new models only)
    batch_size: int = 8  # per process, per accumulation step
    grad_accum: int = 1  # micro-batches per optimizer step
    iters: int = 20_000  # optimizer steps in total (a resumed run continues to this)
    max_minutes: float = 0.0  # wall-clock budget; at the first step past it, save and stop (0: none)
    lr: float = 2e-4  # Adam learning rate of the generator
    lr_d: float = 2e-4  # Adam learning rate of the discriminator
    d_style_condition: bool = False  # D judges "a patch of this painting?" instead of "a painting?"
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = False  # bf16 autocast: CUDA, or a CPU with AMX
    compile: str = ""  # torch.compile mode for encoder, decoder and D: default | reduce-overhead | max-autotune ("": eager)
    seed: int = 0
    sample_every: int = 500
    save_every: int = 1000
    log_every: int = 10
    resume: bool = False  # continue from OUT/resume.pt
    overwrite: bool = False  # start a new run in an OUT that holds one
    init_from: str = ""  # start from an inference folder (e.g. weights/) instead of random weights
    holdout: str = ""  # text file of image file names to leave out (the evaluation set)
    recon_fraction: float = 0.2  # share of examples trained at strength 0 to reproduce the content
    normalizer_decay: float = 0.99  # running-average decay of each loss term's scale
    max_nonfinite: int = 5  # consecutive non-finite steps that stop the run
    push_to_hub: str = ""  # Hub repo id to upload the model folder to at each save
    hub_private: bool = False
    lambda_defaults: dict = field(default_factory=lambda: dict(TRAINING_DEFAULTS))
    lambda_ranges: dict = field(default_factory=lambda: {k: list(v) for k, v in TRAINING_RANGES.items()})


HELP = {
    "content_dir": "folder of content photos, searched recursively for jpg/png/webp (or --content-dataset)",
    "style_dir": "folder of style paintings, searched recursively (or --style-dataset)",
    "content_dataset": "photos from a `datasets` dataset instead of a folder: a Hub id (e.g. detection-datasets/coco), a "
                       "folder written by save_to_disk, or an imagefolder directory; memory-mapped, read when drawn",
    "style_dataset": "paintings from a `datasets` dataset (e.g. huggan/wikiart)",
    "content_split": "split of --content-dataset (default %(default)s)",
    "style_split": "split of --style-dataset (default %(default)s)",
    "content_image_column": "image column of --content-dataset (default %(default)s)",
    "style_image_column": "image column of --style-dataset (default %(default)s)",
    "workers": "DataLoader worker processes per training process that read, decode and crop the next batches "
               "(-1: none on a CPU device, where they would compete with the step for the cores; else min(8, cores per "
               "process)); draws are the same for any number",
    "cache_mb": "keep resized images in RAM, per data process, up to this many MB (0: decode at every draw; memory then "
                "does not grow with the corpus)",
    "report_to": "'tensorboard': each loss term, D's score on the stylized images, images/s and the sample grids "
                 "under OUT/tensorboard (pip install tensorboard)",
    "out": "output folder: model/ (what the app loads), resume.pt, log.csv, samples/ (default %(default)s)",
    "size": "square random-crop size of the photos in pixels; larger crops teach larger strokes (default %(default)s)",
    "style_size": "square random-crop size of the paintings (0: --size); at most the corpus' short sides, so that "
                  "small scans (WikiArt's 224 px) are not upscaled (default %(default)s)",
    "skip_taps": "comma-separated VGG taps under relu4_1 whose stylised features also feed the decoder of a new "
                 "model; 'relu3_1' decodes from relu3_1 and deeper, as AdaIN/SANet/AdaAttN do; ignored with "
                 "--init-from (default %(default)s)",
    "batch_size": "examples per process per micro-batch (default %(default)s)",
    "grad_accum": "micro-batches accumulated per optimizer step, for small GPUs (default %(default)s)",
    "iters": "total optimizer steps; --resume continues up to this (default %(default)s)",
    "max_minutes": "wall-clock budget in minutes: past it, save and stop as if --iters were reached (0: none)",
    "lr": "generator Adam learning rate (default %(default)s)",
    "lr_d": "discriminator Adam learning rate (default %(default)s)",
    "d_style_condition": "style-conditional D (projection of the style's VGG statistics, mismatched paintings as "
                         "fakes); an unconditional D from --init-from keeps its trunk",
    "device": "auto | cpu | cuda (default %(default)s)",
    "amp": "bf16 autocast: on CUDA, or on a CPU with AMX (bench/results/train_speed_cpu.md); other CPUs emulate bf16 "
           "slowly; also on when accelerate's mixed_precision is bf16",
    "compile": "torch.compile the encoder, decoder and discriminator with this mode: default, reduce-overhead "
               "(CUDA graphs) or max-autotune; empty = eager (default)",
    "seed": "seed of every random draw (default %(default)s)",
    "sample_every": "steps between sample grids (default %(default)s)",
    "save_every": "steps between checkpoints and Hub uploads (default %(default)s)",
    "log_every": "steps between log lines/CSV rows (default %(default)s)",
    "resume": "continue from OUT/resume.pt (weights, optimizers, step, loss normalizers); the flags that shape the models must match",
    "overwrite": "start a new run in an OUT that already holds one, replacing its log, samples, model and resume state "
                 "(without it, such an OUT is refused)",
    "init_from": "initialize G (and D) from an inference folder such as weights/ (default: random)",
    "holdout": "file listing image file names to exclude from training, one per line",
    "recon_fraction": "share of examples trained at strength 0 to reproduce their content (default %(default)s)",
    "normalizer_decay": "decay of the running average that scales each loss term (default %(default)s; "
                        "--normaliser-decay is its old, deprecated spelling)",
    "max_nonfinite": "consecutive NaN/inf steps (skipped) after which the run stops (default %(default)s)",
    "push_to_hub": "Hugging Face repo id; the model folder is uploaded at each save (token: HF_TOKEN or login)",
    "hub_private": "create the Hub repo as private (default: the Hub's default for your account or organisation)",
}


def parse_args(argv=None) -> TrainConfig:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        if f.name.startswith("lambda_"):
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(flag, action="store_true", help=HELP[f.name])
        else:
            parser.add_argument(flag, type=type(value), default=value, help=HELP[f.name])
    parser.add_argument("--normaliser-decay", type=float, dest="normalizer_decay", help=argparse.SUPPRESS)
    for name in LAMBDA_NAMES:
        lo, hi = TRAINING_RANGES[name]
        parser.add_argument(f"--lambda-{name}", type=float, default=TRAINING_DEFAULTS[name],
                            help=f"default weight of the {name} loss, the slider's initial value (default %(default)s)")
        parser.add_argument(f"--lambda-{name}-range", type=float, nargs=2, metavar=("LO", "HI"), default=[lo, hi],
                            help=f"log-uniform range sampled per example for the {name} weight (default {lo:g} {hi:g})")
    args = vars(parser.parse_args(argv))
    if args["normalizer_decay"] is None:
        args["normalizer_decay"] = defaults.normalizer_decay
    cfg = TrainConfig(**{f.name: args[f.name] for f in fields(TrainConfig) if not f.name.startswith("lambda_")})
    cfg.lambda_defaults = {n: args[f"lambda_{n}"] for n in LAMBDA_NAMES}
    cfg.lambda_ranges = {n: list(args[f"lambda_{n}_range"]) for n in LAMBDA_NAMES}
    try:
        LambdaSpec.for_training(cfg.lambda_defaults, cfg.lambda_ranges)
    except ValueError as err:
        parser.error(f"{err} (--lambda-NAME and --lambda-NAME-range)")
    if cfg.compile not in COMPILE_MODES:
        parser.error(f"--compile {cfg.compile!r}: choose one of {', '.join(m for m in COMPILE_MODES if m)}")
    for kind in ("content", "style"):
        if bool(getattr(cfg, f"{kind}_dir")) == bool(getattr(cfg, f"{kind}_dataset")):
            parser.error(f"give --{kind}-dir or --{kind}-dataset (one of them)")
    if cfg.report_to not in ("", "tensorboard"):
        parser.error(f"--report-to {cfg.report_to!r}: only 'tensorboard' is supported")
    check_option_ranges(parser, cfg, OPTION_RANGES)
    if os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16":
        cfg.amp = True
    return cfg


class TrainingDiverged(RuntimeError):
    pass


def tensorboard_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("--report-to tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


# --- multi-process -------------------------------------------------------------------------
def init_distributed(device: torch.device) -> tuple[int, int]:
    """torchrun / accelerate launch set WORLD_SIZE, RANK, LOCAL_RANK; a plain run is rank 0 of 1."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), world


def all_reduce_mean(tensor: torch.Tensor, world: int) -> torch.Tensor:
    if world > 1:
        dist.all_reduce(tensor)
        tensor /= world
    return tensor


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """One flat all-reduce per model: every process ends the step with identical gradients."""
    if world == 1:
        return
    for p in params:
        if p.grad is None:  # e.g. D on a process whose micro-batch held no fakes
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.flatten() for g in grads])
    all_reduce_mean(flat, world)
    for g, chunk in zip(grads, flat.split([g.numel() for g in grads])):
        g.copy_(chunk.view_as(g))


def check_in_sync(module: torch.nn.Module, world: int, step: int) -> None:
    """Every process must hold the same weights after every step; a checksum comparison costs one all-reduce."""
    if world == 1:
        return
    checksum = torch.stack([p.detach().double().sum() for p in module.parameters()]).sum()
    spread = torch.stack([checksum, -checksum])
    dist.all_reduce(spread, op=dist.ReduceOp.MAX)
    if (spread[0] + spread[1]).abs().item() > 1e-9 * max(1.0, checksum.abs().item()):
        raise RuntimeError(f"step {step}: weights differ between processes (checksum spread {(spread[0] + spread[1]).item():.3g})")


def broadcast_parameters(module: torch.nn.Module, world: int) -> None:
    if world > 1:
        for tensor in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(tensor.data, 0)


# --- data ---------------------------------------------------------------------------------------
def load_sources(cfg: TrainConfig) -> tuple[ImageSource, ImageSource]:
    """The photos and the paintings, listed (folders) or memory-mapped (datasets); nothing is decoded yet."""
    exclude = set(read_name_list(Path(cfg.holdout))) if cfg.holdout else set()
    cache = cfg.cache_mb * 2**20 // 2
    sources = tuple(
        ImageSource.from_dataset(getattr(cfg, f"{kind}_dataset"), getattr(cfg, f"{kind}_split"),
                                 getattr(cfg, f"{kind}_image_column"), cache)
        if getattr(cfg, f"{kind}_dataset") else ImageSource.from_folder(Path(getattr(cfg, f"{kind}_dir")), exclude, cache)
        for kind in ("content", "style"))
    log.info("data: %d content, %d style images (read when drawn; %d names held out)", len(sources[0]), len(sources[1]), len(exclude))
    return sources


# --- models and checkpoints ---------------------------------------------------------------------
def build_models(cfg: TrainConfig, spec: LambdaSpec | None = None) -> tuple[Generator, MultiScaleDiscriminator, dict, list]:
    """Fresh (seeded) models, or those of --init-from with the loss normalizers and training stages they came with.
    --d-style-condition gives an unconditional D zero-initialized projections: it starts as the same critic."""
    spec = spec or LambdaSpec.for_training(cfg.lambda_defaults, cfg.lambda_ranges)
    if cfg.init_from:
        G, init_config = load_model_folder(Path(cfg.init_from))
        D = load_discriminator(Path(cfg.init_from), init_config) or MultiScaleDiscriminator()
        normalizers = LambdaSpec.from_config(init_config["lambdas"]).normalizers
        stages = list(init_config.get("training", {}).get("stages", []))
        log.info("initialized from %s (step %s)", cfg.init_from, init_config.get("training", {}).get("step"))
    else:
        skip_taps = tuple(t for t in cfg.skip_taps.split(",") if t)
        G = Generator(VGGEncoder.from_file(EMBEDDED_DIR / VGG_FILE), skip_taps=skip_taps, lambda_ranges=spec.ranges)
        D, normalizers, stages = MultiScaleDiscriminator(), {}, []
    if cfg.d_style_condition and not D.conditional:
        D = D.with_style_condition(STYLE_CODE_DIM)
    return G, D, normalizers, stages


def new_stage(cfg: TrainConfig, step: int, world: int, device: torch.device, sources) -> dict:
    """What this run records about itself in config.json's training.stages (names, counts and hashes only: config.json
    and the model card are published, a machine's paths are not)."""
    return {
        "from_step": step, "steps": 0, "minutes": 0.0, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else device.type, "processes": world,
        "size": cfg.size, "style_size": cfg.style_size or cfg.size, "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum,
        "lr": cfg.lr, "lr_d": cfg.lr_d, "recon_fraction": cfg.recon_fraction, "d_style_condition": cfg.d_style_condition,
        "amp": cfg.amp, "compile": cfg.compile, "initialized_from": Path(cfg.init_from).name if cfg.init_from else None,
        "data": {"content": sources[0].description(), "style": sources[1].description()},
    }


def model_config(spec: LambdaSpec, step: int, stages: list[dict]) -> dict:
    return {"format": "stylize", "lambdas": spec.to_config(), "style_max_side": STYLE_MAX_SIDE,
            "training": {"step": step, "stages": stages}}


def save_checkpoint(out: Path, cfg: TrainConfig, config: dict, G: Generator, D, opt_g, opt_d, uploader) -> None:
    """The inference folder (out/model, what the app and the Hub get) and the resume state (out/resume.pt)."""
    model_dir = out / "model"
    save_model_folder(model_dir, G, D, config)
    if (out / "log.csv").exists():
        curve = loss_curve(out / "log.csv")
        atomic_write(model_dir / "loss_curve.png", lambda tmp: curve.save(tmp, format="PNG"))
    card = model_card(config, cfg.push_to_hub or "stylize-model",
                      *(name if (model_dir / name).exists() else None for name in ("samples.png", "loss_curve.png")))
    atomic_write(model_dir / "README.md", lambda tmp: tmp.write_text(card))
    state = {
        "generator": {k: v.float() for k, v in G.trainable_state_dict().items()},
        "discriminator": D.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(),
        "step": config["training"]["step"], "normalizers": config["lambdas"]["normalizers"],
        "stage": config["training"]["stages"][-1], "train_config": asdict(cfg), "generator_config": G.config,
    }
    atomic_write(out / "resume.pt", lambda tmp: torch.save(state, tmp))
    if uploader is not None:
        uploader.push(model_dir, config["training"]["step"])


def load_checkpoint(path: Path, cfg: TrainConfig, G: Generator, D, opt_g, opt_d, device) -> tuple[int, dict, dict]:
    """save_checkpoint's resume state back into the models and optimizers -> (step, normalizers, stage in progress).
    The flags that shape the models must be the ones the run started with; a mismatch is one line naming them."""
    state = load_resume_state(path, device, ("generator", "discriminator", "opt_g", "opt_d", "step", "train_config"))
    saved = state["train_config"]
    for name in RESUME_MUST_MATCH:
        if name in saved and saved[name] != asdict(cfg)[name]:
            flag = "--" + name.replace("_", "-")
            if name == "d_style_condition":
                raise ValueError(f"--resume: {path} holds a {'' if saved[name] else 'non-'}style-conditional critic; resume "
                                 f"with the flags the run started with ({'add' if saved[name] else 'drop'} {flag})")
            raise ValueError(f"--resume: {path} was trained with {flag} {saved[name]}, not {asdict(cfg)[name]}; "
                             "resume with the flags the run started with")
    G.load_trainable_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    normalizers = dict(state.get("normalizers", state.get("normalisers", {})))  # "normalisers": written before issue 21
    log.info("resumed from %s at step %d", path, state["step"])
    return state["step"], normalizers, state.get("stage")


def lambda_sweep_grid(stylizer: Stylizer, contents: list[Image.Image], styles: list[Image.Image], tile: int = 192) -> Image.Image:
    """Rows: each (content, style) pair. Columns: content | style | default lambdas | low and high of each lambda."""
    settings = [{}] + [{name: stylizer.lambda_ranges[name][i]} for name in LAMBDA_NAMES for i in (0, 1)]
    rows = []
    for content in contents:
        for style in styles:
            content_tile = fit_size(content, tile)
            cells = [content_tile, fit_size(style, tile)]
            content_enc, style_enc = stylizer.encode_content(content_tile), stylizer.encode_style(style)
            for overrides in settings:
                cells.append(to_pil(stylizer.stylize_tensor(content_enc, style_enc, stylizer.resolve_lambdas(overrides))))
            rows.append(cells)
    return paste_grid(rows, (max(c.width for row in rows for c in row), max(c.height for row in rows for c in row)))


def write_samples(out: Path, step: int, G: Generator, config: dict, sources: tuple[ImageSource, ImageSource], size: int):
    """The sample grid, through the inference pipeline on a copy of G (training state untouched)."""
    stylizer = Stylizer(copy.deepcopy(G).float(), config, device=next(G.parameters()).device, dtype=torch.float32)
    contents, styles = ([to_pil(source.image(i, size).float() / 255) for i in (0, len(source) // 2)] for source in sources)
    grid = lambda_sweep_grid(stylizer, contents, styles, tile=min(size, 192))
    path = out / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))
    atomic_write(out / "model" / "samples.png", lambda tmp: grid.save(tmp, format="PNG"))
    return grid


def loss_curve(csv_path: Path, width: int = 720, height: int = 300) -> Image.Image:
    """log.csv's G and D losses against the step, for the model card (drawn with PIL: no plotting dependency)."""
    with csv_path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["step"].isdigit()]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 50, width - 10, 20, height - 30
    draw.rectangle([left, top, right, bottom], outline="#999999")
    series = {name: [(int(r["step"]), float(r[name])) for r in rows if math.isfinite(float(r[name]))] for name in ("g_loss", "d_loss")}
    points = [p for values in series.values() for p in values]
    if len(points) >= 2:
        (x0, x1), (y0, y1) = ((min(v), max(v)) for v in zip(*points))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1e-6)
        for (name, values), colour in zip(series.items(), ("#d62728", "#1f77b4")):
            xy = [(left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)) for x, y in values]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
        draw.text((left, bottom + 8), f"step {x0} .. {x1}", fill="black")
        draw.text((left + 4, 4), f"loss {y0:.3g} .. {y1:.3g}", fill="black")
    draw.text((right - 150, 4), "G loss", fill="#d62728")
    draw.text((right - 80, 4), "D loss", fill="#1f77b4")
    return image


# --- one optimizer step's gradients -------------------------------------------------------------
def discriminator_loss(discriminate, D, style, stylized, code, strength) -> torch.Tensor:
    """Paintings are real, stylized outputs fake. Reconstruction examples are weighted out rather than indexed out, so
    every step has the same shapes (no host sync, compiled graphs are reused). Paintings and outputs may differ in
    crop size (--style-size): one D call for each."""
    if D.conditional:  # matching-aware: a painting under another painting's code is a fake too
        paintings = discriminate(torch.cat([style, style]), torch.cat([code, code.roll(1, 0)]))
        real_logits = [l[: len(style)] for l in paintings]
        fake_groups = [discriminate(stylized.detach(), code), [l[len(style):] for l in paintings]]
        fake_weight = torch.cat([strength, torch.full_like(strength, float(len(style) > 1))])
    else:
        real_logits, fake_groups = discriminate(style), [discriminate(stylized.detach())]
        fake_weight = strength
    return losses.discriminator_hinge_loss(real_logits, *fake_groups, fake_weight=fake_weight)


def accumulate_gradients(batch, G, D, decode, discriminate, normalizers: dict, cfg: TrainConfig, autocast, world: int):
    """D's and G's losses on one micro-batch, both backward (scaled for accumulation) -> (d_loss, g_loss, the five
    terms' batch means, the normalizers: measured on the first step of a new run, else as given)."""
    content, style, lambdas, recon = batch
    strength = (~recon).float()
    with autocast:
        with torch.no_grad():  # the encoder is frozen and the images are data
            content_enc = G.encode_content(content)
            style_feats = G.encoder(style)
            style_grams = losses.style_grams(style_feats)
            style_enc = G.style_encoding_from_feats(style_feats)
            code = style_code(style_enc.stats) if D.conditional else None
        stylized = decode(content_enc, style_enc, lambdas, strength)
        d_loss = discriminator_loss(discriminate, D, style, stylized, code, strength)
    # D's backward runs before D is frozen: autograd drops gradients of leaves that no longer require them.
    (d_loss / cfg.grad_accum).backward()

    D.requires_grad_(False)  # G's adversarial term must not train D
    with autocast:
        stylized_enc = G.encode_content(stylized)
        terms = losses.generator_terms(stylized, stylized_enc.feats, content_enc.feats, style_grams, content=content,
                                       cycled=cycle(decode, stylized_enc, content_enc, lambdas),
                                       fake_logits=discriminate(stylized, code))
    batch_means = torch.stack([terms[n].detach().float().mean() for n in LAMBDA_NAMES])
    if not normalizers:  # first step: start the running averages at the first measurement
        first = all_reduce_mean(batch_means.abs().clone(), world)
        normalizers = {n: FIXED_NORMALIZERS.get(n, max(v, 1e-8)) for n, v in zip(LAMBDA_NAMES, first.tolist())}
    objective = losses.weighted_objective(terms, lambdas, normalizers)
    reconstruction = losses.cycle_loss(stylized, content) + terms["content"] / normalizers["content"]
    g_loss = torch.where(recon, reconstruction, objective).mean()
    (g_loss / cfg.grad_accum).backward()
    D.requires_grad_(True)
    return d_loss.detach(), g_loss.detach(), batch_means, normalizers


def write_log_row(csv_path: Path, progress, row: dict, board) -> None:
    append_log_row(csv_path, LOG_COLUMNS, row)
    progress.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", style=f"{row['style']:.3g}", content=f"{row['content']:.3g}")
    if board is not None:
        for name in ("d_loss", "g_loss", *LAMBDA_NAMES):
            board.add_scalar(f"loss/{name}", row[name], row["step"])
        board.add_scalar("discriminator/score_on_stylized", -row["adv"], row["step"])  # the adversarial term is -D(G(c, s))
        board.add_scalar("speed/images_per_s", row["images_per_s"], row["step"])
    if progress.disable:  # not a terminal: plain log lines instead of the bar
        log.info("step %d  %.1f s  d %.3f  g %.3f  " + "  ".join(f"{n} %.4g" for n in LAMBDA_NAMES),
                 row["step"], row["seconds"], row["d_loss"], row["g_loss"], *(row[n] for n in LAMBDA_NAMES))


# --- the loop -------------------------------------------------------------------------------------
def train(cfg: TrainConfig) -> Path:
    device = pick_device(cfg.device)
    rank, world = init_distributed(device)
    main_process = rank == 0
    logging.basicConfig(level=logging.INFO if main_process else logging.ERROR, format="%(message)s")
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if cfg.amp and bf16_is_emulated(device) and main_process:
        log.warning(EMULATED_AMP_WARNING)
    # before any work: without network or a token, --push-to-hub fails here in one line
    uploader = HubUploader(cfg.push_to_hub, private=True if cfg.hub_private else None,
                           token=os.environ.get("HF_TOKEN")) if cfg.push_to_hub and main_process else None
    out = Path(cfg.out)
    claim_run_folder(out, cfg.resume, cfg.overwrite, "resume.pt")  # every process, before rank 0 writes anything
    torch.manual_seed(cfg.seed)

    spec = LambdaSpec.for_training(cfg.lambda_defaults, cfg.lambda_ranges)
    sources = load_sources(cfg)
    G, D, normalizers, stages = build_models(cfg, spec)
    G.to(device).train()
    D.to(device).train()
    if device.type == "cuda":
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)
    g_params = [p for p in G.parameters() if p.requires_grad]
    d_params = list(D.parameters())
    fused = device.type == "cuda"  # one kernel per optimizer step instead of several per parameter
    opt_g = torch.optim.Adam(g_params, lr=cfg.lr, betas=(0.5, 0.999), fused=fused)
    opt_d = torch.optim.Adam(d_params, lr=cfg.lr_d, betas=(0.5, 0.999), fused=fused)

    step, stage = 0, None
    if cfg.resume:
        step, normalizers, stage = load_checkpoint(out / "resume.pt", cfg, G, D, opt_g, opt_d, device)
    stage = stage or new_stage(cfg, step, world, device, sources)
    broadcast_parameters(G, world)
    broadcast_parameters(D, world)

    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if cfg.amp else nullcontext()
    log.info("effective batch %d = %d per process x %d processes x %d accumulation; lr %g; device %s%s",
             cfg.batch_size * world * cfg.grad_accum, cfg.batch_size, world, cfg.grad_accum, cfg.lr, device, " bf16" if cfg.amp else "")
    # Compiled callables wrap the same modules: weights, checkpoints and samples are unchanged.
    decode, discriminate = G.decode, D
    if cfg.compile:
        G.encoder.compile(mode=cfg.compile)
        decode = torch.compile(G.decode, mode=cfg.compile)
        discriminate = torch.compile(D, mode=cfg.compile)

    csv_path = out / "log.csv"
    if main_process:
        start_log(csv_path, LOG_COLUMNS, step if cfg.resume else None)
    progress = tqdm(total=cfg.iters, initial=step, desc="train", dynamic_ncols=True, disable=None) if main_process else None
    board = tensorboard_writer(out) if cfg.report_to == "tensorboard" and main_process else None
    nonfinite_total = nonfinite_run = 0
    examples = Examples(sources, cfg.batch_size, (cfg.size, cfg.style_size or cfg.size), cfg.seed,
                        lambda uniform: (spec.sample(uniform), uniform() < cfg.recon_fraction), rank, world)
    batches = loader(examples, step * cfg.grad_accum, worker_count(cfg.workers, device, world), pin_memory=device.type == "cuda")
    started, minutes_before, logged = time.time(), stage["minutes"], (time.time(), step)
    step_batches = None  # a step skipped by the NaN guard runs again on the same batches

    while step < cfg.iters:
        step_batches = step_batches or [next(batches) for _ in range(cfg.grad_accum)]
        term_sums = torch.zeros(len(LAMBDA_NAMES), device=device)
        d_total = g_total = torch.zeros((), device=device)
        for micro in range(cfg.grad_accum):
            if cfg.compile:  # CUDA graphs (reduce-overhead) may reuse their output memory from here on
                torch.compiler.cudagraph_mark_step_begin()
            batch = [t.to(device, non_blocking=True) for t in step_batches[micro]]
            if device.type == "cuda":
                batch[:2] = [t.contiguous(memory_format=torch.channels_last) for t in batch[:2]]
            d_loss, g_loss, batch_means, normalizers = accumulate_gradients(
                batch, G, D, decode, discriminate, normalizers, cfg, autocast, world)
            term_sums += batch_means
            d_total = d_total + d_loss / cfg.grad_accum
            g_total = g_total + g_loss / cfg.grad_accum

        # The step's one wait for the device: losses, terms and the time flag come back in a single transfer.
        # A non-finite value on any process makes the mean non-finite, so every process skips together.
        time_flag = torch.tensor([float(bool(cfg.max_minutes) and time.time() - started > cfg.max_minutes * 60)])
        stats = torch.cat([torch.stack([d_total, g_total]).float(), term_sums / cfg.grad_accum, time_flag.to(device)])
        d_value, g_value, *term_means, out_of_time = all_reduce_mean(stats, world).tolist()
        if not all(math.isfinite(v) for v in (d_value, g_value, *term_means)):
            opt_g.zero_grad(set_to_none=True)
            opt_d.zero_grad(set_to_none=True)
            nonfinite_total += 1
            nonfinite_run += 1
            log.warning("step %d: non-finite loss, step skipped (%d in a row, %d total)", step, nonfinite_run, nonfinite_total)
            if nonfinite_run >= cfg.max_nonfinite:
                raise TrainingDiverged(f"{nonfinite_run} consecutive non-finite steps at step {step}: stopping; "
                                       f"the last good checkpoint in {out} is kept")
            continue
        nonfinite_run, step_batches = 0, None
        for model, params, optimizer in ((G, g_params, opt_g), (D, d_params, opt_d)):
            average_gradients(params, world)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            check_in_sync(model, world, step)
        for name, value in zip(LAMBDA_NAMES, term_means):
            if name not in FIXED_NORMALIZERS:
                normalizers[name] = cfg.normalizer_decay * normalizers[name] + (1 - cfg.normalizer_decay) * abs(value)
        step += 1
        stopping = out_of_time > 0 and step < cfg.iters  # every process sees the same mean, so all stop together
        if stopping:
            log.info("time budget of %g min reached at step %d", cfg.max_minutes, step)
        last = stopping or step == cfg.iters

        if main_process:
            seconds = time.time() - started
            if step % cfg.log_every == 0 or last:
                rate = (step - logged[1]) * cfg.batch_size * cfg.grad_accum * world / max(time.time() - logged[0], 1e-9)
                logged = (time.time(), step)
                write_log_row(csv_path, progress, {
                    "step": step, "seconds": round(seconds, 2), "d_loss": d_value, "g_loss": g_value,
                    **dict(zip(LAMBDA_NAMES, term_means)), **{f"norm_{n}": normalizers[n] for n in LAMBDA_NAMES},
                    "nonfinite": nonfinite_total, "images_per_s": rate}, board)
            progress.update(1)
            stage.update(steps=step - stage["from_step"], minutes=round(minutes_before + seconds / 60, 2))
            config = model_config(spec.with_normalizers(normalizers), step, [*stages, stage])
            if step % cfg.sample_every == 0 or last:
                grid = write_samples(out, step, G, config, sources, cfg.size)
                if board is not None:
                    board.add_image("samples", torch.from_numpy(np.array(grid)).permute(2, 0, 1), step)
            if step % cfg.save_every == 0 or last:
                save_checkpoint(out, cfg, config, G, D, opt_g, opt_d, uploader)
        if stopping:
            break

    del batches  # stops the data workers
    if main_process:
        progress.close()
        if board is not None:
            board.close()
        log.info("done: %d steps in %.1f s (%d non-finite skipped); model in %s", step, time.time() - started, nonfinite_total, out / "model")
        failed = uploader.wait() if uploader is not None else []
        if failed:
            log.error("%d Hub upload(s) failed (each reported when it failed); the model is in %s", len(failed), out / "model")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out / "model"


def main(argv=None) -> int:
    cfg = parse_args(argv)
    try:
        train(cfg)
    except (TrainingDiverged, FileNotFoundError, ValueError, CheckpointError, HubError) as err:
        logging.getLogger("stylize.train").error("error: %s", err)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
