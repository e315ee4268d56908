"""G(content, style, lambdas, strength): VGG features -> AdaIN + attention fusion -> FiLM-conditioned decoder."""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .encoder import DOWNSAMPLE, TAP_CHANNELS, TAPS, VGGEncoder, VggFeatures
from .functional import adain_gain_bias, mean_std, pad_to_multiple
from .lambda_spec import LAMBDA_NAMES, TRAINING_RANGES, log_normalization

DECODER_TAPS = (2, 1, 0)  # the tap at the resolution each decoder level upsamples to
ATTENTION_QUERY_CHUNK = 4096  # bounds attention memory at high resolution


@dataclass
class ContentEncoding:
    feats: VggFeatures  # padded to a multiple of 8
    stats: list[tuple[torch.Tensor, torch.Tensor]]  # per tap: mean, std, each (B, C, 1, 1)
    size: tuple[int, int]  # the image's own (H, W)


@dataclass
class StyleEncoding:
    stats: list[tuple[torch.Tensor, torch.Tensor]]  # per tap: mean, std, each (B, C, 1, 1)
    relu4_1: torch.Tensor  # (B, 512, h, w): keys and values of the attention


@dataclass
class StyleMix:
    """Several styles' encodings and their weights, which sum to 1 everywhere: numbers (a global mix) or (B, 1, H, W) maps
    at the photo's size (regions). A decoder mixes them where it combines a style with the photo, in the AdaIN statistics
    and in the attention, never in output pixels; the generator's and the student's decode take one in place of a style."""

    styles: list
    weights: list


def at_resolution(weight, like: torch.Tensor):
    """A number or a (B, 1, 1, 1) tensor as it is; a (B, 1, H, W) map at the photo's size, padded as the photo is for the
    encoder and resized to `like`'s (a feature map's) resolution."""
    if not isinstance(weight, torch.Tensor) or weight.shape[-2:] == (1, 1):
        return weight
    padded, _ = pad_to_multiple(weight, DOWNSAMPLE)
    return F.interpolate(padded, size=like.shape[-2:], mode="bilinear", align_corners=False).to(like.dtype)


def mixed_stats(style, level: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The style's (mean, std) at `level`; a StyleMix's weighted sum of its styles' (AdaIN is affine in both, so this is
    the weighted sum of each style's AdaIN output, as AdaIN's own style interpolation)."""
    if not isinstance(style, StyleMix):
        return style.stats[level]
    weights = [at_resolution(w, like) for w in style.weights]
    return tuple(sum(w * s.stats[level][i] for w, s in zip(weights, style.styles)) for i in (0, 1))


def strength_tensor(strength, feat: torch.Tensor) -> torch.Tensor:
    """A number or (B,) -> (B, 1, 1, 1); a (B, 1, H, W) map stays a map (regions)."""
    strength = torch.as_tensor(strength, dtype=feat.dtype, device=feat.device)
    return strength.to(feat.dtype) if strength.dim() == 4 else strength.expand(feat.shape[0]).view(-1, 1, 1, 1)


def register_log_lambda_normalization(module: nn.Module, lambda_ranges: dict) -> None:
    """Buffers saved with the weights, so a model keeps the normalization it was trained with."""
    center, halfwidth = log_normalization(lambda_ranges)
    module.register_buffer("log_lambda_center", torch.tensor(center, dtype=torch.float32))
    module.register_buffer("log_lambda_halfwidth", torch.tensor(halfwidth, dtype=torch.float32))


def normalized_log_lambdas(module: nn.Module, lambdas: torch.Tensor) -> torch.Tensor:
    """(B, 5) positive λ -> (B, 5) log λ placed at about [-1, 1] by the module's trained ranges."""
    return (lambdas.float().clamp_min(1e-8).log() - module.log_lambda_center) / module.log_lambda_halfwidth


def conv3x3(cin: int, cout: int) -> nn.Sequential:
    # Reflect padding: zero padding leaves dots and dark seams along the borders.
    return nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3))


# UPSAMPLED_TAPS[phase, tap, k] = 1 where, for the output row 2r + phase, the kernel's row k reads the upsampled row
# 2r + phase + k - 1, which is the input's row r + tap - 1; the same for columns.
UPSAMPLED_TAPS = torch.tensor([[[1.0, 0, 0], [0, 1, 1], [0, 0, 0]], [[0, 0, 0], [1, 1, 0], [0, 0, 1]]])


