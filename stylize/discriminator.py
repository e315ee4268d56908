"""Multi-scale PatchGAN with spectral norm; real samples are paintings."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm


def _patch_branch(base: int, layers: int) -> nn.Sequential:
    modules, cin = [], 3
    for i in range(layers):
        cout = base * 2**i
        modules += [spectral_norm(nn.Conv2d(cin, cout, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
        cin = cout
    modules.append(spectral_norm(nn.Conv2d(cin, 1, 3, padding=1)))  # raw logits: no sigmoid
    return nn.Sequential(*modules)


class MultiScaleDiscriminator(nn.Module):
    """Image in [0, 1], (B, 3, H, W) -> list of patch logits (B, 1, h_s, w_s), one per scale (full, 1/2, 1/4...)."""

    def __init__(self, *, scales: int = 3, base_channels: int = 64, layers: int = 3):
        super().__init__()
        self.config = dict(scales=scales, base_channels=base_channels, layers=layers)
        self.branches = nn.ModuleList([_patch_branch(base_channels, layers) for _ in range(scales)])

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = image * 2 - 1
        logits = []
        for i, branch in enumerate(self.branches):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            logits.append(branch(x))
        return logits
