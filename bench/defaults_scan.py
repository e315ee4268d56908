"""Choose the default adversarial and cycle weights on validation pairs: held-out images that bench/quality.py does
not use (halfway between its picks), so the quality table stays a test the choice never saw. Not run by pytest.

    python bench/defaults_scan.py --model runs/x/model            # prints the grid, writes bench/results/defaults_scan.json
    python bench/defaults_scan.py --model runs/x/model --write    # also stores the choice in the model's config.json
    python bench/defaults_scan.py --model runs/x/model --content 2 --cycle 0.5 1 2 5   # scan at another λ_content
    python bench/defaults_scan.py --model weights --adv 0.001 0.002 0.004 0.01 --cycle 0.001 0.003 0.01 0.03 0.1 0.3 1 --out defaults_scan_corner.json

Each (adv, cycle) point of a log grid over the trained ranges is scored by mean distances over the pairs, the other
weights at their defaults (λ_content: --content). The reference is the no-GAN point (adv and cycle at their range minimum). Eligible: points
no worse than it on content and better on both style distances; chosen: the eligible point with the lowest
(1 + content) x (1 + style mean/std), the peer comparison's product. None eligible: the defaults stay.
"""
import argparse
import json
import statistics
from pathlib import Path

import torch

from common import RESULTS, Metrics, held_out, load, to_tensor

from stylize.pipeline import Stylizer

GRID = {"adv": (0.01, 0.03, 0.1, 0.3, 1.0), "cycle": (0.01, 0.05, 0.2, 0.5, 2.0)}


def validation_images(contents: int, styles: int, side: int) -> tuple[list[Path], list[Path], list, list]:
    """Held-out files halfway between bench/quality.py's picks: content paths, style paths, content images, style images."""
    content_paths, style_paths = held_out("content", contents, offset=0.5), held_out("style", styles, offset=0.5)
    return content_paths, style_paths, [load(p, side) for p in content_paths], [load(p, side) for p in style_paths]


def encoded_pairs(stylizer: Stylizer, contents: list, styles: list) -> list:
    """Every (content, style) pair as (content encoding, content tensor, style encoding, style tensor)."""
    return [(stylizer.encode_content(c), to_tensor(c), stylizer.encode_style(s), to_tensor(s)) for c in contents for s in styles]


def dominates(point: dict, reference: dict) -> bool:
    """The quality target against the no-GAN point: no worse on each content distance measured, better on both style distances."""
    content_measures = [m for m in ("content_relu4_1", "content_lpips_like") if m in reference]
    return (all(point[m] <= reference[m] for m in content_measures)
            and all(point[m] < reference[m] for m in ("style_gram", "style_mean_std")))


@torch.no_grad()
def score(stylizer: Stylizer, metrics: Metrics, pairs, weights: dict) -> dict:
    lambdas = stylizer.resolve_lambdas(weights)
    scores = [metrics(stylizer.stylize_tensor(c_enc, s_enc, lambdas), c, s) for c_enc, c, s_enc, s in pairs]
    mean = {k: statistics.fmean(sc[k] for sc in scores) for k in ("content_relu4_1", "style_gram", "style_mean_std")}
    mean["product"] = (1 + mean["content_relu4_1"]) * (1 + mean["style_mean_std"])
    return {**weights, **mean}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model folder (its config.json is what --write changes)")
    parser.add_argument("--contents", type=int, default=6)
    parser.add_argument("--styles", type=int, default=6)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--content", type=float, help="λ_content of every point, reference included (default: the model's)")
    parser.add_argument("--adv", type=float, nargs="+", default=GRID["adv"], help="λ_adv values of the grid")
    parser.add_argument("--cycle", type=float, nargs="+", default=GRID["cycle"], help="λ_cycle values of the grid")
    parser.add_argument("--out", default="defaults_scan.json", help="file name under bench/results/ (default %(default)s)")
    parser.add_argument("--write", action="store_true", help="store the chosen defaults (adv, cycle, and --content) in config.json")
    args = parser.parse_args()
    torch.set_num_threads(2)
    stylizer = Stylizer.from_pretrained(args.model, device="cpu")
    metrics = Metrics(stylizer.generator.encoder)
    content_paths, style_paths, contents, styles = validation_images(args.contents, args.styles, args.side)
    pairs = encoded_pairs(stylizer, contents, styles)

    fixed = {} if args.content is None else {"content": args.content}
    low = {n: stylizer.lambda_ranges[n][0] for n in GRID}
    reference = score(stylizer, metrics, pairs, {**fixed, **low})
    print("no-GAN", {k: round(v, 4) for k, v in reference.items()}, flush=True)
    grid = []
    for adv in args.adv:
        for cycle in args.cycle:
            point = score(stylizer, metrics, pairs, {**fixed, "adv": adv, "cycle": cycle})
            point["eligible"] = dominates(point, reference)
            grid.append(point)
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in point.items()}, flush=True)
    eligible = [p for p in grid if p["eligible"]]
    chosen = min(eligible, key=lambda p: p["product"]) if eligible else None
    result = {"model": args.model, "pairs": f"{len(contents)} x {len(styles)}", "side": args.side,
              "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths],
              "no_gan": reference, "grid": grid, "chosen": chosen}
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.out).write_text(json.dumps(result, indent=2))
    print("chosen:", chosen)
    if args.write and chosen:
        config_path = Path(args.model) / "config.json"
        config = json.loads(config_path.read_text())
        config["lambdas"]["defaults"].update({k: chosen[k] for k in ("content", "adv", "cycle") if k in chosen})
        config["lambdas"]["defaults_chosen_by"] = "bench/defaults_scan.py on validation pairs (results/defaults_scan.json)"
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        print("wrote", config_path)


if __name__ == "__main__":
    main()
