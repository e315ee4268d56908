"""What the tests measure with (and the benchmarks reuse): pictures' metrics, the app served on a loopback port."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from stylize.picture import with_margin, without_margin

REPO = Path(__file__).resolve().parents[1]


BAND = 24  # px: the outer band where the encoders' zero padding shows (bench/border.py)


@torch.no_grad()
def painted(model, photo: torch.Tensor, style_encoding, lambdas: torch.Tensor, margin: int) -> torch.Tensor:
    """A model's picture of `photo` reflected `margin` px outwards before encoding, the margin cut off again."""
    picture = model.decode(model.encode_content(with_margin(photo, margin)), style_encoding, lambdas, 1.0).float()
    return without_margin(picture, margin)


def edge_and_interior(picture: torch.Tensor, reference: torch.Tensor, width: int = BAND) -> tuple[float, float]:
    """Mean grey levels of `picture` off `reference` in the outer `width` px band and in the interior; the band's excess
    over the interior is the frame the edges paint."""
    off = (picture.float() - reference.float()).abs().mean(1)[0] * 255
    band = torch.ones_like(off, dtype=torch.bool)
    band[width:-width, width:-width] = False
    return off[band].mean().item(), off[~band].mean().item()


def spearman(x: list[float], y: list[float]) -> float:
    rank = lambda v: torch.tensor(v, dtype=torch.float64).argsort().argsort().double()  # noqa: E731 - no ties here
    rx, ry = rank(x), rank(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return (rx @ ry / (rx.norm() * ry.norm())).item()



def texture_frequency(image, photo=None) -> float:
    """The scale of a picture's texture: the power-weighted mean spatial frequency (cycles per pixel) of its luminance
    above 2 % of the sampling rate; with `photo` (same size), of what the stylization added to the photo's luminance,
    i.e. the strokes rather than the photo's own detail. Larger strokes, lower frequency."""
    import numpy as np

    gray = np.asarray(image.convert("L"), dtype=np.float64)
    if photo is not None:
        gray = gray - np.asarray(photo.convert("L"), dtype=np.float64)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(gray.shape[0]), np.fft.fftfreq(gray.shape[1]), indexing="ij")
    radius = np.hypot(fy, fx)
    band = (radius > 0.02) & (radius <= 0.5)
    return float((power[band] * radius[band]).sum() / power[band].sum())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve_app(log_path: Path | None = None, start_timeout_s: float = 180, **env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """app.py on a free loopback port with `env` added: yields (url, process) once it answers, stops it afterwards."""
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", **env}
    log = open(log_path, "w") if log_path else subprocess.DEVNULL
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"app.py did not start (exit code {server.poll()}); see {log_path}") from None
                time.sleep(1)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)
        if log_path:
            log.close()
