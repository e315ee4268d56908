"""Training speed: iterations/s of the real loop (python -m train.train). Not run by pytest.

    python bench/train_speed.py                  # CPU, 2 threads: 128 and 256 px, batch 4, fp32 and bf16 -> train_speed_cpu.json
    python bench/train_speed.py --device cuda    # 256 px: eager, bf16, bf16 + torch.compile, + CUDA graphs (batch 8, 32)
                                                 # -> train_speed_cuda.json
Timed steps exclude the first ones (warm-up, compilation); the loop waits for the device once per step, so the
log's wall-clock seconds are device time.
"""
import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from common import DATA, RESULTS, REPO, markdown_table

# (name, size, batch, steps, warm-up steps, extra flags)
PLANS = {
    # bf16 autocast pays on a CPU with AMX (oneDNN's matrix tiles); elsewhere it is emulated, slower than fp32
    "cpu": [("eager", 128, 4, 12, 2, []), ("eager", 256, 4, 5, 2, []),
            ("bf16", 128, 4, 12, 2, ["--amp"]), ("bf16", 256, 4, 5, 2, ["--amp"])],
    # most telling first: a run stopped at its time limit keeps the rows it finished
    "cuda": [("bf16", 256, 8, 60, 10, ["--amp"]),
             ("bf16 + compile + CUDA graphs", 256, 8, 80, 30, ["--amp", "--compile", "reduce-overhead"]),
             ("eager fp32", 256, 8, 50, 10, []),
             ("bf16 + compile", 256, 8, 80, 30, ["--amp", "--compile", "default"]),
             # the batch the fine-tunes use: are CUDA graphs still worth their compile time there?
             ("bf16", 256, 32, 40, 10, ["--amp"]),
             ("bf16 + compile + CUDA graphs", 256, 32, 60, 30, ["--amp", "--compile", "reduce-overhead"])],
}


def markdown(result: dict) -> str:
    """The rows as a table, each variant's rate also against the first row's (the baseline of the same run)."""
    rows = [r for r in result["rows"] if "error" not in r]
    base = rows[0]["it_per_s"] if rows else None
    lines = [f"{result['device']}, torch {result['torch']}: the real training loop (`python -m train.train`), 16 real images; "
             "warm-up (and compilation) excluded.", ""]
    lines += markdown_table(
        ["variant", "batch × px", "it/s", "images/s", "vs the first row", "warm-up + compile s"],
        [[r["variant"], f"{r['batch']} × {r['size']}", *([r["error"], "", "", ""] if "error" in r else [
            f"{r['it_per_s']:.2f}", f"{r['it_per_s'] * r['batch']:.0f}", f"{r['it_per_s'] / base:.2f}", f"{r['warmup_s']:.1f}"])]
         for r in result["rows"]])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--markdown-from", type=Path, help="write the .md of an earlier result JSON and stop")
    parser.add_argument("--device", choices=sorted(PLANS), default="cpu")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with content/ and style/ (default: the shared data)")
    parser.add_argument("--out", type=Path, default=None, help="result file (default bench/results/train_speed_DEVICE.json)")
    args = parser.parse_args()
    if args.markdown_from:
        args.markdown_from.with_suffix(".md").write_text(markdown(json.loads(args.markdown_from.read_text())))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "2"} if args.device == "cpu" else dict(os.environ)
    out_file = args.out or RESULTS / f"train_speed_{args.device}.json"
    out_file.parent.mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu (2 threads)"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in ("content", "style"):  # 16 real images each: the step cost does not depend on the set size
            (tmp / kind).mkdir()
            for path in sorted((args.data / kind).glob("*.jpg"))[:16]:
                (tmp / kind / path.name).symlink_to(path.resolve())
        for i, (name, size, batch, steps, warmup, flags) in enumerate(PLANS[args.device]):
            out = tmp / f"run{i}"
            try:
                subprocess.run([sys.executable, "-m", "train.train", "--content-dir", str(tmp / "content"), "--style-dir", str(tmp / "style"),
                                "--out", str(out), "--device", args.device, "--size", str(size), "--batch-size", str(batch),
                                "--iters", str(steps), "--log-every", "1", "--sample-every", "100000", "--save-every", "100000", *flags],
                               cwd=REPO, env=env, check=True)
                with (out / "log.csv").open() as f:
                    seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
                per_step = (seconds[-1] - seconds[warmup - 1]) / (len(seconds) - warmup)
                row = {"variant": name, "size": size, "batch": batch, "timed_steps": len(seconds) - warmup,
                       "warmup_s": seconds[warmup - 1], "s_per_step": per_step, "it_per_s": 1 / per_step}
            except Exception as err:  # one failing variant (e.g. a compile error) must not hide the others
                row = {"variant": name, "size": size, "batch": batch, "error": f"{type(err).__name__}: {err}"[:400]}
            rows.append(row)
            print(row, flush=True)
            result = {"device": device_name, "torch": torch.__version__, "rows": rows}
            out_file.write_text(json.dumps(result, indent=2))
            out_file.with_suffix(".md").write_text(markdown(result))


if __name__ == "__main__":
    main()
