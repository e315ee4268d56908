"""What `tune_allocator` (stylize/allocator.py, called by the app and the CLI) does to a CPU's renders: the quality and
fast models' first stylisation and slider move at 1024 px, peak RSS, page faults, with glibc's default malloc and with
the tuned one. Each run is its own process, rendering from a worker thread as the app's requests do; the two settings
alternate, ROUNDS times each, and the table gives medians and tuned/default ratios. Not run by pytest.

    python bench/allocator.py                # writes bench/results/allocator.{md,json}
    python bench/allocator.py --tag _avx2    # another CPU's run beside it
"""
import argparse
import json
import resource
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from common import RESULTS, TAG_HELP, cpu_name

ROUNDS = 3
RUNS = [("quality", 1024, 2), ("fast", 1024, 3), ("quality", 2048, 1)]  # variant, px, repeats in a process
SETTINGS = ("default", "tuned")


def child(setting: str, variant: str, side: int, repeats: int) -> dict:
    if setting == "tuned":
        from stylize.allocator import tune_allocator

        assert tune_allocator(), "mallopt refused: not glibc?"
    import torch

    from speed import THREADS, child_ours

    torch.set_num_threads(THREADS)
    with ThreadPoolExecutor(1) as worker:  # Gradio runs a request's handler in a worker thread
        timings = worker.submit(child_ours, side, repeats, variant).result()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {**timings, "peak_rss_gib": usage.ru_maxrss / 2**20, "page_faults": usage.ru_minflt}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="", help=TAG_HELP)
    parser.add_argument("--child", nargs=4, metavar=("SETTING", "VARIANT", "SIDE", "REPEATS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        setting, variant, side, repeats = args.child
        print(json.dumps(child(setting, variant, int(side), int(repeats))))
        return
    runs: dict[str, list[dict]] = {}
    for round_ in range(ROUNDS):
        for variant, side, repeats in RUNS:
            if side > 1024 and round_ > 0:  # one 2048 px round: its peak RSS, not its seconds
                continue
            for setting in SETTINGS if round_ % 2 == 0 else reversed(SETTINGS):
                out = subprocess.run([sys.executable, __file__, "--child", setting, variant, str(side), str(repeats)],
                                     check=True, capture_output=True, text=True).stdout
                runs.setdefault(f"{variant} {side} {setting}", []).append(json.loads(out.splitlines()[-1]))
                print(variant, side, setting, runs[f"{variant} {side} {setting}"][-1], flush=True)
    medians = {key: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for key, rs in runs.items()}
    result = {"cpu": cpu_name(), "rounds": ROUNDS, "runs": runs, "medians": medians}
    (RESULTS / f"allocator{args.tag}.json").write_text(json.dumps(result, indent=2))
    lines = [f"glibc malloc, default and tuned (`tune_allocator`), on {result['cpu']}, 2 threads, a worker thread rendering "
             f"(`python bench/allocator.py`); medians of {ROUNDS} processes each at 1024 px, one at 2048 px.", "",
             "| model, px | measure | default | tuned | tuned / default |", "|---|---|---|---|---|"]
    for variant, side, _ in RUNS:
        default, tuned = medians[f"{variant} {side} default"], medians[f"{variant} {side} tuned"]
        measures = [("first stylisation s", "first_s"), ("slider move s", "slider_s")] if side <= 1024 else []
        for name, key in [*measures, ("peak RSS GiB", "peak_rss_gib"), ("page faults (k)", "page_faults")]:
            scale = 1e-3 if key == "page_faults" else 1
            lines.append(f"| {variant}, {side} | {name} | {default[key] * scale:.3f} | {tuned[key] * scale:.3f} | "
                         f"{tuned[key] / default[key]:.2f} |")
    (RESULTS / f"allocator{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
