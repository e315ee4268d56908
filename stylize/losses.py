"""The five objectives, each per example (B,), so every example can carry its own lambdas.

Adversarial loss: hinge. With a spectrally normalised D it is the SAGAN/BigGAN/CAST choice:
D stops pushing on patches it already classifies with margin, which keeps its gradients to G
bounded and the alternating game stable at the small batch sizes CPU training allows.
"""
import torch
import torch.nn.functional as F

from .encoder import VggFeatures
from .functional import gram, per_example_mse
from .lambda_spec import LAMBDA_NAMES

CONTENT_TAPS = ("relu3_1", "relu4_1")


def content_loss(stylized_feats: VggFeatures, content_feats: VggFeatures) -> torch.Tensor:
    return sum(per_example_mse(getattr(stylized_feats, t), getattr(content_feats, t)) for t in CONTENT_TAPS) / len(CONTENT_TAPS)


def style_grams(feats: VggFeatures) -> list[torch.Tensor]:
    return [gram(f) for f in feats]


def style_loss(stylized_feats: VggFeatures, target_grams: list[torch.Tensor]) -> torch.Tensor:
    """Sum over relu1_1..relu4_1 of the mean squared Gram difference (1/(N^2 M^2) normalisation)."""
    return sum(per_example_mse(gram(f), g) for f, g in zip(stylized_feats, target_grams))


def tv_loss(image: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, down plus across."""
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).abs().mean(dim=(1, 2, 3))
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).abs().mean(dim=(1, 2, 3))
    return dx + dy


def cycle_loss(cycled: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """L1 between G(G(c, s), c) and c, as in CAST."""
    return (cycled.float() - content.float()).abs().flatten(1).mean(dim=1)


def _patch_mean(logits: list[torch.Tensor], fn) -> torch.Tensor:
    return sum(fn(l.float()).flatten(1).mean(dim=1) for l in logits) / len(logits)


def generator_adversarial_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    return _patch_mean(fake_logits, lambda l: -l)


def discriminator_hinge_loss(real_logits: list[torch.Tensor], *fake_groups: list[torch.Tensor],
                             fake_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Scalar. Each fake group is one D call's per-scale logits (groups may differ in image size); their examples
    form one batch of fakes. `fake_weight` (B,) of 0/1 over that batch leaves examples out of the fake term
    (reconstructions are not fakes) while keeping shapes fixed; the term is their weighted mean, 0 when every
    weight is 0."""
    real = _patch_mean(real_logits, lambda l: F.relu(1 - l)).mean()
    fake = torch.cat([_patch_mean(group, lambda l: F.relu(1 + l)) for group in fake_groups])
    weight = torch.ones_like(fake) if fake_weight is None else fake_weight
    return real + (fake * weight).sum() / weight.sum().clamp_min(1)


def generator_terms(image: torch.Tensor, image_feats: VggFeatures, content_feats: VggFeatures, style_grams: list[torch.Tensor],
                    *, content: torch.Tensor | None = None, cycled: torch.Tensor | None = None,
                    fake_logits: list[torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """G's per-example terms for `image`, a stylization of a photo (VGG features content_feats) toward a painting (its
    Gram matrices): content, style and TV always; cycle where `cycled` (generator.cycle of the image) and the photo
    `content` are given; adversarial where the critic's `fake_logits` for the image are. Training, refine and the
    benchmarks' image optimization all take their terms from here."""
    terms = {
        "content": content_loss(image_feats, content_feats),
        "style": style_loss(image_feats, style_grams),
        "tv": tv_loss(image),
    }
    if cycled is not None:
        terms["cycle"] = cycle_loss(cycled, content)
    if fake_logits is not None:
        terms["adv"] = generator_adversarial_loss(fake_logits)
    return terms


def weighted_objective(terms: dict[str, torch.Tensor], lambdas: torch.Tensor, normalizers: dict[str, float]) -> torch.Tensor:
    """sum_k lambda_k * L_k / n_k per example, divided by sum_k lambda_k.

    n_k (a running average of |L_k| recorded at training time) puts every term on a scale near 1,
    so each slider matters across its range. Dividing by sum(lambda) only rescales an example's
    loss, leaving its optimum unchanged while keeping gradient sizes steady across sampled lambdas.
    """
    total = 0.0
    for i, name in enumerate(LAMBDA_NAMES):
        if name in terms:
            total = total + lambdas[:, i] * terms[name] / normalizers[name]
    used = [i for i, n in enumerate(LAMBDA_NAMES) if n in terms]
    return total / lambdas[:, used].sum(dim=1)
