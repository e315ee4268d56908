"""Pure tensor maths shared by the generator, the losses and the benchmarks."""
import torch
import torch.nn.functional as F


SPATIAL_CHUNK = 1 << 16  # positions whose float32 copy mean_std holds at a time (16 MB at 64 channels)


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std over space. feat: (B, C, H, W) -> two (B, C, 1, 1), in feat's dtype.

    Float32 sums of x and x² over chunks of positions, in the tensor's own memory order: on a CPU, torch's var of a
    channels-last 1024 px map took 10-13x as long, and a float copy of the whole map (docs/performance.md)."""
    assert feat.dim() == 4, f"expected (B, C, H, W), got {tuple(feat.shape)}"
    b, c, h, w = feat.shape
    if feat.is_contiguous(memory_format=torch.channels_last) and not feat.is_contiguous():
        flat, dim = feat.permute(0, 2, 3, 1).reshape(b, h * w, c), 1  # a view
    else:
        flat, dim = feat.reshape(b, c, h * w), 2
    total = squares = 0
    for chunk in flat.split(SPATIAL_CHUNK, dim=dim):
        chunk = chunk.float()
        total = total + chunk.sum(dim)
        squares = squares + chunk.square().sum(dim)
    mean = total / (h * w)
    var = (squares / (h * w) - mean.square()).clamp_min(0)
    return mean.view(b, c, 1, 1).to(feat.dtype), (var + eps).sqrt().view(b, c, 1, 1).to(feat.dtype)


def flat_stats(stats: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Per-tap (mean, std), each (B, C, 1, 1), as one (B, 2 * sum C) row each: tap by tap, mean before std."""
    return torch.cat([t.flatten(1) for pair in stats for t in pair], dim=1)


def adain_gain_bias(content_stats, style_stats, alpha) -> tuple[torch.Tensor, torch.Tensor]:
    """strength * AdaIN + (1 - strength) * the content features, as feat * gain + bias:
    alpha * ((f - mc) / sc * ss + ms) + (1 - alpha) * f. alpha: a number, (B, 1, 1, 1), or a map at the features'
    resolution (then gain and bias are maps too)."""
    (c_mean, c_std), (s_mean, s_std) = content_stats, style_stats
    scale = s_std / c_std
    return alpha * scale + (1 - alpha), alpha * (s_mean - c_mean * scale)


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


def resized(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, C, H, W) to `size` (h, w): bicubic, antialiased when shrinking; as it is where the size already matches."""
    if tuple(image.shape[-2:]) == tuple(size):
        return image
    return F.interpolate(image, size=size, mode="bicubic", antialias=True, align_corners=False)
