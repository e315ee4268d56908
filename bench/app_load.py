"""The app under load: launches app.py, then from this (second) process over loopback measures the latency of a
first stylisation and of a slider move at 512 px, and sends 20 concurrent requests. Not run by pytest.

    python bench/app_load.py          # writes bench/results/app_load.json
"""
import json
import os
import socket
import tempfile
import statistics
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from gradio_client import Client, handle_file

from common import REPO, RESULTS, held_out, load

CONCURRENT = 20


def main() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env={**os.environ, "GRADIO_SERVER_PORT": str(port)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(180):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(1)
        client = Client(url, verbose=False)
        tmp = Path(tempfile.mkdtemp())
        contents, styles = [], held_out("style", 4)
        for i, path in enumerate(held_out("content", 4)):  # exactly 512 px on the long side, so 512 px is what is timed
            image = load(path, 2048)
            image.resize((512, round(512 * image.height / image.width))).save(tmp / f"content{i}.png")
            contents.append(tmp / f"content{i}.png")

        def request(content, style, log_style=0.48, resolution=512):
            started = time.perf_counter()
            client.predict(handle_file(str(content)), handle_file(str(style)), 0.0, log_style, -1.0, -1.0, -0.3,
                           1.0, False, resolution, 0, api_name="/stylize")
            return time.perf_counter() - started

        request(contents[3], styles[3], resolution=256)  # warm-up, excluded
        first = [request(c, s) for c, s in zip(contents[:3], styles[:3])]
        moves = [request(contents[2], styles[2], log_style=v) for v in (0.0, 0.8, 1.2, 1.4)]
        rss_before = psutil.Process(server.pid).memory_info().rss
        with ThreadPoolExecutor(CONCURRENT) as pool:
            futures = [pool.submit(request, contents[i % 4], styles[(i // 4) % 4], 0.2 + 0.05 * i) for i in range(CONCURRENT)]
            latencies = [f.result() for f in futures]  # raises if any request was lost
        rss_after = psutil.Process(server.pid).memory_info().rss
        q = statistics.quantiles(latencies, n=100)
        result = {
            "first_stylisation_512_s": statistics.median(first), "slider_move_512_s": statistics.median(moves),
            "concurrent": {"requests": CONCURRENT, "answered": len(latencies), "p50_s": q[49], "p90_s": q[89], "p99_s": q[98],
                           "max_s": max(latencies)},
            "server_rss_mib": {"before_burst": rss_before / 2**20, "after_burst": rss_after / 2**20},
            "note": "latency seen by the client over loopback, queue wait included (concurrency limit 1, 2 CPU threads)",
        }
        (RESULTS / "app_load.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(result, indent=2))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
