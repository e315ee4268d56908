"""Pure tensor maths shared by the generator, the losses and the benchmarks."""
import torch
import torch.nn.functional as F


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over space. feat: (B, C, H, W) -> two (B, C, 1, 1)."""
    assert feat.dim() == 4, f"expected (B, C, H, W), got {tuple(feat.shape)}"
    var = feat.float().var(dim=(2, 3), keepdim=True, unbiased=False)
    return feat.float().mean(dim=(2, 3), keepdim=True).to(feat.dtype), (var + eps).sqrt().to(feat.dtype)


def gram(feat: torch.Tensor) -> torch.Tensor:
    """Gram matrix F F^T / M, in float32. feat: (B, N, H, W) -> (B, N, N), M = H * W.

    Squared differences of these, averaged over the N^2 entries, are Gatys' per-layer
    style loss with its 1 / (N^2 M^2) normalisation (the constant 1/4 dropped).
    """
    b, n, h, w = feat.shape
    with torch.autocast(feat.device.type, enabled=False):  # sums of H*W products: bf16 is too coarse
        flat = feat.float().reshape(b, n, h * w)
        return flat @ flat.transpose(1, 2) / (h * w)


def per_example_mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, ...) x (B, ...) -> (B,) mean squared error, in float32."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)


def rgb_to_yuv(image: torch.Tensor) -> torch.Tensor:
    """BT.601 RGB -> YUV on (B, 3, H, W)."""
    matrix = image.new_tensor(
        [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]
    )
    return torch.einsum("ij,bjhw->bihw", matrix, image)


def yuv_to_rgb(image: torch.Tensor) -> torch.Tensor:
    matrix = image.new_tensor([[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]])
    return torch.einsum("ij,bjhw->bihw", matrix, image)


def pad_to_multiple(image: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad bottom/right so H and W divide by `multiple`; returns the original (H, W)."""
    h, w = image.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        image = F.pad(image, (0, pad_w, 0, pad_h), mode=mode)
    return image, (h, w)
