"""Multi-scale PatchGAN with spectral norm; real samples are paintings.

With `style_dim` > 0 the critic is style-conditional (a projection discriminator, Miyato & Koyama 2018): each
patch logit gains <features, embed(style code)>, and training also shows it real paintings paired with another
painting's code as fakes (matching-aware, Reed et al. 2016). It then scores "does this patch belong to *this*
painting", so its gradient pulls G towards the chosen style rather than towards paintings in general.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

from .functional import flat_stats


def _patch_branch(base: int, layers: int) -> nn.Sequential:
    modules, cin = [], 3
    for i in range(layers):
        cout = base * 2**i
        modules += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        cin = cout
    modules.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))  # raw logits: no sigmoid
    return nn.Sequential(*modules)


def style_code(stats: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Per-tap VGG (mean, std) of a style image, each (B, C, 1, 1) -> (B, 2 * sum C): the critic's condition."""
    return flat_stats(stats).float()


class MultiScaleDiscriminator(nn.Module):
    """Image in [0, 1], (B, 3, H, W) [+ style code (B, style_dim)] -> list of patch logits (B, 1, h_s, w_s), one per
    scale (full, 1/2, 1/4...)."""

    def __init__(self, *, scales: int = 3, base_channels: int = 64, layers: int = 3, style_dim: int = 0):
        super().__init__()
        self.config = dict(scales=scales, base_channels=base_channels, layers=layers, style_dim=style_dim)
        self.branches = nn.ModuleList([_patch_branch(base_channels, layers) for _ in range(scales)])
        self.style_dim = style_dim
        if style_dim:
            features = base_channels * 2 ** (layers - 1)
            self.projections = nn.ModuleList([nn.Linear(style_dim, features) for _ in range(scales)])
            for projection in self.projections:  # starts as the unconditional critic it may be initialised from
                nn.init.zeros_(projection.weight)
                nn.init.zeros_(projection.bias)

    @property
    def conditional(self) -> bool:
        return self.style_dim > 0

    def forward(self, image: torch.Tensor, code: torch.Tensor | None = None) -> list[torch.Tensor]:
        if self.conditional and code is None:
            raise ValueError("this discriminator is style-conditional: pass the style code (stylize.discriminator.style_code)")
        x = image * 2 - 1
        logits = []
        for i, branch in enumerate(self.branches):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            if not self.conditional:
                logits.append(branch(x))
                continue
            features = branch[:-1](x)
            # tanh bounds the embedding, so the conditional term cannot outgrow the spectrally normalised trunk
            embedding = torch.tanh(self.projections[i](code.to(features.dtype)))[:, :, None, None]
            projection = (features * embedding).sum(1, keepdim=True) / features.shape[1] ** 0.5
            logits.append(branch[-1](features) + projection)
        return logits

    def with_style_condition(self, style_dim: int) -> "MultiScaleDiscriminator":
        """A style-conditional copy whose trunk holds these weights and whose projections start at zero."""
        conditional = MultiScaleDiscriminator(**{**self.config, "style_dim": style_dim})
        missing, unexpected = conditional.load_state_dict(self.state_dict(), strict=False)
        assert not unexpected and all(k.startswith("projections.") for k in missing), (missing, unexpected)
        return conditional
