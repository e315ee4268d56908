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
import logging
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from stylize import losses
from stylize.checkpoint import CheckpointError
from stylize.discriminator import style_code
from stylize.generator import cycle
from stylize.hub import HubError, HubUploader
from stylize.lambda_spec import FIXED_NORMALIZERS, LAMBDA_NAMES, TRAINING_DEFAULTS, TRAINING_RANGES, LambdaSpec
from stylize.devices import bf16_is_emulated, pick_device
from train.data import DataOptions, Examples, check_data_options, load_sources, loader, worker_count
from train.distributed import all_reduce_mean, average_gradients, broadcast_parameters, check_in_sync, init_distributed
from train.reporting import LOG_COLUMNS, write_log_row, write_samples
from train.state import build_models, load_checkpoint, model_config, new_stage, save_checkpoint
from train.runs import (
    EMULATED_AMP_WARNING, EVERY, ReportOptions, RunLog, check_option_ranges, claim_run_folder, entry_point, option,
    options_parser,
)

log = logging.getLogger("stylize.train")

@dataclass
class TrainConfig(DataOptions, ReportOptions):
    out: str = option("runs/stylize", "output folder: model/ (what the app loads), resume.pt, log.csv, samples/ "
                                      "(default %(default)s)")
    size: int = option(256, "square random-crop size of the photos in pixels; larger crops teach larger strokes "
                            "(default %(default)s)", 32, 4096)
    style_size: int = option(0, "square random-crop size of the paintings (0: --size); at most the corpus' short "
                                "sides, so that small scans (WikiArt's 224 px) are not upscaled (default "
                                "%(default)s)", 0, 4096)
    skip_taps: str = option("relu1_1,relu2_1,relu3_1", "comma-separated VGG taps under relu4_1 whose stylised "
                                                       "features also feed the decoder of a new model; 'relu3_1' "
                                                       "decodes from relu3_1 and deeper, as AdaIN/SANet/AdaAttN do; "
                                                       "ignored with --init-from (default %(default)s)")
    batch_size: int = option(8, "examples per process per micro-batch (default %(default)s)", 1, 4096)
    grad_accum: int = option(1, "micro-batches accumulated per optimizer step, for small GPUs (default %(default)s)", 1, 1024)
    iters: int = option(20_000, "total optimizer steps; --resume continues up to this (default %(default)s)", 1, EVERY)
    max_minutes: float = option(0.0, "wall-clock budget in minutes: past it, save and stop as if --iters were "
                                     "reached (0: none)", 0, EVERY)
    lr: float = option(0.0002, "generator Adam learning rate (default %(default)s)", 0, 1)
    lr_d: float = option(0.0002, "discriminator Adam learning rate (default %(default)s)", 0, 1)
    d_style_condition: bool = option(False, "style-conditional D (projection of the style's VGG statistics, "
                                            "mismatched paintings as fakes); an unconditional D from --init-from "
                                            "keeps its trunk")
    device: str = option("auto", "auto | cpu | cuda (default %(default)s)")
    amp: bool = option(False, "bf16 autocast: on CUDA, or on a CPU with AMX (bench/results/train_speed_cpu.md); "
                              "other CPUs emulate bf16 slowly; also on when accelerate's mixed_precision is bf16")
    compile: str = option("", "torch.compile the encoder, decoder and discriminator with this mode: default, "
                              "reduce-overhead (CUDA graphs) or max-autotune; empty = eager (default)",
                          choices=("", "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"))
    seed: int = option(0, "seed of every random draw (default %(default)s)", 0, 2**63 - 1)
    sample_every: int = option(500, "steps between sample grids (default %(default)s)", 1, EVERY)
    save_every: int = option(1000, "steps between checkpoints and Hub uploads (default %(default)s)", 1, EVERY)
    log_every: int = option(10, "steps between log lines/CSV rows (default %(default)s)", 1, EVERY)
    resume: bool = option(False, "continue from OUT/resume.pt (weights, optimizers, step, loss normalizers); the "
                                 "flags that shape the models must match")
    overwrite: bool = option(False, "start a new run in an OUT that already holds one, replacing its log, samples, "
                                    "model and resume state (without it, such an OUT is refused)")
    init_from: str = option("", "initialize G (and D) from an inference folder such as weights/ (default: random)")
    recon_fraction: float = option(0.2, "share of examples trained at strength 0 to reproduce their content (default"
                                        " %(default)s)", 0, 1)
    normalizer_decay: float = option(0.99, "decay of the running average that scales each loss term (default "
                                           "%(default)s; --normaliser-decay is its old, deprecated spelling)", 0, 1)
    max_nonfinite: int = option(5, "consecutive NaN/inf steps (skipped) after which the run stops (default "
                                   "%(default)s)", 1, EVERY)
    push_to_hub: str = option("", "Hugging Face repo id; the model folder is uploaded at each save (token: HF_TOKEN "
                                  "or login)")
    hub_private: bool = option(False, "create the Hub repo as private (default: the Hub's default for your account "
                                      "or organisation)")
    lambda_defaults: dict = field(default_factory=lambda: dict(TRAINING_DEFAULTS))
    lambda_ranges: dict = field(default_factory=lambda: {k: list(v) for k, v in TRAINING_RANGES.items()})


