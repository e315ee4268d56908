"""What each creative control does, measured on held-out photos and paintings (not run by pytest):

    python bench/controls.py                             # -> bench/results/controls.{json,md}, controls_{mix,regions,stroke}.jpg
    python bench/controls.py --variant fast --tag _fast  # -> controls_fast.{json,md}, controls_fast_{mix,regions,stroke}.jpg

- mix: per VGG tap, where a 50/50 mix's output statistics lie on the line from style A's output to style B's
  (t = 0: A's, 1: B's), and a 3-way mix on a sheet;
- regions: mean distance (grey levels) of a half-painted photo's painted side to the single-style output and of its
  unpainted side to the model's strength-0 output and to the photo, away from the feathered edge;
- stroke size: the texture frequency of the output (tests/helpers.texture_frequency) at five settings, Spearman ρ;
- batches: images/s of one `stylize` command over a folder against one process per pair, same pairs.
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from common import (
    RESULTS, contact_sheet, fp32_stylizer, held_out, load, markdown_table, spearman, texture_frequency, to_tensor,
)

from stylize.encoder import TAPS
from stylize.functional import mean_std

STROKES = [0.5, 0.71, 1.0, 1.41, 2.0]


def grey_distance(a, b, region) -> float:
    return float(np.abs(np.asarray(a, np.float64)[region] - np.asarray(b, np.float64)[region]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=3)
    parser.add_argument("--side", type=int, default=384)
    parser.add_argument("--variant", default="quality", choices=("quality", "fast"))
    parser.add_argument("--tag", default="", help="suffix for the result files (default none)")
    parser.add_argument("--markdown-from", type=Path, help="write controls{TAG}.md from an earlier controls{TAG}.json and stop")
    args = parser.parse_args()
    if args.markdown_from:
        (RESULTS / f"controls{args.tag}.md").write_text(markdown(json.loads(args.markdown_from.read_text()), args.tag))
        return
    torch.set_num_threads(2)
    stylizer = fp32_stylizer(variant=args.variant)
    contents = [load(p, args.side) for p in held_out("content", args.contents)]
    styles = [load(p, 512) for p in held_out("style", args.styles)]
    result = {"variant": args.variant, "side": args.side, "pairs": f"{len(contents)} photos x {len(styles)} paintings"}

    # mix: 50/50 of styles 0 and 1, statistics per tap; the 3-way sheet
    ts = {tap: [] for tap in TAPS}
    rows = []
    for content in contents:
        a, mix, b = (stylizer(content, styles=s, max_side=args.side) for s in ([styles[0]], styles[:2], [styles[1]]))
        with torch.no_grad():
            feats = [stylizer.generator.encoder(to_tensor(o)) for o in (a, mix, b)]
        for i, tap in enumerate(TAPS):
            sa, sm, sb = (torch.cat([t.flatten() for t in mean_std(f[i])]) for f in feats)
            ts[tap].append(((sm - sa) @ (sb - sa) / (sb - sa).pow(2).sum()).item())
        rows.append([stylizer(content, s, max_side=args.side) for s in styles] + [stylizer(content, styles=styles, max_side=args.side)])
    result["mix_t"] = {tap: statistics.fmean(v) for tap, v in ts.items()}
    contact_sheet(rows, contents, [*styles, "3-way mix,\nequal weights"], tile=192).save(RESULTS / f"controls{args.tag}_mix.jpg", quality=88)

    # regions: the left half painted
    distances = {"painted side to the single style": [], "unpainted side to strength 0": [], "unpainted side to the photo": [],
                 "single style's right side to the photo": [], "two styles: left side to the first style": [],
                 "two styles: right side to the second style": [], "the two single styles' right sides, apart": []}
    region_rows = []
    for content in contents:
        mask = Image.new("L", content.size)
        ImageDraw.Draw(mask).rectangle([0, 0, content.width // 2, content.height], fill=255)
        left, right = np.s_[:, : content.width * 3 // 8], np.s_[:, content.width * 5 // 8:]
        single, second = stylizer(content, styles[0], max_side=args.side), stylizer(content, styles[1], max_side=args.side)
        back = stylizer(content, styles[0], strength=0.0, max_side=args.side)
        kept = stylizer(content, styles[0], mask=mask, max_side=args.side)
        two = stylizer(content, styles[0], mask=mask, outside_style=styles[1], max_side=args.side)
        for name, value in zip(distances, (grey_distance(kept, single, left), grey_distance(kept, back, right),
                                           grey_distance(kept, content, right), grey_distance(single, content, right),
                                           grey_distance(two, single, left), grey_distance(two, second, right),
                                           grey_distance(single, second, right))):
            distances[name].append(value)
        painted = Image.composite(Image.blend(content, Image.new("RGB", content.size, (255, 51, 85)), 0.6), content, mask)
        region_rows.append([painted, kept, two])
    result["regions"] = {k: statistics.fmean(v) for k, v in distances.items()}
    contact_sheet(region_rows, contents, ["the painted\nregion", "style 1 there,\nthe photo elsewhere",
                                          "style 1 there,\nstyle 2 elsewhere"], tile=192).save(RESULTS / f"controls{args.tag}_regions.jpg", quality=88)

    # stroke size
    frequencies, stroke_rows = [], []
    for content in contents:
        for style in styles[:2]:
            outputs = [stylizer(content, style, max_side=args.side, stroke_scale=k) for k in STROKES]
            frequencies.append([texture_frequency(o) for o in outputs])
        stroke_rows.append(outputs)
    result["stroke"] = {"scales": STROKES, "mean_frequency": [statistics.fmean(f[i] for f in frequencies) for i in range(len(STROKES))],
                        "spearman_of_means": spearman(STROKES, [statistics.fmean(f[i] for f in frequencies) for i in range(len(STROKES))]),
                        "spearman_per_pair": [spearman(STROKES, f) for f in frequencies]}
    contact_sheet(stroke_rows, contents, [f"stroke {k}" for k in STROKES], tile=192).save(RESULTS / f"controls{args.tag}_stroke.jpg", quality=88)

    # batches: one command over 8 pairs against one process per pair
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "photos").mkdir()
        (tmp / "paintings").mkdir()
        for i, content in enumerate(contents[:4]):
            content.save(tmp / "photos" / f"p{i}.png")
        for i, style in enumerate(styles[:2]):
            style.save(tmp / "paintings" / f"s{i}.png")
        common = ["--max-side", str(args.side), "--variant", args.variant]
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "stylize", str(tmp / "photos"), str(tmp / "paintings"), "-o", str(tmp / "batch"), *common],
                       check=True, capture_output=True)
        batch_s = time.perf_counter() - started
        pairs = [(c, s) for c in sorted((tmp / "photos").iterdir()) for s in sorted((tmp / "paintings").iterdir())]
        started = time.perf_counter()
        for c, s in pairs:
            subprocess.run([sys.executable, "-m", "stylize", str(c), str(s), "-o", str(tmp / f"{c.stem}__{s.stem}.png"), *common],
                           check=True, capture_output=True)
        single_s = time.perf_counter() - started
    result["batch"] = {"pairs": len(pairs), "batch_s": batch_s, "one_process_per_pair_s": single_s,
                       "batch_images_per_s": len(pairs) / batch_s, "single_images_per_s": len(pairs) / single_s,
                       "speedup": single_s / batch_s}

    (RESULTS / f"controls{args.tag}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"controls{args.tag}.md").write_text(markdown(result, args.tag))
    print(markdown(result, args.tag))


def markdown(result: dict, tag: str) -> str:
    stroke, batch = result["stroke"], result["batch"]
    per_pair = stroke["spearman_per_pair"]
    command = "python bench/controls.py" + (f" --variant {result['variant']}" if result["variant"] != "quality" else "") + (f" --tag {tag}" if tag else "")
    lines = [f"Creative controls, {result['variant']} model, held-out {result['pairs']} at {result['side']} px, CPU 2 threads "
             f"(`{command}`; sheets `controls{tag}_mix.jpg`, `controls{tag}_regions.jpg`, `controls{tag}_stroke.jpg`).", "",
             "**Mix** (50/50 of two paintings): where the output's channel statistics lie between the two single-style "
             "outputs' (0: the first's, 1: the second's), per VGG tap:", "",
             *markdown_table(list(TAPS), [[f"{result['mix_t'][t]:.2f}" for t in TAPS]]), "",
             "**Regions** (the left half painted; mean grey-level distance away from the feathered edge):", "",
             *markdown_table(["measure", "grey levels"], [[k, f"{v:.2f}"] for k, v in result["regions"].items()]), "",
             "**Stroke size**: texture frequency of the output (cycles/px, power-weighted above 0.02), mean over "
             f"{len(per_pair)} pairs:", "",
             *markdown_table(["stroke scale", *map(str, stroke["scales"])], [["frequency", *(f"{f:.4f}" for f in stroke["mean_frequency"])]]), "",
             f"Spearman ρ of the means {stroke['spearman_of_means']:+.2f} (target ≤ −0.9: "
             f"{'met' if stroke['spearman_of_means'] <= -0.9 + 1e-9 else 'missed'}); per pair: {sum(r <= -0.9 + 1e-9 for r in per_pair)} of "
             f"{len(per_pair)} at ≤ −0.9 ({', '.join(f'{r:+.1f}' for r in per_pair)}).", "",
             f"**Batches**: {batch['pairs']} pairs in one `stylize` command {batch['batch_s']:.1f} s "
             f"({batch['batch_images_per_s']:.2f} images/s) against one process per pair {batch['one_process_per_pair_s']:.1f} s "
             f"({batch['single_images_per_s']:.2f} images/s): {batch['speedup']:.1f}x per image (target ≥ 3x: "
             f"{'met' if batch['speedup'] >= 3 else 'missed'})."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
