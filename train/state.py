"""A training run's state: its data sources, its models (fresh or --init-from), and the checkpoint that holds them:
an inference folder (OUT/model, what the app and the Hub get) plus a resume state (OUT/resume.pt), and back."""
from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import torch

from stylize.checkpoint import (
    EMBEDDED_DIR, STYLE_MAX_SIDE, VGG_FILE, atomic_write, load_discriminator, load_model_folder, load_resume_state,
    save_model_folder,
)
from stylize.discriminator import MultiScaleDiscriminator
from stylize.encoder import TAP_CHANNELS, VGGEncoder
from stylize.generator import Generator
from stylize.hub import model_card
from stylize.lambda_spec import LambdaSpec
from train.reporting import loss_curve
from train.runs import check_resume_flags

log = logging.getLogger("stylize.train")

STYLE_CODE_DIM = 2 * sum(TAP_CHANNELS)  # per-tap VGG mean and std of the style image
# Flags a resumed run must repeat: they shape the models, the λ contract or the stream of examples the state was trained on.
RESUME_MUST_MATCH = ("d_style_condition", "skip_taps", "init_from", "lambda_ranges", "streaming", "shuffle_buffer")


def build_models(cfg, spec: LambdaSpec | None = None) -> tuple[Generator, MultiScaleDiscriminator, dict, list]:
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


def new_stage(cfg, step: int, world: int, device: torch.device, sources) -> dict:
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


def save_checkpoint(out: Path, cfg, config: dict, G: Generator, D, opt_g, opt_d, uploader) -> None:
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


def load_checkpoint(path: Path, cfg, G: Generator, D, opt_g, opt_d, device) -> tuple[int, dict, dict]:
    """save_checkpoint's resume state back into the models and optimizers -> (step, normalizers, stage in progress).
    The flags that shape the models must be the ones the run started with; a mismatch is one line naming them."""
    state = load_resume_state(path, device, ("generator", "discriminator", "opt_g", "opt_d", "step", "train_config"))
    saved = state["train_config"]
    check_resume_flags(path, saved, cfg, RESUME_MUST_MATCH)
    G.load_trainable_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    opt_g.load_state_dict(state["opt_g"])
    opt_d.load_state_dict(state["opt_d"])
    normalizers = dict(state.get("normalizers", state.get("normalisers", {})))  # "normalisers": written before issue 21
    log.info("resumed from %s at step %d", path, state["step"])
    return state["step"], normalizers, state.get("stage")
