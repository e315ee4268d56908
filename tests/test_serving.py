"""The public app's disk budget and result files, without a server (the flood over HTTP is in test_app.py)."""
import os
import time
from pathlib import Path

import pytest

from PIL import Image

from stylize.serving import DiskBudget, ResultFiles

from .test_pipeline import photo


def aged(path: Path, seconds: float) -> Path:
    os.utime(path, (time.time() - seconds,) * 2)
    return path


def fitted(content, name, max_side):
    return photo(96, 64)


def test_unused_files_go_and_the_least_recently_used_make_room_but_fresh_ones_stay(tmp_path):
    budget = DiskBudget(tmp_path, limit_bytes=4000, unused_seconds=600)
    upload = tmp_path / "abc" / "photo.jpg"
    upload.parent.mkdir()
    files = {}
    for name, age in (("old", 700), ("a", 300), ("b", 200), ("fresh", 1)):
        files[name] = tmp_path / name
        files[name].write_bytes(b"x" * 1000)
        aged(files[name], age)
    upload.write_bytes(b"x" * 1000)
    aged(upload, 400)
    budget.touch(upload)  # re-sent by a slider move just now: recently used although its mtime is old
    assert budget.prune() == 4000 and not files["old"].exists()  # unused for longer than 600 s
    assert budget.prune(room_bytes=1500) == 2000  # the least recently used make room: a, then b
    assert [p.exists() for p in (files["a"], files["b"], files["fresh"], upload)] == [False, False, True, True]
    assert budget.reserve(2000) and not budget.reserve(1)  # fresh files are not removed to make room
    budget.release(2000)
    aged(files["fresh"], 100)
    assert budget.reserve(3000) and not files["fresh"].exists() and upload.exists()


def test_results_are_written_once_beside_the_uploads_and_stay_within_the_budget(tmp_path):
    budget = DiskBudget(tmp_path, limit_bytes=10**9, unused_seconds=600)
    results = ResultFiles(budget, fitted)
    assert results.folder.parent == tmp_path  # where the web server serves uploads from: no copy
    image = Image.new("RGB", (64, 48), "red")
    for _ in range(3):
        results.pair("photo.jpg", image)
    assert len(list(results.folder.iterdir())) == 4  # three results, one "before" shared by them
    for path in results.folder.iterdir():
        aged(path, 601)
    (before, after), download = results.pair("photo.jpg", image)
    assert download == after and Image.open(before).size == (64, 48)
    assert sorted(p.name for p in results.folder.iterdir()) == sorted([Path(before).name, Path(after).name])


def test_a_watched_task_runs_while_someone_waits_and_stops_between_steps_once_nobody_does():
    from stylize.serving import run_watched

    steps, ended = [], []

    def task(check):
        try:
            for step in range(200):
                check()
                steps.append(step)
                time.sleep(0.01)
            return "done"
        finally:
            ended.append(time.monotonic())

    def result_of(generator):
        shown = []
        try:
            while True:
                shown.append(next(generator))
        except StopIteration as stop:
            return shown, stop.value

    shown, result = result_of(run_watched(task, lambda: "working", every=0.05))
    assert result == "done" and len(steps) == 200 and shown and set(shown) == {"working"}  # shown while it ran
    steps.clear(), ended.clear()
    watched = run_watched(task, lambda: len(steps), every=0.05, patience=0.3)
    next(watched)  # then nobody asks again: a Stop, a closed page
    time.sleep(1.0)
    assert ended and len(steps) < 200  # it ended between two steps, long before its 200
    with pytest.raises(InterruptedError):
        list(watched)
