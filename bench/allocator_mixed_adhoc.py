import sys, time, json
setting = sys.argv[1]
if setting == "tuned":
    from stylize.allocator import tune_allocator; assert tune_allocator()
import numpy as np, psutil, torch
from PIL import Image
from concurrent.futures import ThreadPoolExecutor
from stylize.pipeline import Stylizer
torch.set_num_threads(2)
proc = psutil.Process()
rng = np.random.default_rng(0)
def img(side):
    a = rng.integers(0, 255, (side * 2 // 3, side, 3), dtype=np.uint8)
    return Image.fromarray(a)
def work():
    s = Stylizer.from_pretrained(device="cpu", variant="fast")
    style = img(512)
    out = []
    global times
    for cycle in range(4):
        for variant, side in [("fast", 2048), ("quality", 1024), ("fast", 512), ("quality", 512), ("fast", 1024), ("quality", 768), ("fast", 1536)]:
            photo = img(side)
            a = time.perf_counter(); s(photo, style, max_side=side, variant=variant); f = time.perf_counter() - a
            a = time.perf_counter(); s(photo, style, max_side=side, variant=variant, lambdas={"style": 3.0}); m = time.perf_counter() - a
            if (variant, side) in (("quality", 1024), ("fast", 1024)) and cycle > 0: times.setdefault(variant, []).append((round(f, 2), round(m, 2)))
        out.append(round(proc.memory_info().rss / 2**30, 2))
    return out
times = {}
with ThreadPoolExecutor(1) as w:
    t = time.time(); r = w.submit(work).result()
print(setting, times, "RSS GiB after each cycle", r, "peak", round(__import__("resource").getrusage(0).ru_maxrss / 2**20, 2), "s", round(time.time() - t))
