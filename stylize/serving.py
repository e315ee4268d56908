"""What a public app needs around the Stylizer: one disk budget for uploads and results, enforced on the upload route
itself, result files written where the web server serves them, and slider renders before long refines."""
import json
import math
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from .checks import MAX_SIDE


# One disk budget holds every upload and every result (STYLIZE_DISK_MB); what nobody has used for UNUSED_SECONDS goes,
# and past the budget the least recently used go first. At 2048 px a slider move writes ~9 MB (a JPEG to show, a PNG
# to download); a photo at the decoder's limit (64 MP) is 24-48 MB as a camera JPEG (3-6 bits a pixel).
DISK_BYTES = int(os.environ.get("STYLIZE_DISK_MB", "2048")) * 2**20
UNUSED_SECONDS = float(os.environ.get("STYLIZE_UNUSED_SECONDS", "900"))
MAX_UPLOAD_BYTES = 50 * 2**20

class DiskBudget:
    """A folder's files (uploads, results) kept under `limit_bytes`: files unused for `unused_seconds` are removed, and
    where room is still short, the least recently used go first, except those used in the last FRESH_SECONDS (an
    upload still being written, a picture just sent). "Used" is the file's modification time, or a later `touch` (a
    slider move re-sends the same upload; its mtime stays, so decoded-image caches keyed on it stay valid)."""

    FRESH_SECONDS = 30.0

    def __init__(self, folder: Path, limit_bytes: int, unused_seconds: float):
        self.folder, self.limit_bytes, self.unused_seconds = Path(folder), int(limit_bytes), unused_seconds
        self.last_used: dict[str, float] = {}
        self.reserved = 0  # bytes of uploads in flight, not yet on disk in full
        self.lock = threading.Lock()

    def touch(self, *paths) -> None:
        now = time.time()
        with self.lock:
            for path in paths:
                if isinstance(path, (str, Path)):
                    self.last_used[str(path)] = now

    def files(self) -> list[tuple[float, int, Path]]:
        """(last use, bytes, path) of every file under the folder."""
        found = []
        for root, _, names in os.walk(self.folder):
            for name in names:
                path = Path(root, name)
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed meanwhile by another request
                    continue
                found.append((max(stat.st_mtime, self.last_used.get(str(path), 0.0)), stat.st_size, path))
        return found

    def prune(self, room_bytes: int = 0) -> int:
        """Removes what is unused for too long, then the least recently used files until `room_bytes` more would fit.
        -> the bytes the folder holds after."""
        with self.lock:
            cutoff, kept = time.time() - self.unused_seconds, []
            for used, size, path in self.files():
                if used < cutoff:
                    self.remove(path)
                else:
                    kept.append((used, size, path))
            held = sum(size for _, size, _ in kept)
            fresh = time.time() - self.FRESH_SECONDS
            for _, size, path in sorted(f for f in kept if f[0] < fresh):
                if held + self.reserved + room_bytes <= self.limit_bytes:
                    break
                self.remove(path)
                held -= size
            self.last_used = {p: t for p, t in self.last_used.items() if t >= cutoff}
            return held

    def remove(self, path: Path) -> None:
        """The file, and its folder once empty (the upload route makes one per upload)."""
        path.unlink(missing_ok=True)
        if path.parent != self.folder:
            try:
                path.parent.rmdir()
            except OSError:  # not empty, or gone
                pass

    def reserve(self, nbytes: int) -> bool:
        """Room for an upload of `nbytes`, kept for it until `release`; False where there is none even after pruning.
        The part of an upload already on disk counts twice, as a file and as a reservation: the bound holds."""
        held = self.prune(nbytes)
        with self.lock:
            if held + self.reserved + nbytes > self.limit_bytes:
                return False
            self.reserved += nbytes
            return True

    def release(self, nbytes: int) -> None:
        with self.lock:
            self.reserved -= nbytes

    def keep_pruning(self, every_seconds: float) -> threading.Thread:
        """A daemon thread that prunes every `every_seconds`: unused uploads go even when nobody else arrives."""
        def loop():
            while True:
                time.sleep(every_seconds)
                self.prune()

        thread = threading.Thread(target=loop, name="disk-budget", daemon=True)
        thread.start()
        return thread


class UploadBudget:
    """ASGI middleware on the web server's upload route: a request is read only once the disk budget has made room
    for it (its Content-Length, else `max_request_bytes`); a body longer than that is cut off. Other requests pass."""

    def __init__(self, app, budget: DiskBudget, max_request_bytes: int, upload_path: str = "/gradio_api/upload"):
        self.app, self.budget, self.max_request_bytes, self.upload_path = app, budget, max_request_bytes, upload_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or not scope["path"].endswith(self.upload_path):
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        nbytes = int(declared) if declared and declared.isdigit() else self.max_request_bytes
        if nbytes > self.max_request_bytes:
            return await respond(send, 413, f"an upload may hold at most {self.max_request_bytes // 2**20} MB")
        if not self.budget.reserve(nbytes):
            return await respond(send, 507, "the server's upload space is full: try again in a few minutes")
        received = 0

        async def counted_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return {"type": "http.disconnect"} if received > nbytes else message

        try:
            await self.app(scope, counted_receive, send)
        finally:
            self.budget.release(nbytes)


