"""What training and distillation share: their options' ranges, and a run folder in which nothing is lost unasked and
whose log survives a kill."""
import csv
import logging
import math
from pathlib import Path

from stylize.checkpoint import atomic_write

log = logging.getLogger("stylize.train")

EMULATED_AMP_WARNING = "--amp on a CPU without AMX: bf16 is emulated here and runs several times slower than fp32; drop --amp"
# What a run leaves in its folder; any of them means the folder holds a run someone may want back.
RUN_ENTRIES = ("log.csv", "resume.pt", "distill.pt", "model", "fast", "samples")


EVERY = math.inf


def check_option_ranges(parser, cfg, ranges: dict[str, tuple[float, float]]) -> None:
    """parser.error for a number outside its range (NaN is in none), before anything is loaded or allocated."""
    for name, (lowest, highest) in ranges.items():
        values = getattr(cfg, name)
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if not lowest <= value <= highest:
                span = f">= {lowest:g}" if highest == EVERY else f"in [{lowest:g}, {highest:g}]"
                parser.exit(2, f"{parser.prog}: error: --{name.replace('_', '-')} must be {span}, got {value}\n")


class RunFolderError(ValueError):
    pass


def claim_run_folder(out: Path, resume: bool, overwrite: bool, state_name: str) -> None:
    """Refuse, before any work, to start over in a folder holding a run, unless --overwrite says so."""
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder")
    held = [name for name in RUN_ENTRIES if (out / name).exists()]
    if resume and not (out / state_name).is_file():
        raise FileNotFoundError(f"--resume: no resume state at {out / state_name}")
    if held and not resume and not overwrite:
        raise RunFolderError(f"{out} already holds a run ({', '.join(held)}): --resume continues it, "
                             "--overwrite starts a new one in its place, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    for stale in [*out.glob(".*.tmp"), *out.glob("*/.*.tmp")]:  # atomic_write's temp files left by a kill mid-save
        stale.unlink(missing_ok=True)
        log.info("removed %s, left by an interrupted save", stale)


def start_log(path: Path, columns: list[str], resumed_step: int | None) -> None:
    """A fresh log (header only), or a resumed one cut back to the resumed step: a run killed after logging a row but
    before saving its state had logged steps that the resumed run will log again."""
    header = ",".join(columns) + "\n"
    if resumed_step is None or not path.is_file():
        atomic_write(path, lambda tmp: tmp.write_text(header))
        return
    lines = path.read_text().splitlines(keepends=True)
    kept = [header] + [line for line in lines[1:]
                       if line.split(",", 1)[0].isdigit() and int(line.split(",", 1)[0]) <= resumed_step]
    if kept != lines:
        atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))

def append_log_row(path: Path, columns: list[str], row: dict) -> None:
    with path.open("a", newline="") as f:
        csv.DictWriter(f, columns).writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
