"""CPU training speed: iterations/s of the real loop at 128 and 256 px (batch 4, 2 threads). Not run by pytest.

    python bench/train_speed.py          # writes bench/results/train_speed_cpu.json
"""
import csv
import json
import sys
import tempfile
from pathlib import Path

import torch

from common import DATA, RESULTS, REPO  # noqa: F401 - common puts the repo on sys.path

sys.path.insert(0, str(REPO))
from train.train import main as train_main  # noqa: E402

PLAN = [(128, 4, 12), (256, 4, 5)]  # size, batch, steps (the first 2 are warm-up)


def main() -> None:
    torch.set_num_threads(2)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in ("content", "style"):  # 16 real images each: the step cost does not depend on the set size
            (tmp / kind).mkdir()
            for path in sorted((DATA / kind).glob("*.jpg"))[:16]:
                (tmp / kind / path.name).symlink_to(path)
        for size, batch, steps in PLAN:
            out = tmp / f"run{size}"
            assert train_main(["--content-dir", str(tmp / "content"), "--style-dir", str(tmp / "style"), "--out", str(out),
                               "--size", str(size), "--batch-size", str(batch), "--iters", str(steps), "--log-every", "1",
                               "--sample-every", "100000", "--save-every", "100000"]) == 0
            with (out / "log.csv").open() as f:
                seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
            per_step = (seconds[-1] - seconds[1]) / (len(seconds) - 2)
            rows.append({"size": size, "batch": batch, "timed_steps": len(seconds) - 2, "s_per_step": per_step, "it_per_s": 1 / per_step})
            print(rows[-1], flush=True)
    (RESULTS / "train_speed_cpu.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
