"""FLOP floor of the generator: counts the FLOPs of encode + decode at each size (torch's FlopCounterMode, on the
CPU) and compares the GPU times of bench/gpu_speed.py (eager and compiled) with FLOPs / measured matrix rate.

    python bench/flops.py [--gpu-json bench/results/gpu_speed_h200.json]     # writes bench/results/flops.json
"""
import argparse
import json
from pathlib import Path

import torch

from common import RESULTS, encode_decode_flops, fp32_stylizer


def main() -> None:
    stylizer = fp32_stylizer()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--gpu-json", type=Path, default=RESULTS / "gpu_speed_h200.json", help="output of bench/gpu_speed.py")
    gpu = json.loads(parser.parse_args().gpu_json.read_text())
    rate = gpu["matmul_tflops_fp16"] * 1e12
    rows = []
    for side in (512, 1024, 2048):
        encode, decode = encode_decode_flops(stylizer.generator, torch.rand(1, 3, side, side), torch.rand(1, 3, 512, 512),
                                             stylizer.resolve_lambdas())
        floor_ms = (encode + decode) / rate * 1e3
        row = {"side": side, "encode_gflop": encode / 1e9, "decode_gflop": decode / 1e9, "floor_ms_fp16": floor_ms}
        for measured in gpu["rows"]:  # eager, and each compile mode measured at this size
            if measured["side"] == side and measured["batch"] == 1 and measured["dtype"] == "float16" and "first_ms" in measured:
                mode = measured.get("compile", "eager")
                row[f"measured_ms_fp16_{mode}"] = measured["first_ms"]
                row[f"measured_over_floor_{mode}"] = measured["first_ms"] / floor_ms
        rows.append(row)
        print(rows[-1], flush=True)
    (RESULTS / "flops.json").write_text(json.dumps({"device": gpu["device"], "matmul_tflops_fp16": gpu["matmul_tflops_fp16"], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
