"""What bounds the fast student on a CPU: its FLOPs at 1024 px (encode, decode), the CPU's measured matrix rate on the
same threads in the precision the pipeline paints in (bf16 on a CPU with AMX, else fp32), and where the time goes (torch.profiler, by operator and by module). Not run by pytest.

    python bench/student_profile.py                # writes bench/results/student_profile.{json,md}
    python bench/student_profile.py --tag _avx2    # another CPU's run beside it
"""
import argparse
import json
import statistics
import time
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

from common import RESULTS, TAG_HELP, cpu_name, encode_decode_flops

import stylize.student as student_module
from stylize.devices import precision_name
from stylize.pipeline import Stylizer

THREADS = 2
SIDE = 1024


def matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(n, n, dtype=dtype), torch.rand(n, n, dtype=dtype)
    a @ b
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * n**3 / statistics.median(times) / 1e9


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tag", default="", help=TAG_HELP)
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    stylizer = Stylizer.from_pretrained(device="cpu", variant="fast")
    student = stylizer.student
    dtype = stylizer.dtype
    content = torch.rand(1, 3, SIDE * 2 // 3, SIDE, dtype=dtype).contiguous(memory_format=torch.channels_last)
    style = torch.rand(1, 3, 512, 512, dtype=dtype).contiguous(memory_format=torch.channels_last)
    lambdas = stylizer.resolve_lambdas()
    encode_flops, decode_flops = encode_decode_flops(student, content, style, lambdas)
    style_enc = student.encode_style(style)
    for _ in range(2):  # warm-up
        student.decode(student.encode_content(content), style_enc, lambdas)
    timings = {"encode": [], "decode": []}
    for _ in range(5):
        started = time.perf_counter()
        content_enc = student.encode_content(content)
        timings["encode"].append(time.perf_counter() - started)
        started = time.perf_counter()
        student.decode(content_enc, style_enc, lambdas)
        timings["decode"].append(time.perf_counter() - started)
    seconds = {k: statistics.median(v) for k, v in timings.items()}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        student.decode(student.encode_content(content), style_enc, lambdas)
    by_op = sorted(((e.key, e.self_cpu_time_total / 1e3) for e in prof.key_averages()), key=lambda kv: -kv[1])
    total_ms = sum(ms for _, ms in by_op)
    by_module, starts = defaultdict(float), {}  # each convolution's wall time, from hooks around it
    names = {module: name for name, module in student.named_modules() if isinstance(module, torch.nn.Conv2d)}

    def started(module, _inputs):
        starts[module] = time.perf_counter()

    def finished(module, _inputs, _output):
        by_module[names[module]] += time.perf_counter() - starts[module]

    def timed_upsampling_conv(conv, x):  # these convs run through conv3x3_upsampled, not their modules' forward
        starts[conv[1]] = time.perf_counter()
        output = upsampling_conv(conv, x)
        finished(conv[1], None, None)
        return output

    hooks = [h for m in names for h in (m.register_forward_pre_hook(started), m.register_forward_hook(finished))]
    upsampling_conv, student_module.conv3x3_upsampled = student_module.conv3x3_upsampled, timed_upsampling_conv
    student.decode(student.encode_content(content), style_enc, lambdas)
    student_module.conv3x3_upsampled = upsampling_conv
    for hook in hooks:
        hook.remove()
    rate = matmul_gflops(dtype)
    dtype_name = precision_name(dtype)
    flops = encode_flops + decode_flops
    result = {
        "side": f"{SIDE} x {SIDE * 2 // 3}", "cpu": cpu_name(), "threads": THREADS, "dtype": dtype_name,
        "encode_gflop": encode_flops / 1e9, "decode_gflop": decode_flops / 1e9,
        "encode_s": seconds["encode"], "decode_s": seconds["decode"],
        "cpu_matmul_gflops": rate, "floor_s": flops / 1e9 / rate,
        "achieved_gflops": flops / 1e9 / (seconds["encode"] + seconds["decode"]),
        "top_ops_ms": dict(by_op[:8]), "all_ops_ms": total_ms,
        "convs_ms": dict(sorted(((k, v * 1e3) for k, v in by_module.items()), key=lambda kv: -kv[1])[:8]),
    }
    (RESULTS / f"student_profile{args.tag}.json").write_text(json.dumps(result, indent=2))
    lines = [f"Fast student at {result['side']} px, {result['cpu']}, {THREADS} threads, {dtype_name} "
             "(`python bench/student_profile.py`).", "",
             f"- FLOPs: encode {result['encode_gflop']:.2f} + decode {result['decode_gflop']:.2f} GFLOP; measured "
             f"{result['encode_s']:.3f} + {result['decode_s']:.3f} s, i.e. {result['achieved_gflops']:.1f} GFLOP/s against "
             f"{rate:.0f} GFLOP/s for a 2048² {dtype_name} matrix product on the same threads (floor {result['floor_s']:.3f} s).", "",
             "| operator (self time) | ms |", "|---|---|", *(f"| {k} | {v:.1f} |" for k, v in result["top_ops_ms"].items()), "",
             "| convolution (module) | ms |", "|---|---|", *(f"| {k} | {v:.1f} |" for k, v in result["convs_ms"].items())]
    (RESULTS / f"student_profile{args.tag}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