def parse_args(argv=None) -> TrainConfig:
    parser = options_parser(TrainConfig, __doc__)
    defaults = TrainConfig()
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
    check_data_options(parser, cfg)
    check_option_ranges(parser, cfg)
    if os.environ.get("ACCELERATE_MIXED_PRECISION") == "bf16":
        cfg.amp = True
    return cfg


class TrainingDiverged(RuntimeError):
    pass


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
    sources = load_sources(cfg, cfg.seed, rank, world)
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

    run_log = RunLog(out, LOG_COLUMNS, step if cfg.resume else None, cfg.report_to) if main_process else None
    progress = tqdm(total=cfg.iters, initial=step, desc="train", dynamic_ncols=True, disable=None) if main_process else None
    nonfinite_total = nonfinite_run = 0
    examples = Examples(sources, cfg.batch_size, (cfg.size, cfg.style_size or cfg.size), cfg.seed,
                        lambda uniform: (spec.sample(uniform), uniform() < cfg.recon_fraction), rank, world)
    batches = loader(examples, step * cfg.grad_accum, worker_count(cfg.workers, device, world, any(s.streamed for s in sources)), pin_memory=device.type == "cuda")
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
                write_log_row(run_log, progress, {
                    "step": step, "seconds": round(seconds, 2), "d_loss": d_value, "g_loss": g_value,
                    **dict(zip(LAMBDA_NAMES, term_means)), **{f"norm_{n}": normalizers[n] for n in LAMBDA_NAMES},
                    "nonfinite": nonfinite_total, "images_per_s": rate})
            progress.update(1)
            stage.update(steps=step - stage["from_step"], minutes=round(minutes_before + seconds / 60, 2))
            config = model_config(spec.with_normalizers(normalizers), step, [*stages, stage])
            if step % cfg.sample_every == 0 or last:
                run_log.image("samples", write_samples(out, step, G, config, sources, cfg.size), step)
            if step % cfg.save_every == 0 or last:
                save_checkpoint(out, cfg, config, G, D, opt_g, opt_d, uploader)
        if stopping:
            break

    del batches  # stops the data workers
    if main_process:
        progress.close()
        run_log.close()
        log.info("done: %d steps in %.1f s (%d non-finite skipped); model in %s", step, time.time() - started, nonfinite_total, out / "model")
        failed = uploader.wait() if uploader is not None else []
        if failed:
            log.error("%d Hub upload(s) failed (each reported when it failed); the model is in %s", len(failed), out / "model")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return out / "model"


main = entry_point(parse_args, train, (TrainingDiverged, FileNotFoundError, ValueError, CheckpointError, HubError), "stylize.train")


if __name__ == "__main__":
    sys.exit(main())
