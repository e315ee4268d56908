"""FLOP floor of the generator: counts the FLOPs of encode + decode at each size (torch's FlopCounterMode, on the
CPU) and compares the GPU times in bench/results/gpu_speed_h200.json with FLOPs / measured matrix rate.

    python bench/flops.py             # writes bench/results/flops.json
"""
import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import RESULTS

from stylize.pipeline import Stylizer


@torch.no_grad()
def count(stylizer: Stylizer, side: int) -> tuple[int, int]:
    G = stylizer.generator
    content, style = torch.rand(1, 3, side, side), torch.rand(1, 3, 512, 512)
    lambdas = stylizer.resolve_lambdas()
    style_enc = G.encode_style(style)
    with FlopCounterMode(display=False) as encode:
        content_enc = G.encode_content(content)
    with FlopCounterMode(display=False) as decode:
        G.decode(content_enc, style_enc, lambdas)
    return encode.get_total_flops(), decode.get_total_flops()


def main() -> None:
    stylizer = Stylizer.from_pretrained(device="cpu")
    gpu = json.loads((RESULTS / "gpu_speed_h200.json").read_text())
    rate = gpu["matmul_tflops_fp16"] * 1e12
    rows = []
    for side in (512, 1024, 2048):
        encode, decode = count(stylizer, side)
        measured = next(r for r in gpu["rows"] if r["side"] == side and r["batch"] == 1 and r["dtype"] == "float16")
        floor_ms = (encode + decode) / rate * 1e3
        rows.append({"side": side, "encode_gflop": encode / 1e9, "decode_gflop": decode / 1e9, "floor_ms_fp16": floor_ms,
                     "measured_ms_fp16": measured["first_ms"], "measured_over_floor": measured["first_ms"] / floor_ms})
        print(rows[-1], flush=True)
    (RESULTS / "flops.json").write_text(json.dumps({"device": gpu["device"], "matmul_tflops_fp16": gpu["matmul_tflops_fp16"], "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