def conv3x3_upsampled(conv: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """conv3x3(nearest 2x upsampling of x), computed at x's own resolution: each of the four output phases is a 3x3
    conv of x with the weights of the taps that read the same input pixel summed, and pixel_shuffle interleaves them.
    The reflect padding of the upsampled map is the replicate padding of x. Same result and FLOPs, but the 4x-larger
    upsampled map never exists: at 2048 px the student's full-resolution 16-channel one alone was 256 MB."""
    weight, bias = conv[1].weight, conv[1].bias
    taps = UPSAMPLED_TAPS.to(weight)
    phases = torch.einsum("aiy,ocyx,bjx->oabcij", taps, weight, taps).flatten(0, 2)  # pixel_shuffle's channel order
    return F.pixel_shuffle(F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), phases, bias.repeat_interleave(4)), 2)


class FiLMResBlock(nn.Module):
    """x + conv(FiLM(act(conv(x)))); FiLM parameters come from the lambda MLP. act: ReLU, or `activation` (the
    student's learnable slopes)."""

    def __init__(self, channels: int, activation: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.channels = channels
        self.activation = activation or nn.ReLU()

    def forward(self, x: torch.Tensor, film: torch.Tensor) -> torch.Tensor:
        """film: (B, 2C), or (B, 2C, H, W) where the condition varies over the picture (the student's painted regions)."""
        scale, shift = film.unflatten(1, (2, self.channels)).unbind(1)
        if scale.dim() == 2:
            scale, shift = scale[:, :, None, None], shift[:, :, None, None]
        h = self.activation(self.conv1(x))
        h = h * (1 + scale) + shift
        return x + self.conv2(h)


class StyleAttention(nn.Module):
    """SANet-style attention: each content position gathers style features from where they match."""

    def __init__(self, channels: int = 512, key_dim: int = 128, value_dim: int = 256):
        super().__init__()
        self.query = nn.Conv2d(channels, key_dim, 1)
        self.key = nn.Conv2d(channels, key_dim, 1)
        self.value = nn.Conv2d(channels, value_dim, 1)
        self.out = nn.Conv2d(value_dim, channels, 1)
        nn.init.zeros_(self.out.weight)  # starts as pure AdaIN; attention is learned on top
        nn.init.zeros_(self.out.bias)

    def forward(self, content_normalized: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        b, _, h, w = content_normalized.shape
        q = self.query(content_normalized).flatten(2).transpose(1, 2)  # (B, Lc, d)
        k = self.key(_instance_normalize(style)).flatten(2).transpose(1, 2)  # (B, Ls, d)
        v = self.value(style).flatten(2).transpose(1, 2)  # (B, Ls, dv)
        # Fused attention (flash, on a CPU too) needs one width for q, k and v. Zeros pad the narrower ones: q·k and
        # the output are unchanged, the scale stays the keys' own. On 2 CPU threads 5-9x faster than the unfused path.
        key_dim, value_dim = q.shape[-1], v.shape[-1]
        width = max(key_dim, value_dim)
        q, k, v = (F.pad(t, (0, width - t.shape[-1]))[:, None] for t in (q, k, v))  # (B, 1 head, L, width)
        chunks = [F.scaled_dot_product_attention(q_chunk, k, v, scale=key_dim**-0.5)
                  for q_chunk in q.split(ATTENTION_QUERY_CHUNK, dim=2)]
        attended = torch.cat(chunks, dim=2)[:, 0, :, :value_dim].transpose(1, 2).reshape(b, -1, h, w)
        return self.out(attended)


def _instance_normalize(feat: torch.Tensor) -> torch.Tensor:
    mean, std = mean_std(feat)
    return (feat - mean) / std


class Generator(nn.Module):
    """Arbitrary-style generator conditioned on the five loss weights.

    Keyword arguments but lambda_ranges are the architecture and are saved to config.json's "generator".
    lambda_ranges: the trained ranges (config.json's "lambdas"), which place log λ at about [-1, 1] before the FiLM MLP.
    skip_taps: the shallower taps whose stylised features also enter the decoder (relu4_1 always does).
    Shallow skips converge fast but hand the decoder the photo's fine structure to copy; decoding from
    relu3_1 and deeper (AdaIN, SANet, AdaAttN) leaves the strokes to the decoder.
    """

    def __init__(
        self,
        encoder: VGGEncoder,
        *,
        widths: tuple[int, ...] = (256, 128, 64, 32),
        blocks: tuple[int, ...] = (2, 1, 1),
        attention_key_dim: int = 128,
        attention_value_dim: int = 256,
        film_hidden: int = 128,
        skip_taps: tuple[str, ...] = TAPS[:3],
        lambda_ranges: dict[str, tuple[float, float]] = TRAINING_RANGES,
    ):
        super().__init__()
        assert len(widths) == 4 and len(blocks) == 3, "widths per level 4..1, residual blocks per level 4..2"
        unknown = set(skip_taps) - set(TAPS[:3])
        assert not unknown, f"skip_taps must be among {TAPS[:3]}, got {sorted(unknown)}"
        self.encoder = encoder
        self.config = dict(
            widths=list(widths), blocks=list(blocks), attention_key_dim=attention_key_dim,
            attention_value_dim=attention_value_dim, film_hidden=film_hidden, skip_taps=list(skip_taps),
        )
        register_log_lambda_normalization(self, lambda_ranges)
        self.attention = StyleAttention(TAP_CHANNELS[3], attention_key_dim, attention_value_dim)

        self.entry = nn.Conv2d(TAP_CHANNELS[3], widths[0], 1)
        # A 1x1 conv of concat([x, skip]) written as two summed 1x1 convs: no full-size concat copy.
        self.merge_up = nn.ModuleList([nn.Conv2d(w_in, w_out, 1) for w_in, w_out in zip(widths[:3], widths[1:])])
        # keyed by decoder level (0: relu3_1 at 1/4 ... 2: relu1_1 at full size)
        self.merge_skip = nn.ModuleDict({
            str(level): nn.Conv2d(TAP_CHANNELS[tap], widths[level + 1], 1, bias=False)
            for level, tap in enumerate(DECODER_TAPS) if TAPS[tap] in skip_taps
        })
        self.levels = nn.ModuleList([
            nn.ModuleList([FiLMResBlock(width) for _ in range(count)]) for width, count in zip(widths[:3], blocks)
        ])
        self.head = nn.Sequential(conv3x3(widths[3], widths[3]), nn.ReLU(), conv3x3(widths[3], 3))

        film_sizes = [2 * block.channels for level in self.levels for block in level]
        self.film_sizes = film_sizes
        # YOTO: an MLP on log(lambda); outputs enter as 1 + 0.1 * out and 0.1 * out (near identity).
        self.film_mlp = nn.Sequential(
            nn.Linear(len(LAMBDA_NAMES), film_hidden), nn.LeakyReLU(0.2), nn.Linear(film_hidden, sum(film_sizes))
        )

    # --- encoding (cacheable) -------------------------------------------------------------
    def encode_content(self, content: torch.Tensor) -> ContentEncoding:
        padded, size = pad_to_multiple(content, DOWNSAMPLE)
        feats = self.encoder(padded)
        return ContentEncoding(feats, [mean_std(f) for f in feats], size)

    def encode_style(self, style: torch.Tensor) -> StyleEncoding:
        return self.style_encoding_from_feats(self.encoder(pad_to_multiple(style, DOWNSAMPLE)[0]))

    @staticmethod
    def style_encoding_from_feats(feats: VggFeatures) -> StyleEncoding:
        return StyleEncoding([mean_std(f) for f in feats], feats.relu4_1)

    # --- fusion + decoding (one slider move) ----------------------------------------------
    def film_parameters(self, lambdas: torch.Tensor) -> list[torch.Tensor]:
        """lambdas (B, 5), positive -> one (B, 2C) tensor per FiLM block."""
        assert lambdas.dim() == 2 and lambdas.shape[1] == len(LAMBDA_NAMES), f"lambdas must be (B, {len(LAMBDA_NAMES)})"
        z = normalized_log_lambdas(self, lambdas)
        z = z.to(self.film_mlp[0].weight.dtype)
        return list((0.1 * self.film_mlp(z)).split(self.film_sizes, dim=1))

    @staticmethod
    def adain_gain_bias(content: ContentEncoding, style: StyleEncoding | StyleMix, tap: int, alpha: torch.Tensor):
        """functional.adain_gain_bias at tap `tap` (0..3); alpha (B, 1, 1, 1), or a (B, 1, h, w) strength map already at
        the tap's resolution (`at_resolution`; regions)."""
        return adain_gain_bias(content.stats[tap], mixed_stats(style, tap, content.feats[tap]), alpha)

    def fuse_level(self, content: ContentEncoding, style: StyleEncoding | StyleMix, tap: int, alpha: torch.Tensor) -> torch.Tensor:
        """The stylised features at tap `tap`: one multiply-add over the (large) map; at relu4_1 plus the attention."""
        feat = content.feats[tap]
        alpha = at_resolution(alpha, feat)
        gain, bias = self.adain_gain_bias(content, style, tap, alpha)
        fused = torch.addcmul(bias, feat, gain)
        if tap == 3:
            c_mean, c_std = content.stats[tap]
            normalized = (feat - c_mean) / c_std
            if isinstance(style, StyleMix):
                attended = sum(at_resolution(w, feat) * self.attention(normalized, s.relu4_1) for w, s in zip(style.weights, style.styles))
            else:
                attended = self.attention(normalized, style.relu4_1)
            fused = fused + alpha * attended
        return fused

    def decode(self, content: ContentEncoding, style: StyleEncoding | StyleMix, lambdas: torch.Tensor,
               strength: float | torch.Tensor = 1.0) -> torch.Tensor:
        """strength: a number, (B,) per example, or a (B, 1, H, W) map at the photo's size (0 keeps the photo there)."""
        alpha = strength_tensor(strength, content.feats.relu4_1)
        films = iter(self.film_parameters(lambdas))
        x = self.entry(self.fuse_level(content, style, 3, alpha))
        for level, (tap, blocks, merge_up) in enumerate(zip(DECODER_TAPS, self.levels, self.merge_up)):
            for block in blocks:
                x = block(x, next(films).to(x.dtype))
            # 1x1 conv commutes with nearest upsampling: project at low resolution, then upsample.
            x = F.interpolate(merge_up(x), scale_factor=2, mode="nearest")
            if str(level) in self.merge_skip:
                x = x + self.stylized_skip(level, content, style, tap, alpha)
            x = torch.relu_(x)
        h, w = content.size
        return torch.sigmoid(self.head(x))[:, :, :h, :w]

    def stylized_skip(self, level: int, content: ContentEncoding, style: StyleEncoding | StyleMix, tap: int,
                      alpha: torch.Tensor) -> torch.Tensor:
        """merge_skip(fuse_level(...)), computed just in time, so at most one full-size map is alive (2048 px memory).
        A 1x1 conv of feat * gain + bias is a 1x1 conv of feat: for one picture with one gain and bias per channel
        (no painted regions), they fold into the conv's weights, and the fused full-size map, the largest multiply-add
        of a slider move, is never built."""
        conv, feat = self.merge_skip[str(level)], content.feats[tap]
        gain, bias = self.adain_gain_bias(content, style, tap, at_resolution(alpha, feat))
        if feat.shape[0] > 1 or gain.shape[-2:] != (1, 1) or bias.shape[-2:] != (1, 1):
            return conv(torch.addcmul(bias, feat, gain))
        return F.conv2d(feat, conv.weight * gain.view(1, -1, 1, 1), (conv.weight.flatten(1) @ bias.view(-1, 1)).view(-1))

    def forward(self, content, style, lambdas, strength: float | torch.Tensor = 1.0) -> torch.Tensor:
        """content (B,3,H,W), style (B,3,h,w) in [0,1]; lambdas (B,5) -> (B,3,H,W) in [0,1]."""
        return self.decode(self.encode_content(content), self.encode_style(style), lambdas, strength)

    # --- weights without the frozen encoder -----------------------------------------------
    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.state_dict().items() if not k.startswith("encoder.")}

    def load_trainable_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.trainable_state_dict())
        missing, unexpected = expected - set(state), set(state) - expected
        if missing or unexpected:
            raise KeyError(f"generator weights do not match the architecture: missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}")
        self.load_state_dict(state, strict=False)


def cycle(decode, stylized: ContentEncoding, content: ContentEncoding, lambdas: torch.Tensor) -> torch.Tensor:
    """G(G(c, s), c), CAST's cycle: the stylization decoded back with its photo as the style, through `decode` (a
    generator's decode, or the compiled version training runs)."""
    return decode(stylized, Generator.style_encoding_from_feats(content.feats), lambdas)
