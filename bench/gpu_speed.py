"""GPU inference speed of the generator: ms per image (first stylisation and slider move) at 512/1024/2048 px,
images/s at batch 8 x 512, in fp16 and bf16, channels_last; memory high-water mark; then torch.compile and CUDA
graphs (mode reduce-overhead) at 1024 px and batch 8 x 512.

    python bench/gpu_speed.py --model weights --out bench/results/gpu_speed.json      # also writes gpu_speed.md
    python bench/gpu_speed.py --markdown-from bench/results/gpu_speed_h200.json         # the table again, from the JSON
"""
import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from common import markdown_table

from stylize.checkpoint import load_model_folder
from stylize.devices import precision_name


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


def random_image(batch: int, side: int, dtype) -> torch.Tensor:
    return torch.rand(batch, 3, side, side, device="cuda", dtype=dtype).contiguous(memory_format=torch.channels_last)


def repeat_style(style_enc, batch: int):
    """One style encoding seen by `batch` contents (expanded, not copied)."""
    return type(style_enc)([(m.expand(batch, -1, -1, -1), s.expand(batch, -1, -1, -1)) for m, s in style_enc.stats],
                           style_enc.relu4_1.expand(batch, -1, -1, -1))


def new_step(fn):
    """Each timed call is one step for CUDA graphs (reduce-overhead), which may then reuse the previous call's memory."""
    def call():
        torch.compiler.cudagraph_mark_step_begin()
        return fn()
    return call


def measure(encode, decode, style_enc, lambdas, dtype, side: int, batch: int) -> dict:
    content, s_enc, lam = random_image(batch, side, dtype), repeat_style(style_enc, batch), lambdas.expand(batch, -1)
    first_stylisation = new_step(lambda: decode(encode(content), s_enc, lam))
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    first_stylisation()  # eager: warm-up; compiled: compilation
    torch.cuda.synchronize()
    first_call_s = time.perf_counter() - started
    full = time_ms(first_stylisation)
    c_enc = new_step(lambda: encode(content))()
    slider = time_ms(new_step(lambda: decode(c_enc, s_enc, lam)))
    return {"dtype": precision_name(dtype), "side": side, "batch": batch, "first_call_s": round(first_call_s, 1),
            "first_ms": round(full, 2), "slider_ms": round(slider, 2), "images_per_s": round(batch / (full / 1e3), 1),
            "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}


def markdown(results: dict) -> str:
    """The results as the table docs/performance.md shows, with the ratios the prose there refers to."""
    lines = [f"{results['device']}, torch {results['torch']}, channels_last; median of 20 after warm-up; *compiled* = "
             "torch.compile of encode_content and decode (reduce-overhead adds CUDA graphs); first call = compile time. "
             f"Matrix rate measured on the card: {results['matmul_tflops_bf16']} TFLOP/s bf16, "
             f"{results['matmul_tflops_fp16']} fp16 (8192³ products).", ""]
    columns = ["first_ms", "slider_ms", "images_per_s", "peak_mem_gib", "first_call_s"]
    lines += markdown_table(
        ["mode", "dtype", "px", "batch", "first stylization ms", "slider move ms", "images/s", "peak GPU mem GiB", "first call s"],
        [[r["compile"], r.get("dtype", ""), r["side"], r["batch"], *([r["error"], "", "", "", ""] if "error" in r else [r[c] for c in columns])]
         for r in results["rows"]])
    eager = {(r["side"], r["batch"]): r for r in results["rows"] if r["compile"] == "eager" and r.get("dtype") == "fp16"}
    ratios = [f"{r['compile']} at {r['batch']} x {r['side']} px: {eager[(r['side'], r['batch'])]['first_ms'] / r['first_ms']:.2f}x eager fp16"
              for r in results["rows"] if r["compile"] != "eager" and "error" not in r and (r["side"], r["batch"]) in eager]
    return "\n".join(lines + ["", "Speed-ups: " + "; ".join(ratios) + "."] if ratios else lines) + "\n"


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="weights")
    parser.add_argument("--out", type=Path, help="result JSON (required unless --markdown-from); the table goes beside it as .md")
    parser.add_argument("--markdown-from", type=Path, help="write the .md of an earlier result JSON and stop (no GPU needed)")
    args = parser.parse_args()
    if args.markdown_from:
        args.markdown_from.with_suffix(".md").write_text(markdown(json.loads(args.markdown_from.read_text())))
        return
    if args.out is None:
        parser.error("--out is required")
    generator, config = load_model_folder(Path(args.model))
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
               "matmul_tflops_bf16": round(matmul_tflops(torch.bfloat16), 1),
               "matmul_tflops_fp16": round(matmul_tflops(torch.float16), 1), "rows": []}
    args.out.parent.mkdir(parents=True, exist_ok=True)

    def record(row: dict) -> None:  # written after every row: a run stopped at its time limit keeps what it measured
        results["rows"].append(row)
        args.out.write_text(json.dumps(results, indent=2))
        args.out.with_suffix(".md").write_text(markdown(results))
        print(row, flush=True)

    lambdas = torch.tensor([[config["lambdas"]["defaults"][n] for n in config["lambdas"]["names"]]], device="cuda")
    for dtype in (torch.float16, torch.bfloat16):
        G = generator.to("cuda", dtype, memory_format=torch.channels_last).eval()
        style_enc = G.encode_style(random_image(1, 512, dtype))
        for side, batch in ((512, 1), (1024, 1), (2048, 1), (512, 8)):
            record({"compile": "eager", **measure(G.encode_content, G.decode, style_enc, lambdas, dtype, side, batch)})
    # torch.compile (fused kernels) and CUDA graphs (reduce-overhead: one launch per call) for the two shapes with
    # targets, most telling first; each compiles afresh, and its compile time is first_call_s.
    G = generator.to("cuda", torch.float16, memory_format=torch.channels_last).eval()
    style_enc = G.encode_style(random_image(1, 512, torch.float16))
    for mode, side, batch in (("reduce-overhead", 1024, 1), ("default", 1024, 1), ("reduce-overhead", 512, 8), ("default", 512, 8)):
        torch._dynamo.reset()
        encode, decode = torch.compile(G.encode_content, mode=mode), torch.compile(G.decode, mode=mode)
        try:
            row = {"compile": mode, **measure(encode, decode, style_enc, lambdas, torch.float16, side, batch)}
        except Exception as err:  # a failed compile is a result too: report it and go on with the other rows
            row = {"compile": mode, "side": side, "batch": batch, "error": f"{type(err).__name__}: {err}"[:400]}
        record(row)


if __name__ == "__main__":
    main()
