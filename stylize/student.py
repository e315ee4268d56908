"""The fast student: small content and style encoders and a micro decoder, distilled from the VGG generator
(train/distill.py), with the generator's interface (encode_content / encode_style / decode, the same five λ and
strength), so the pipeline caches its encodings the same way. MicroAST's layout: no VGG at inference, separate
content and style encoders, AdaIN at 1/4 and 1/8, and a decoder modulated by a global style code; the photo's
1/2-resolution features reach the decoder only as strength lowers (so strength 0 can give the photo back).
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoder import DOWNSAMPLE
from .functional import adain_gain_bias, flat_stats, mean_std, pad_to_multiple
from .generator import (
    FiLMResBlock, StyleMix, at_resolution, conv3x3, conv3x3_upsampled, mixed_stats, normalized_log_lambdas, register_log_lambda_normalization,
    strength_tensor,
)
from .lambda_spec import LAMBDA_NAMES, TRAINING_RANGES



@dataclass
class StudentContent:
    feats: list[torch.Tensor]  # at 1/2, 1/4 and 1/8 of the (padded) image
    stats: list[tuple[torch.Tensor, torch.Tensor]]  # at 1/4 and 1/8, where the style's statistics replace them
    size: tuple[int, int]  # the image's own (H, W)


@dataclass
class StudentStyle:
    stats: list[tuple[torch.Tensor, torch.Tensor]]  # at 1/2, 1/4 and 1/8: mean, std, each (B, C, 1, 1)
    code: torch.Tensor  # (B, code_dim): the style's global signal for the decoder


def activation(channels: int, negative_slope: float) -> nn.PReLU:
    """A ReLU whose negative side has a learnable slope per channel. The first students had plain ReLUs (slopes fixed at
    0), and training silenced most of their units for good: inputs all negative, hence no gradient, among them the whole
    1/8 level. A learnable slope passes a gradient even there; starting at 0 it is such a student exactly."""
    return nn.PReLU(channels, init=negative_slope)


class TinyEncoder(nn.Module):
    """3 strided convs to 1/8, one residual block there; returns the 1/2, 1/4 and 1/8 maps."""

    def __init__(self, widths: tuple[int, int, int], negative_slope: float):
        super().__init__()
        w0, w1, w2 = widths
        self.to_half = nn.Sequential(nn.Conv2d(3, w0, 3, 2, 1), activation(w0, negative_slope))
        self.to_quarter = nn.Sequential(nn.Conv2d(w0, w1, 3, 2, 1), activation(w1, negative_slope))
        self.to_eighth = nn.Sequential(nn.Conv2d(w1, w2, 3, 2, 1), activation(w2, negative_slope))
        self.block = nn.Sequential(conv3x3(w2, w2), activation(w2, negative_slope), conv3x3(w2, w2))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        half = self.to_half(image)
        quarter = self.to_quarter(half)
        eighth = self.to_eighth(quarter)
        return [half, quarter, eighth + self.block(eighth)]


class Student(nn.Module):
    """Keyword arguments but lambda_ranges are the architecture and are saved to the student's config.json; lambda_ranges
    are its teacher's (the teacher's config.json). negative_slope: the activations' initial slope (they learn their own)."""

    def __init__(
        self,
        *,
        widths: tuple[int, int, int] = (16, 32, 64),
        blocks: int = 3,
        code_dim: int = 64,
        film_hidden: int = 64,
        negative_slope: float = 0.2,
        lambda_ranges: dict[str, tuple[float, float]] = TRAINING_RANGES,
    ):
        super().__init__()
        self.config = dict(widths=list(widths), blocks=blocks, code_dim=code_dim, film_hidden=film_hidden, negative_slope=negative_slope)
        register_log_lambda_normalization(self, lambda_ranges)
        w0, w1, w2 = widths
        self.content_encoder = TinyEncoder(widths, negative_slope)
        self.style_encoder = TinyEncoder(widths, negative_slope)
        self.style_code = nn.Sequential(nn.Linear(2 * (w0 + w1 + w2), code_dim), nn.LeakyReLU(0.2))
        self.eighth_blocks = nn.ModuleList([FiLMResBlock(w2, activation(w2, negative_slope)) for _ in range(blocks)])
        self.up_to_quarter = conv3x3(w2, w1)
        self.quarter_activation = activation(w1, negative_slope)
        self.quarter_skip = nn.Conv2d(w1, w1, 1)
        self.quarter_block = FiLMResBlock(w1, activation(w1, negative_slope))
        self.up_to_half = conv3x3(w1, w0)
        self.half_skip = nn.Conv2d(w0, w0, 1)
        self.half_activation = activation(w0, negative_slope)
        self.head = conv3x3(w0, 3)
        self.film_sizes = [2 * b.channels for b in (*self.eighth_blocks, self.quarter_block)]
        # λ (normalised log), strength and the style code -> every block's FiLM scale and shift
        self.film_mlp = nn.Sequential(nn.Linear(len(LAMBDA_NAMES) + 1 + code_dim, film_hidden), nn.LeakyReLU(0.2),
                                      nn.Linear(film_hidden, sum(self.film_sizes)))

    # --- encoding (cacheable) -------------------------------------------------------------
    def encode_content(self, content: torch.Tensor) -> StudentContent:
        padded, size = pad_to_multiple(content, DOWNSAMPLE)
        feats = self.content_encoder(padded)
        return StudentContent(feats, [mean_std(f) for f in feats[1:]], size)

    def encode_style(self, style: torch.Tensor) -> StudentStyle:
        feats = self.style_encoder(pad_to_multiple(style, DOWNSAMPLE)[0])
        stats = [mean_std(f) for f in feats]
        return StudentStyle(stats, self.style_code(flat_stats(stats)))  # mean and std at 1/2, then 1/4, then 1/8

    # --- fusion + decoding (one slider move) ----------------------------------------------
    def decode(self, content: StudentContent, style: StudentStyle | StyleMix, lambdas: torch.Tensor,
               strength: float | torch.Tensor = 1.0) -> torch.Tensor:
        """As Generator.decode. The decoder's FiLM takes a style code and a strength per image, or per 1/8-resolution
        pixel where the style's weights or the strength are maps (painted regions), so each region is decoded with its
        own style's code."""
        half, quarter, eighth = content.feats
        alpha = strength_tensor(strength, eighth)
        films = iter(self.film_parameters(lambdas, alpha, style, eighth))

        x = self._adain(eighth, content.stats[1], mixed_stats(style, 2, eighth), at_resolution(alpha, eighth))
        for block in self.eighth_blocks:
            x = block(x, next(films).to(x.dtype))
        x = self.quarter_activation(conv3x3_upsampled(self.up_to_quarter, x))
        x = x + self.quarter_skip(self._adain(quarter, content.stats[0], mixed_stats(style, 1, quarter), at_resolution(alpha, quarter)))
        film = next(films)
        if film.shape[-2:] != (1, 1):
            film = F.interpolate(film, size=x.shape[-2:], mode="bilinear", align_corners=False)
        x = self.quarter_block(x, film.to(x.dtype))
        x = conv3x3_upsampled(self.up_to_half, x)
        # The photo's own 1/2-resolution features enter only as strength lowers: at full strength the decoder paints
        # from 1/4 and 1/8, where a skip of the barely-encoded photo let the student copy it and only grade its colours.
        # A full strength given as a number (every plain slider move) is known without a device sync: skip the skip.
        full_strength = isinstance(strength, (int, float)) and strength == 1
        x = self.half_activation(x if full_strength else x + (1 - at_resolution(alpha, half)) * self.half_skip(half))
        h, w = content.size
        return torch.sigmoid(conv3x3_upsampled(self.head, x))[:, :, :h, :w]

    def film_parameters(self, lambdas: torch.Tensor, alpha: torch.Tensor, style, eighth: torch.Tensor) -> list[torch.Tensor]:
        """Every block's FiLM scale and shift from λ, strength and the style code: (B, 2C, 1, 1) each, or (B, 2C, h, w)
        at the 1/8 resolution where `alpha` or the StyleMix's weights are maps."""
        z = normalized_log_lambdas(self, lambdas)
        if isinstance(style, StyleMix):
            code = sum(at_resolution(w, eighth) * s.code[:, :, None, None] for w, s in zip(style.weights, style.styles))
        else:
            code = style.code[:, :, None, None]
        parts = [z.to(code.dtype)[:, :, None, None], at_resolution(alpha, eighth).to(code.dtype), code]
        batch, _, h, w = torch.broadcast_shapes((eighth.shape[0], 1, 1, 1), *((p.shape[0], 1, *p.shape[2:]) for p in parts))
        condition = torch.cat([p.expand(batch, -1, h, w) for p in parts], dim=1)
        return list((0.1 * self.film_mlp(condition.movedim(1, -1))).movedim(-1, 1).split(self.film_sizes, dim=1))

    @staticmethod
    def _adain(feat, content_stats, style_stats, alpha) -> torch.Tensor:
        """strength * AdaIN(feat) + (1 - strength) * feat, as one multiply-add."""
        gain, bias = adain_gain_bias(content_stats, style_stats, alpha)
        return torch.addcmul(bias, feat, gain)

    def forward(self, content, style, lambdas, strength: float | torch.Tensor = 1.0) -> torch.Tensor:
        return self.decode(self.encode_content(content), self.encode_style(style), lambdas, strength)
