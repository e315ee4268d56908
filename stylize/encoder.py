"""Frozen VGG16 (ImageNet, Caffe weights) up to relu4_1, with named, mean-normalised taps."""
from collections import namedtuple
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file

# conv name -> (in, out); a 2x2 max-pool precedes each block after the first.
VGG_LAYERS = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64),
    ("conv2_1", 64, 128), ("conv2_2", 128, 128),
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 256, 512),
]
TAPS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
TAP_CHANNELS = (64, 128, 256, 512)
VggFeatures = namedtuple("VggFeatures", TAPS)

# Caffe VGG expects BGR in 0-255 minus these per-channel means (given here in RGB order).
IMAGENET_MEAN_RGB_255 = (123.68, 116.779, 103.939)
DOWNSAMPLE = 8  # relu4_1 is at 1/8 resolution


class VGGEncoder(nn.Module):
    """RGB in [0, 1], (B, 3, H, W) -> VggFeatures, each tap divided by its mean activation on photos.

    The raw Caffe activations average 22-258 per layer; dividing by those means (as AdaIN's
    vgg_normalised does) keeps every tap near 1 so that decoders and losses see balanced inputs.
    """

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleDict({name: nn.Conv2d(cin, cout, 3, padding=1) for name, cin, cout in VGG_LAYERS})
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN_RGB_255).view(1, 3, 1, 1) / 255.0)
        self.register_buffer("tap_scale", torch.ones(len(TAPS)))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: never in training mode

    @classmethod
    def from_file(cls, path: str | Path) -> "VGGEncoder":
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"VGG weights not found: {path}")
        encoder = cls()
        tensors = load_file(str(path))
        state = {f"convs.{k}": v.float() for k, v in tensors.items() if k != "tap_scale"}
        state["tap_scale"] = tensors["tap_scale"].float()
        state["mean"] = encoder.mean
        encoder.load_state_dict(state, strict=True)
        return encoder

    def raw_features(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Unscaled activations at the taps (used once, to measure tap_scale)."""
        return self._taps(image, torch.ones_like(self.tap_scale))

    def forward(self, image: torch.Tensor) -> VggFeatures:
        # Caffe weights are in BGR order; conversion flipped conv1_1's input channels so RGB goes in.
        return VggFeatures(*self._taps(image, self.tap_scale))

    def _taps(self, image: torch.Tensor, tap_scale: torch.Tensor) -> list[torch.Tensor]:
        """The activations at the taps, each divided by its scale. ReLU commutes with a positive scale, so each division
        folds into the tap's conv and its inverse into the next conv's weights, as Caffe's 255 does into conv1_1's: no
        full-size map is scaled or copied (and the ReLUs work in place), 22 % of an encode at 1024 px on a CPU."""
        x = image - self.mean
        taps, scale_in, scales = [], 255.0, iter(tap_scale)  # x is the raw input divided by scale_in
        for name, _, _ in VGG_LAYERS:
            is_tap = name.endswith("_1")
            if is_tap and name != "conv1_1":
                x = F.max_pool2d(x, 2)
            conv, scale_out = self.convs[name], next(scales) if is_tap else 1.0
            weight = (conv.weight.float() * (scale_in / scale_out)).to(conv.weight.dtype)
            x = torch.relu_(F.conv2d(x, weight, (conv.bias.float() / scale_out).to(conv.bias.dtype), padding=1))
            if is_tap:
                taps.append(x)
            scale_in = scale_out
        return taps
