"""Server memory under distinct large uploads: RSS after each of N distinct 2048 px stylisations, with the pipeline's
byte-bounded encoding cache and with the cache unbounded (what a count-bounded cache amounts to at this size), each
in a fresh process. Not run by pytest.

    python bench/cache_memory.py             # -> bench/results/cache_memory.{json,md}
"""
import argparse
import json
import subprocess
import sys

from common import RESULTS

UNBOUNDED = 1 << 40


def child(requests: int, side: int, cache_bytes: int) -> dict:
    import numpy as np
    import psutil
    import torch

    from stylize.pipeline import Stylizer

    torch.set_num_threads(2)
    process = psutil.Process()
    stylizer = Stylizer.from_pretrained(device="cpu", cache_bytes=cache_bytes)
    loaded = process.memory_info().rss
    rng = np.random.default_rng(0)
    style = (rng.random((512, 512, 3)) * 255).astype(np.uint8)
    rss = []
    for i in range(requests):
        yy, xx = np.mgrid[0:side * 2 // 3, 0:side]
        upload = np.stack([xx % (50 + i), yy % (30 + 7 * i), (xx + yy) % 90], -1).astype(np.uint8) * 2  # distinct
        stylizer(upload, style, max_side=side)
        rss.append(process.memory_info().rss)
        print(f"request {i + 1}: RSS {rss[-1] / 2**30:.2f} GiB, cache {stylizer.cache.nbytes / 2**30:.2f} GiB", file=sys.stderr, flush=True)
    return {"cache_bytes": cache_bytes, "rss_loaded": loaded, "rss_after": rss, "cache_held": stylizer.cache.nbytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=10)
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.requests, args.side, args.child)))
        return
    from stylize.encoding_cache import CACHE_BYTES

    runs = {}
    for name, budget in (("bounded (CACHE_BYTES)", CACHE_BYTES), ("unbounded", UNBOUNDED)):
        done = subprocess.run([sys.executable, __file__, "--requests", str(args.requests), "--side", str(args.side),
                               "--child", str(budget)], capture_output=True, text=True, check=True)
        runs[name] = json.loads(done.stdout)
    gib = 2**30
    lines = [f"{args.requests} distinct uploads stylised at {args.side} px on the CPU, one process per row; RSS in GiB.", "",
             "| cache | budget GiB | RSS loaded | RSS after 1 | RSS after last | max RSS after a request | cache held at the end |",
             "|---|---|---|---|---|---|---|"]
    for name, r in runs.items():
        budget = f"{r['cache_bytes'] / gib:.1f}" if r["cache_bytes"] < UNBOUNDED else "∞"
        lines.append(f"| {name} | {budget} | {r['rss_loaded'] / gib:.2f} | {r['rss_after'][0] / gib:.2f} | "
                     f"{r['rss_after'][-1] / gib:.2f} | {max(r['rss_after']) / gib:.2f} | {r['cache_held'] / gib:.2f} |")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "cache_memory.json").write_text(json.dumps(runs, indent=2))
    (RESULTS / "cache_memory.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
