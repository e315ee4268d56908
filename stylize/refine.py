"""Refine: optimise a picture on exactly the λ-weighted objective the generator was trained with (content, Gram style,
total variation, the cycle through the generator, the critic), starting from the one-pass picture.

It works at a working resolution and carries the change up: L-BFGS moves a REFINE_SIDE px copy of the picture, and the
difference it makes is enlarged onto the one-pass picture at its own size. A step then costs the same at 512 or 2048
px, the strokes it paints are laid at a scale that stays visible in the output, and the one-pass picture's fine detail
stays. Measured choices (side, optimiser, schedule): bench/refine.py and docs/quality.md.
"""
from collections.abc import Iterator
from time import perf_counter

import torch

from . import losses
from .discriminator import MultiScaleDiscriminator, style_code
from .functional import resized
from .generator import Generator, StyleMix, cycle, mixed_stats
from .lambda_spec import LambdaSpec

REFINE_SIDE = 320  # the working resolution's long side
HISTORY = 10  # L-BFGS curvature pairs: at 320 px each holds two 1.2 MB vectors
FIRST_STEP = 0.1  # the first step's largest change of a pixel (0-1)


def working_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """(h, w) scaled so that the long side is at most `side`."""
    scale = min(1.0, side / max(size))
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


class Objective:
    """sum_k λ_k L_k / n_k / sum_k λ_k of a picture of `content` as a painting of the styles (Gram matrices and statistics
    mixed by `weights`), as training weighs it; the adversarial term only where a critic is given."""

    def __init__(self, generator: Generator, critic: MultiScaleDiscriminator | None, content: torch.Tensor,
                 styles: list[torch.Tensor], weights: list[float], lambdas: torch.Tensor, lambda_spec: LambdaSpec):
        self.generator, self.critic, self.content, self.lambdas = generator, critic, content, lambdas
        self.normalizers = lambda_spec.normalizers
        with torch.no_grad():
            self.content_enc = generator.encode_content(content)
            style_feats = [generator.encoder(style) for style in styles]
            self.style_grams = [sum(w * g for w, g in zip(weights, grams))
                                for grams in zip(*map(losses.style_grams, style_feats))]
            encodings = [Generator.style_encoding_from_feats(feats) for feats in style_feats]
            mix = StyleMix(encodings, weights)
            stats = [mixed_stats(mix, tap, None) for tap in range(4)]
            self.style_code = style_code(stats) if critic is not None and critic.conditional else None

    def terms(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image_enc = self.generator.encode_content(image)
        return losses.generator_terms(
            image, image_enc.feats, self.content_enc.feats, self.style_grams, content=self.content,
            cycled=cycle(self.generator.decode, image_enc, self.content_enc, self.lambdas),
            fake_logits=self.critic(image, self.style_code) if self.critic is not None else None)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return losses.weighted_objective(self.terms(image), self.lambdas, self.normalizers).sum()


def lbfgs_iterations(objective, image: torch.Tensor) -> Iterator[torch.Tensor]:
    """The start once its gradient is known, then the image after each L-BFGS iteration (strong-Wolfe line search:
    without it these feature scales diverge), until one no longer moves it; the caller stops sooner. Each iteration is one optimizer.step, which begins by evaluating the point where the last
    line search ended; that evaluation is kept instead of repeated (half of each step's cost otherwise)."""
    image = image.detach().clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], lr=1, max_iter=1, history_size=HISTORY, line_search_fn="strong_wolfe",
                                  tolerance_grad=0, tolerance_change=0)
    evaluated: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (point, loss, gradient), the last few

    def closure():
        point = image.detach()
        for seen, loss, grad in evaluated:
            if torch.equal(seen, point):
                image.grad = grad.clone()
                return loss
        with torch.enable_grad():
            loss = objective(image)
            # the image's gradient only: the generator's and critic's weights collect none
            (grad,) = torch.autograd.grad(loss, image)
        image.grad = grad
        evaluated[:] = [*evaluated[-3:], (point.clone(), loss.detach(), grad.clone())]
        return loss.detach()

    # L-BFGS's first step is the gradient scaled to 1 / |g|_1, on 300 k pixels a tiny one that its line search then
    # spends several evaluations growing; this lr makes it move the most-changed pixel by FIRST_STEP instead
    closure()
    optimizer.param_groups[0]["lr"] = FIRST_STEP * (image.grad.abs().sum() / image.grad.abs().max().clamp_min(1e-12)).item()
    yield image.detach()
    while True:
        before = image.detach().clone()
        optimizer.step(closure)
        optimizer.param_groups[0]["lr"] = 1  # later steps start from L-BFGS's own scaled Newton step
        if torch.equal(before, image.detach()):
            return  # converged, or no direction left that lowers the objective: more steps would not move it
        yield image.detach()


def refine(generator: Generator, critic: MultiScaleDiscriminator | None, start: torch.Tensor, content: torch.Tensor,
           styles: list[torch.Tensor], weights: list[float], lambdas: torch.Tensor, lambda_spec: LambdaSpec, *,
           steps: int | None = None, seconds: float | None = None, seed: int | None = None,
           side: int = REFINE_SIDE) -> Iterator[torch.Tensor]:
    """Yields the picture at `start`'s size after each L-BFGS iteration at `side` px, until `steps` iterations are done
    or the next would end after `seconds` (counted from the call, its encodings included), or a step no longer moves it.

    start: the one-pass picture (1, 3, H, W); content: the photo at that size; styles: the paintings, fitted already."""
    started = perf_counter()
    size = working_size(start.shape[-2:], side)
    small_start = resized(start.float(), size)
    # the paintings at the working side too, so that their strokes keep their size relative to the picture's
    styles = [resized(style, working_size(style.shape[-2:], side)) for style in styles]
    objective = Objective(generator, critic, resized(content, size), styles, weights, lambdas, lambda_spec)
    gen = torch.Generator(device="cpu").manual_seed(0 if seed is None else seed)
    # a little noise lets the optimizer leave the generator's exact output (and a seed gives another variation)
    noise = torch.randn(small_start.shape, generator=gen).to(small_start.device) * 0.01
    iterations = lbfgs_iterations(objective, small_start + noise)
    next(iterations)  # the start's gradient: set-up, so that the first step's time predicts the next ones'
    done, last_finished = 0, perf_counter()
    for small in iterations:
        done += 1
        yield (start.float() + resized(small - small_start, start.shape[-2:])).clamp(0, 1)
        now = perf_counter()
        per_step, last_finished = now - last_finished, now
        if (steps is not None and done >= steps) or (seconds is not None and now - started + per_step > seconds):
            return
