"""Is a new model better than the shipped one? Compare their content/style trade-off curves, not single points.
Not run by pytest.

    python bench/frontier.py --models weights runs/x/model      # -> bench/results/frontier.{json,md}
    python bench/frontier.py --models weights runs/cpu-ft3/model --out frontier_cpu_finetune

Two models with different defaults sit at different points of the same trade-off, so their default-λ scores do not
say which is better. Each model is scored over λ_content (log-spaced across the shared part of their trained ranges, the
other weights at each model's defaults) on validation pairs (held-out images bench/quality.py does not use); a model
whose curve lies below the other's (lower style distance at equal content distance) is the better one, and one whose
outputs the probe (bench/artprobe.py) reads as paintings more often at equal content distance paints more.
"""
import argparse
import json

import torch

from artprobe import ArtProbe
from common import RESULTS, Metrics, encoded_pairs, fp32_stylizer, log_spaced, score, validation_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", required=True)
    parser.add_argument("--contents", type=int, default=6)
    parser.add_argument("--styles", type=int, default=6)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--points", type=int, default=5)
    parser.add_argument("--out", default="frontier", help="file stem under bench/results/ (default %(default)s)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    _, _, contents, styles = validation_images(args.contents, args.styles, args.side)
    stylizers = {m: fp32_stylizer(m) for m in args.models}
    probe = ArtProbe.load()
    lo = max(s.lambda_ranges["content"][0] for s in stylizers.values())
    hi = min(s.lambda_ranges["content"][1] for s in stylizers.values())
    values = log_spaced(lo, hi, args.points)
    curves = {}
    for name, stylizer in stylizers.items():
        metrics = Metrics(stylizer.generator.encoder)
        pairs = encoded_pairs(stylizer, contents, styles)
        curves[name] = [score(stylizer, metrics, pairs, {"content": v}, probe)[0] for v in values]
        for point in curves[name]:
            print(name, {k: round(v, 4) for k, v in point.items()}, flush=True)
    result = {"pairs": f"{len(contents)} x {len(styles)}", "side": args.side, "curves": curves}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.out}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Validation pairs {result['pairs']} at {args.side} px; each model over λ_content, other weights at its defaults.", "",
             "| model | λ_content | content relu4_1 | style Gram | style mean/std | P(painting) |", "|---|---|---|---|---|---|"]
    for name, curve in curves.items():
        lines += [f"| {name} | {p['content']:.3g} | {p['content_relu4_1']:.4f} | {p['style_gram']:.3f} | {p['style_mean_std']:.4f} | {p['p_painting']:.3f} |" for p in curve]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
