"""Does the training data path scale? One command, CPU (not run by pytest):

    python bench/data_scale.py      # -> bench/results/data_scale.{json,md}

- peak RSS (the training process and its data workers) and wall time of a 2-step run at --size 256, batch 8, with a
  folder of 200 and of 2,000 images as both content and style (symlinks into ../shared/data);
- a streamed dataset (`--streaming`, an imagefolder of the same 2,000 images streamed by `datasets`): seconds to the
  first batch, examples/s drawn from it in the training process, and what an exact resume costs: rows/s the stream is
  read again (not decoded) up to a resumed run's position;
- decode + crop throughput of the data path: examples/s (one photo and one painting each, 256 px crops) drawn by
  DataLoader with 0, 1 and 2 worker processes on this machine, and the workers that 29.6 it/s at batch 8 (the CUDA-graph
  training rate in docs/performance.md) needs at the measured rate per worker.
"""
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from common import DATA, REPO, RESULTS, markdown_table

GPU_RATE = 29.6 * 8  # examples/s the CUDA-graph training loop consumes at batch 8 x 256 px


def run_and_watch(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS of the process tree in MB, wall seconds)."""
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            peak = max(peak, sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.02)
    if process.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({process.returncode})")
    return peak / 2**20, time.perf_counter() - started


def examples_per_second(workers: int, seconds: float = 20, size: int = 256, batch_size: int = 8) -> float:
    """Photos and paintings of ../shared/data drawn, decoded and cropped by the training loader with `workers` processes."""
    from train.data import Examples, ImageSource, loader

    examples = Examples((ImageSource.from_folder(DATA / "content"), ImageSource.from_folder(DATA / "style")), batch_size,
                        (size, size), 0, lambda uniform: ())
    batches = loader(examples, 0, workers, pin_memory=False)
    next(batches)  # the workers' start-up
    started, count = time.perf_counter(), 0
    while time.perf_counter() - started < seconds:
        count += len(next(batches)[0])
    return count / (time.perf_counter() - started)


def streamed(folder: Path, seconds: float = 20, size: int = 256, batch_size: int = 8) -> dict:
    """A streamed imagefolder as the training loader draws it: first batch, examples/s, and the replay of a resume."""
    from train.data import Examples, ImageSource, Stream

    started = time.perf_counter()
    source = ImageSource.from_dataset(str(folder), stream=Stream(seed=0, buffer=1000))
    examples = Examples((source, source), batch_size, (size, size), 0, lambda uniform: ())
    examples.batch(0)
    first_batch = time.perf_counter() - started
    started, step = time.perf_counter(), 1
    while time.perf_counter() - started < seconds:
        examples.batch(step)
        step += 1
    rate = (step - 1) * batch_size / (time.perf_counter() - started)
    replay = ImageSource.from_dataset(str(folder), stream=Stream(seed=0, buffer=1000))
    started = time.perf_counter()
    replay.read(1999)  # a run resumed at row 2,000 of this process's stream reads the rows before it again
    return {"first_batch_s": first_batch, "examples_per_s": rate, "replay_rows_per_s": 2000 / (time.perf_counter() - started)}


def main() -> None:
    images = (sorted((DATA / "content").glob("*.jpg")) + sorted((DATA / "style").glob("*.jpg")))[:2000]
    result = {"runs": [], "throughput": []}
    with tempfile.TemporaryDirectory() as tmp:
        for count in (200, 2000):
            folder = Path(tmp) / f"images{count}"
            folder.mkdir()
            for i, path in enumerate(images[:count]):
                (folder / f"{i:05d}{path.suffix}").symlink_to(path.resolve())
            rss, seconds = run_and_watch([sys.executable, "-m", "train.train", "--content-dir", str(folder), "--style-dir", str(folder),
                                          "--out", str(Path(tmp) / f"run{count}"), "--size", "256", "--batch-size", "8",
                                          "--iters", "2", "--sample-every", "1000", "--save-every", "1000", "--holdout", ""])
            result["runs"].append({"images": count, "peak_rss_mb": rss, "wall_s": seconds})
            print(result["runs"][-1], flush=True)
        result["streamed"] = streamed(folder)
        print(result["streamed"], flush=True)
    for workers in (0, 1, 2):
        result["throughput"].append({"workers": workers, "examples_per_s": examples_per_second(workers)})
        print(result["throughput"][-1], flush=True)
    per_worker = result["throughput"][1]["examples_per_s"]
    result["workers_for_gpu_rate"] = math.ceil(GPU_RATE / per_worker)
    (RESULTS / "data_scale.json").write_text(json.dumps(result, indent=2))
    small, large = result["runs"]
    lines = ["The training data path on this CPU (2 cores), `python bench/data_scale.py`: a 2-step run at --size 256, batch 8, "
             "with the same folder as content and style; peak RSS of the training process and its data workers.", "",
             *markdown_table(["images", "peak RSS MB", "wall s (start-up + 2 steps)"],
                             [[r["images"], f"{r['peak_rss_mb']:.0f}", f"{r['wall_s']:.1f}"] for r in result["runs"]]), "",
             f"2,000 against 200 images: {large['peak_rss_mb'] - small['peak_rss_mb']:+.0f} MB (target ≤ +100 MB: "
             f"{'met' if large['peak_rss_mb'] - small['peak_rss_mb'] <= 100 else 'missed'}), {large['wall_s'] - small['wall_s']:+.1f} s.", "",
             "Decode + crop throughput (one photo and one painting of ../shared/data per example, 256 px crops):", "",
             *markdown_table(["DataLoader workers", "examples/s"],
                             [[t["workers"], f"{t['examples_per_s']:.1f}"] for t in result["throughput"]]), "",
             f"At {per_worker:.1f} examples/s per worker, 29.6 it/s at batch 8 ({GPU_RATE:.0f} examples/s) needs "
             f"{result['workers_for_gpu_rate']} worker processes (one core each) per GPU.", "",
             "The same 2,000 images streamed (`--streaming`: `datasets` streaming an imagefolder, shuffle buffer 1,000): "
             f"the first batch after {result['streamed']['first_batch_s']:.1f} s, then "
             f"{result['streamed']['examples_per_s']:.1f} examples/s read in the training process (no data workers). "
             f"An exact resume reads the stream again up to its position, without decoding: "
             f"{result['streamed']['replay_rows_per_s']:.0f} rows/s here, i.e. "
             f"{100_000 / result['streamed']['replay_rows_per_s'] / 60:.1f} minutes for a run resumed 100,000 rows in "
             "(from the Hub, the download of those rows' bytes comes on top)."]
    (RESULTS / "data_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
