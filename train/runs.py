"""What training and distillation share: options written once (default, help, range), and a run folder in which nothing is lost unasked and
whose log survives a kill."""
import argparse
import csv
import logging
import math
from dataclasses import field, fields
from pathlib import Path

from stylize.checkpoint import atomic_write

log = logging.getLogger("stylize.train")

EMULATED_AMP_WARNING = "--amp on a CPU without AMX: bf16 is emulated here and runs several times slower than fp32; drop --amp"
# What a run leaves in its folder; any of them means the folder holds a run someone may want back.
RUN_ENTRIES = ("log.csv", "resume.pt", "distill.pt", "model", "fast", "samples")


EVERY = math.inf


def option(default, help: str, lowest: float | None = None, highest: float | None = None):
    """A config field with its --help text and, for a number, its range: each option written once."""
    return field(default=default, metadata={"help": help, "range": None if lowest is None else (lowest, highest)})


def options_parser(config_class, description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A --flag for every `option` of `config_class`: booleans as switches, tuples as a fixed count of integers."""
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(config_class):
        if "help" not in f.metadata:
            continue
        flag, help = "--" + f.name.replace("_", "-"), f.metadata["help"]
        if isinstance(f.default, bool):
            parser.add_argument(flag, action="store_true", help=help)
        elif isinstance(f.default, tuple):
            parser.add_argument(flag, type=int, nargs=len(f.default), default=f.default, help=help)
        else:
            parser.add_argument(flag, type=type(f.default), default=f.default, help=help)
    return parser


def check_option_ranges(parser, cfg) -> None:
    """parser.exit in one line for a number outside its option's range (NaN is in none), before anything is loaded."""
    for f in fields(cfg):
        if not f.metadata.get("range"):
            continue
        lowest, highest = f.metadata["range"]
        values = getattr(cfg, f.name)
        for value in values if isinstance(values, (list, tuple)) else [values]:
            if not lowest <= value <= highest:
                span = f">= {lowest:g}" if highest == EVERY else f"in [{lowest:g}, {highest:g}]"
                parser.exit(2, f"{parser.prog}: error: --{f.name.replace('_', '-')} must be {span}, got {value}\n")


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
