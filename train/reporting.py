"""What a training run shows of itself: log rows (CSV, TensorBoard, the terminal), sample grids, the loss curve."""
import copy
import csv
import logging
import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from stylize.checkpoint import atomic_write
from stylize.generator import Generator
from stylize.images import fit_size, paste_grid, to_pil
from stylize.lambda_spec import LAMBDA_NAMES
from stylize.pipeline import Stylizer
from train.data import ImageSource
from train.runs import RunLog

log = logging.getLogger("stylize.train")
LOG_COLUMNS = ["step", "seconds", "d_loss", "g_loss", *LAMBDA_NAMES, *(f"norm_{n}" for n in LAMBDA_NAMES), "nonfinite",
               "images_per_s"]


def lambda_sweep_grid(stylizer: Stylizer, contents: list[Image.Image], styles: list[Image.Image], tile: int = 192) -> Image.Image:
    """Rows: each (content, style) pair. Columns: content | style | default lambdas | low and high of each lambda."""
    settings = [{}] + [{name: stylizer.lambda_ranges[name][i]} for name in LAMBDA_NAMES for i in (0, 1)]
    rows = []
    for content in contents:
        for style in styles:
            content_tile = fit_size(content, tile)
            cells = [content_tile, fit_size(style, tile)]
            content_enc, style_enc = stylizer.encode_content(content_tile), stylizer.encode_style(style)
            for overrides in settings:
                cells.append(to_pil(stylizer.stylize_tensor(content_enc, style_enc, stylizer.resolve_lambdas(overrides))))
            rows.append(cells)
    return paste_grid(rows, (max(c.width for row in rows for c in row), max(c.height for row in rows for c in row)))


def write_samples(out: Path, step: int, G: Generator, config: dict, sources: tuple[ImageSource, ImageSource], size: int):
    """The sample grid, through the inference pipeline on a copy of G (training state untouched)."""
    stylizer = Stylizer(copy.deepcopy(G).float(), config, device=next(G.parameters()).device, dtype=torch.float32)
    contents, styles = ([to_pil(source.image(i, size).float() / 255) for i in (0, len(source) // 2)] for source in sources)
    grid = lambda_sweep_grid(stylizer, contents, styles, tile=min(size, 192))
    path = out / "samples" / f"step_{step:06d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: grid.save(tmp, format="PNG"))
    atomic_write(out / "model" / "samples.png", lambda tmp: grid.save(tmp, format="PNG"))
    return grid


def loss_curve(csv_path: Path, width: int = 720, height: int = 300) -> Image.Image:
    """log.csv's G and D losses against the step, for the model card (drawn with PIL: no plotting dependency)."""
    with csv_path.open() as f:
        rows = [r for r in csv.DictReader(f) if r["step"].isdigit()]
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 50, width - 10, 20, height - 30
    draw.rectangle([left, top, right, bottom], outline="#999999")
    series = {name: [(int(r["step"]), float(r[name])) for r in rows if math.isfinite(float(r[name]))] for name in ("g_loss", "d_loss")}
    points = [p for values in series.values() for p in values]
    if len(points) >= 2:
        (x0, x1), (y0, y1) = ((min(v), max(v)) for v in zip(*points))
        x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1e-6)
        for (name, values), colour in zip(series.items(), ("#d62728", "#1f77b4")):
            xy = [(left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)) for x, y in values]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
        draw.text((left, bottom + 8), f"step {x0} .. {x1}", fill="black")
        draw.text((left + 4, 4), f"loss {y0:.3g} .. {y1:.3g}", fill="black")
    draw.text((right - 150, 4), "G loss", fill="#d62728")
    draw.text((right - 80, 4), "D loss", fill="#1f77b4")
    return image


def write_log_row(run_log: RunLog, progress, row: dict) -> None:
    run_log.write(row, {**{f"loss/{name}": row[name] for name in ("d_loss", "g_loss", *LAMBDA_NAMES)},
                        "discriminator/score_on_stylized": -row["adv"],  # the adversarial term is -D(G(c, s))
                        "speed/images_per_s": row["images_per_s"]})
    progress.set_postfix(d=f"{row['d_loss']:.3f}", g=f"{row['g_loss']:.3f}", style=f"{row['style']:.3g}", content=f"{row['content']:.3g}")
    if progress.disable:  # not a terminal: plain log lines instead of the bar
        log.info("step %d  %.1f s  d %.3f  g %.3f  " + "  ".join(f"{n} %.4g" for n in LAMBDA_NAMES),
                 row["step"], row["seconds"], row["d_loss"], row["g_loss"], *(row[n] for n in LAMBDA_NAMES))
