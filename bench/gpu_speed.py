"""GPU inference speed of the generator: ms per image (first stylisation and slider move) at 512/1024/2048 px,
images/s at batch 8 x 512, in fp16 and bf16, channels_last; memory high-water mark.

    python bench/gpu_speed.py --model weights --out bench/results/gpu_speed.json
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stylize.checkpoint import load_model_folder  # noqa: E402


def time_ms(fn, repeats: int = 20, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def matmul_tflops(dtype) -> float:
    a = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    b = torch.randn(8192, 8192, device="cuda", dtype=dtype)
    return 2 * 8192**3 / (time_ms(lambda: a @ b, repeats=10) / 1e3) / 1e12


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default="weights")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    generator, _, config = load_model_folder(Path(args.model))
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": []}
    lambdas = torch.tensor([[config["lambdas"]["defaults"][n] for n in config["lambdas"]["names"]]], device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        G = generator.to("cuda", dtype, memory_format=torch.channels_last).eval()
        style = torch.rand(1, 3, 512, 512, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
        style_enc = G.encode_style(style)
        for side, batch in ((512, 1), (1024, 1), (2048, 1), (512, 8)):
            content = torch.rand(batch, 3, side, side, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)
            lam = lambdas.expand(batch, -1)
            s_enc = type(style_enc)([(m.expand(batch, -1, -1, -1), s.expand(batch, -1, -1, -1)) for m, s in style_enc.stats], style_enc.relu4_1.expand(batch, -1, -1, -1))
            torch.cuda.reset_peak_memory_stats()
            full = time_ms(lambda: G.decode(G.encode_content(content), s_enc, lam))
            c_enc = G.encode_content(content)
            slider = time_ms(lambda: G.decode(c_enc, s_enc, lam))
            row = {"dtype": str(dtype).removeprefix("torch."), "side": side, "batch": batch,
                   "first_ms": round(full, 2), "slider_ms": round(slider, 2),
                   "images_per_s": round(batch / (full / 1e3), 1), "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
            results["rows"].append(row)
            print(row, flush=True)
    results["matmul_tflops_bf16"] = round(matmul_tflops(torch.bfloat16), 1)
    results["matmul_tflops_fp16"] = round(matmul_tflops(torch.float16), 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps({k: v for k, v in results.items() if k != "rows"}))


if __name__ == "__main__":
    main()
