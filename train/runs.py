"""What training and distillation share: options written once (default, help, range), an entry point that turns
their expected failures into one line, a run folder in which nothing is lost unasked, resume checks, and a log
(log.csv, and TensorBoard if asked) that survives a kill."""
import argparse
import csv
import logging
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from stylize.checkpoint import atomic_write

log = logging.getLogger("stylize.train")

EMULATED_AMP_WARNING = "--amp on a CPU without AMX: bf16 is emulated here and runs several times slower than fp32; drop --amp"
# What a run leaves in its folder; any of them means the folder holds a run someone may want back.
RUN_ENTRIES = ("log.csv", "resume.pt", "distill.pt", "model", "fast", "samples")


EVERY = math.inf


def option(default, help: str, lowest: float | None = None, highest: float | None = None, choices: tuple = ()):
    """A config field with its --help text and, for a number, its range (for a string, its choices): each option
    written once."""
    return field(default=default, metadata={"help": help, "range": None if lowest is None else (lowest, highest),
                                            "choices": choices or None})


@dataclass
class ReportOptions:
    report_to: str = option("", "'tensorboard': the numbers of log.csv (and training's sample grids) under "
                                "OUT/tensorboard too (pip install tensorboard)", choices=("", "tensorboard"))


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
            parser.add_argument(flag, type=type(f.default), default=f.default, choices=f.metadata.get("choices"), help=help)
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


def check_resume_flags(path: Path, saved: dict, cfg, names: tuple[str, ...]) -> None:
    """The flags that shape the models must be the ones the run started with; a mismatch is one line naming them."""
    current = asdict(cfg)
    for name in names:
        if name not in saved or saved[name] == current[name]:
            continue
        flag = "--" + name.replace("_", "-")
        if isinstance(saved[name], bool):
            held = f"was run {'with' if saved[name] else 'without'} {flag}"
            fix = f"{'add' if saved[name] else 'drop'} {flag}"
        else:
            held, fix = f"was run with {flag} {saved[name]}, not {current[name]}", f"{flag} {saved[name]}"
        raise ValueError(f"--resume: {path} {held}; resume with the flags the run started with ({fix})")


def tensorboard_writer(out: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ValueError("--report-to tensorboard needs the tensorboard package: pip install tensorboard") from None
    return SummaryWriter(str(out / "tensorboard"))


class RunLog:
    """OUT/log.csv, a row at a time (cut back to the resumed step on --resume), and with `report_to="tensorboard"` the
    same numbers as TensorBoard scalars under OUT/tensorboard."""

    def __init__(self, out: Path, columns: list[str], resumed_step: int | None, report_to: str = ""):
        self.path, self.columns = out / "log.csv", columns
        start_log(self.path, columns, resumed_step)
        self.board = tensorboard_writer(out) if report_to == "tensorboard" else None

    def write(self, row: dict, scalars: dict[str, float]) -> None:
        """`row` into log.csv; `scalars` (TensorBoard tag -> value) onto the board at the row's step."""
        append_log_row(self.path, self.columns, row)
        if self.board is not None:
            for tag, value in scalars.items():
                self.board.add_scalar(tag, value, row["step"])

    def image(self, tag: str, picture, step: int) -> None:
        if self.board is not None:
            import numpy as np
            import torch

            self.board.add_image(tag, torch.from_numpy(np.array(picture)).permute(2, 0, 1), step)

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def entry_point(parse_args, run, expected: tuple[type[Exception], ...], logger_name: str):
    """main(argv) -> exit status of a training script: its config parsed, the run run, an `expected` failure (bad data,
    a broken checkpoint, a diverged loss) one logged line and status 1 rather than a traceback."""
    def main(argv=None) -> int:
        cfg = parse_args(argv)
        try:
            run(cfg)
        except expected as err:
            logging.getLogger(logger_name).error("error: %s", err)
            return 1
        return 0
    return main
