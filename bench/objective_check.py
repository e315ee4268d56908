"""Can the adversarial and cycle terms lower the measured distances at all? Not run by pytest.

    python bench/objective_check.py                 # -> bench/results/objective_check.json

The quality target asks the default λ to beat the no-GAN λ (adversarial and cycle weights at their range minimum) on
content and on style distance. A generator only approximates the image that minimises its λ's objective, so this
takes the generator out: each validation pair's image is optimised directly (the app's refine, Adam, from the photo)
once under the default λ and once under the no-GAN λ, the two runs drawing the same noise, and both results are
measured like bench/quality.py measures outputs. If even the optimised images under the default λ do not beat the
no-GAN ones on both axes, no amount of training can make the generator's default do so.
"""
import argparse
import json
import statistics

import torch

from common import RESULTS, Metrics, to_tensor
from defaults_scan import dominates, validation_images

from stylize.pipeline import Stylizer

MEASURES = ("content_relu4_1", "content_lpips_like", "style_gram", "style_mean_std", "tv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: the embedded one)")
    parser.add_argument("--contents", type=int, default=4)
    parser.add_argument("--styles", type=int, default=4)
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--steps", type=int, nargs="+", default=[30, 100], help="optimisation budgets, each a separate run")
    args = parser.parse_args()
    torch.set_num_threads(2)
    stylizer = Stylizer.from_pretrained(args.model, device="cpu")
    metrics = Metrics(stylizer.generator.encoder)
    content_paths, style_paths, contents, styles = validation_images(args.contents, args.styles, args.side)
    settings = {
        "default": stylizer.resolve_lambdas(None),
        "no_gan": stylizer.resolve_lambdas({n: stylizer.lambda_ranges[n][0] for n in ("adv", "cycle")}),
    }
    results = {}
    for steps in args.steps:
        per_setting = {name: [] for name in settings}
        for i, content in enumerate(contents):
            for j, style in enumerate(styles):
                photo = to_tensor(content)
                for name, lambdas in settings.items():
                    image = stylizer.refine(photo, content, style, lambdas, steps, seed=i * len(styles) + j)
                    per_setting[name].append(metrics(image, photo, to_tensor(style)))
        results[steps] = {name: {m: statistics.fmean(s[m] for s in scores) for m in MEASURES} for name, scores in per_setting.items()}
        print(steps, "steps:", json.dumps(results[steps]), flush=True)
    summary = {
        "model": args.model or "embedded default", "pairs": f"{len(contents)} x {len(styles)}", "side": args.side,
        "start": "the photo", "optimiser": "Adam lr 0.01 (Stylizer.refine)",
        "lambdas": {name: dict(zip(stylizer.lambda_ranges, t[0].tolist())) for name, t in settings.items()},
        "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths],
        "by_steps": results,
        "default_dominates": {steps: dominates(r["default"], r["no_gan"]) for steps, r in results.items()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "objective_check.json").write_text(json.dumps(summary, indent=2))
    print("default dominates no-GAN:", summary["default_dominates"])


if __name__ == "__main__":
    main()