async def respond(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


class RendersFirst:
    """Refine waits between its steps while a render runs: on a shared CPU a slider move must not wait for a refine."""

    def __init__(self):
        self.running = 0
        self.idle = threading.Condition()

    @contextmanager
    def render(self):
        with self.idle:
            self.running += 1
        try:
            yield
        finally:
            with self.idle:
                self.running -= 1
                self.idle.notify_all()

    def wait_for_renders(self) -> None:
        with self.idle:
            self.idle.wait_for(lambda: self.running == 0)


class ResultFiles:
    """Results written where the web server serves them from without a copy (the uploads' folder), under its
    DiskBudget. `fitted(path, name, max_side)` gives the photo as the pipeline fitted it (Stylizer.fitted)."""

    def __init__(self, budget: DiskBudget, fitted):
        self.budget, self.fitted = budget, fitted
        self.folder = budget.folder / f"stylize-{os.getpid()}-{time.time_ns()}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.photos: dict[tuple[str, tuple[int, int]], Path] = {}  # a slider move shows the same "before"

    def new_file(self, prefix: str, suffix: str, room_bytes: int) -> Path:
        """A fresh name in the folder, once the budget has made room for `room_bytes`."""
        self.budget.prune(room_bytes=room_bytes)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.photos = {key: path for key, path in self.photos.items() if path.is_file()}
        return self.folder / f"{prefix}-{time.time_ns()}{suffix}"

    def pair(self, content, result) -> tuple[tuple[str, str], str]:
        """((before, after), after): the before/after view and the download share one PNG (the API's answer, refine)."""
        after = self.download(result)
        return (self.photo(content, result.size), after), after

    def view(self, content, result) -> tuple[str, str]:
        """(before, after) for the page's view. The after is a JPEG: at 1024 px 9 ms to write against 125 ms for the
        PNG and a third of its bytes to send and decode, 1.5 grey levels off on average; the page's download, the PNG,
        follows it."""
        after = self.new_file("view", ".jpg", 3 * result.width * result.height)  # raw RGB: more than a JPEG takes
        result.save(after, quality=95, subsampling=0)  # 4:4:4: a painting's colour edges stay sharp
        return self.photo(content, result.size), str(after)

    def download(self, result) -> str:
        after = self.new_file("stylized", ".png", 3 * result.width * result.height)
        result.save(after, compress_level=1)  # fast PNG: the full-resolution download
        return str(after)

    def clip(self, seconds: float, size: tuple[int, int]) -> Path:
        """A name for a painted clip of `seconds` at `size`, room made for it: H.264 at crf 18 takes under a twentieth
        of the raw frames at 24 a second."""
        return self.new_file("painted", ".mp4", int(3 * size[0] * size[1] * 24 * seconds / 20) + 2**20)

    def photo(self, content, size: tuple[int, int]) -> str:
        """The photo as the pipeline fitted it for this render (decoded once, in Stylizer.fitted), at the result's size."""
        key = (str(content), size)
        if not self.photos.get(key, Path()).is_file():
            self.photos[key] = self.folder / f"photo-{time.time_ns()}.jpg"
            self.fitted(content, "content", max(size)).resize(size).save(self.photos[key], quality=90)
        self.budget.touch(self.photos[key])
        return str(self.photos[key])


def gpu_seconds(resolution: int, refine_seconds: float = 0) -> int:
    """The ZeroGPU slot a request asks for: the worker's start-up and a first encoding (~10 s; a one-pass render is
    5-50 ms at 512-2048 px on an H200), a second per 2048 x 2048 px for the pictures' finishing and transfers (a poster
    is finished on the CPU), plus refine's budget."""
    return math.ceil(10 + (min(resolution, MAX_SIDE) / 2048) ** 2 + refine_seconds)


def shown_at_most_every(steps, seconds: float):
    """(done, picture, seconds since the start) of the first of `steps`' (done, picture), then at most one every
    `seconds`, and always the last: what a page can take (each one a file written and sent)."""
    started, last_shown, unshown = time.perf_counter(), 0.0, None
    for done, picture in steps:
        unshown = done, picture, time.perf_counter() - started
        if done == 0 or time.perf_counter() - last_shown >= seconds:
            last_shown, unshown = time.perf_counter(), None
            yield done, picture, time.perf_counter() - started
    if unshown is not None:
        yield unshown


def run_watched(task, show, every: float = 0.5, patience: float = 5.0):
    """Runs task(check) in a thread of its own and yields show() every `every` s while it runs; returns its result (use
    `yield from`). check(), which the task calls between its steps, raises InterruptedError once nobody has asked for
    the next yield for `patience` s: Stop cancelled the page's event, or the page was closed."""
    from concurrent.futures import ThreadPoolExecutor, wait

    wanted = [time.monotonic()]

    def check() -> None:
        if time.monotonic() - wanted[0] > patience:
            raise InterruptedError("stopped: nobody is waiting for it")

    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(task, check)
        while not wait([job], timeout=every).done:
            yield show()
            wanted[0] = time.monotonic()
        return job.result()
