"""The embedded default model (weights/): loads with no arguments, reconstructs at strength 0, sliders act, its critic tells styles apart."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from .helpers import edge_and_interior, painted
from stylize import losses
from stylize.images import fit_size, to_pil, to_tensor
from stylize.pipeline import Stylizer

from .conftest import REPO

CONTENT = REPO / "examples" / "content" / "deb-skimage-astronaut.jpg"
STYLE = REPO / "examples" / "style" / "deb-gcompris-van_gogh_the_night_cafe.jpg"


@pytest.fixture(scope="module")
def default() -> Stylizer:
    return Stylizer.from_pretrained(device="cpu")


def test_default_loads_with_its_discriminator_and_config(default):
    config = json.loads((REPO / "weights" / "config.json").read_text())
    assert default.discriminator is not None
    assert default.lambda_defaults == {k: float(v) for k, v in config["lambdas"]["defaults"].items()}
    size_mb = sum(p.stat().st_size for p in (REPO / "weights").glob("*.safetensors")) / 1e6
    assert size_mb <= 30, f"weights/ holds {size_mb:.1f} MB of tensors"


def test_strength_zero_reproduces_the_content(default):
    content = Image.open(CONTENT).convert("RGB").resize((256, 256))
    out = default(content, STYLE, strength=0.0, max_side=256)
    mse = np.mean((np.asarray(out, float) - np.asarray(content, float)) ** 2)
    psnr = 10 * np.log10(255**2 / mse)
    print(f"strength 0 PSNR: {psnr:.1f} dB")  # 33.5 dB at the probe-chosen defaults, 2026-11-27
    assert psnr >= 30


def test_style_slider_moves_the_style_distance(default, measuring_vgg):
    content = Image.open(CONTENT).convert("RGB").resize((192, 192))
    style = Image.open(STYLE).convert("RGB")
    encoder = measuring_vgg
    with torch.no_grad():
        grams = losses.style_grams(encoder(to_tensor(style)))
        distance = [losses.style_loss(encoder(to_tensor(default(content, style, lambdas={"style": v}, max_side=192))), grams).item()
                    for v in default.lambda_ranges["style"]]
    assert distance[1] < distance[0], distance  # more style weight, closer to the painting's Gram statistics


def test_default_critic_knows_which_painting_a_patch_belongs_to(default):
    """The style-conditional critic scores every example painting higher under its own style code than under any other."""
    paintings = [fit_size(Image.open(p).convert("RGB"), 256) for p in sorted((REPO / "examples" / "style").glob("*.jpg"))]
    codes = [default.encode_style(p) for p in paintings]
    assert default.discriminator.conditional and len(paintings) >= 4
    with torch.no_grad():
        scores = torch.tensor([[sum(l.mean() for l in default.critic(to_tensor(p), code)).item() for code in codes]
                               for p in paintings])
    assert (scores.argmax(dim=1) == torch.arange(len(paintings))).all(), scores


def test_embedded_models_paint_the_recorded_reference_to_the_grey_level():
    """Refactors leave the shipped models' outputs as recorded; a new model re-records tests/reference/ with it
    (python -m scripts.record_reference_outputs). Another CPU's fp32 kernels (AVX2 against AVX-512) sum in another
    order, and a float lying on a rounding boundary lands one grey level over: 1 value of 76,800 did on an AVX2-only
    EPYC. Any change to the model's arithmetic moves far more than that."""
    from scripts.record_reference_outputs import REFERENCE_DIR, reference_outputs

    for name, output in reference_outputs().items():
        diff = np.abs(np.asarray(to_pil(output), dtype=int) - np.asarray(Image.open(REFERENCE_DIR / f"{name}.png"), dtype=int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (name, diff.max(), int((diff > 0).sum()))


def test_a_model_folder_written_before_the_lambda_contract_loads_and_paints_the_same(tmp_path):
    """config.json as written before issue 21 (λ normalisation in the generator section, an encoder block, stages)."""
    import shutil

    from scripts.record_reference_outputs import REFERENCE_DIR

    folder = tmp_path / "old"
    shutil.copytree(REPO / "weights", folder)
    shutil.copy(REFERENCE_DIR / "config_written_before_issue_21.json", folder / "config.json")
    shutil.copy(REFERENCE_DIR / "fast_config_written_before_issue_21.json", folder / "fast" / "config.json")
    content = Image.open(CONTENT).convert("RGB").resize((128, 128))
    for variant in ("quality", "fast"):
        old, new = (Stylizer.from_pretrained(path, device="cpu", variant=variant) for path in (folder, None))
        assert old.variant == variant
        assert np.array_equal(np.asarray(old(content, STYLE, max_side=128)), np.asarray(new(content, STYLE, max_side=128)))


@pytest.mark.parametrize("variant", ["quality", "fast"])
def test_bf16_paints_within_a_few_grey_levels_of_fp32(variant):
    """The CPU paints in bf16 where it has AMX (pick_dtype); on any CPU that picture must be the fp32 one to the eye."""
    pictures = [np.asarray(Stylizer.from_pretrained(device="cpu", variant=variant, dtype=dtype)(
        CONTENT, STYLE, max_side=192, lambdas={"style": 10.0}), float) for dtype in (torch.float32, torch.bfloat16)]
    difference = np.abs(pictures[0] - pictures[1])
    print(f"{variant}: bf16 - fp32 mean {difference.mean():.2f}, max {difference.max():.0f} grey levels")  # 0.32 / 0.23, max 2
    assert difference.mean() < 1 and difference.max() <= 8


def test_refine_in_bf16_follows_the_fp32_path():
    """Where the pipeline paints in bf16, refine still optimises in fp32 (its line search compares exact losses) from the
    bf16 one-pass picture; its steps must go where fp32's go."""
    paths = [[np.asarray(p, float) for p in Stylizer.from_pretrained(device="cpu", dtype=dtype).stylize_steps(
        CONTENT, STYLE, refine_steps=4, seed=0, max_side=128, lambdas={"style": 30.0})] for dtype in (torch.float32, torch.bfloat16)]
    moved = np.abs(paths[0][-1] - paths[0][0]).mean()
    apart = np.abs(paths[0][-1] - paths[1][-1]).mean()
    print(f"refine moved the picture {moved:.2f} grey levels; bf16 ended {apart:.2f} from fp32")  # 6.20, 0.99
    assert apart < moved / 3


@pytest.mark.parametrize("variant", ["quality", "fast"])
def test_pictures_carry_no_frame_along_their_edges(variant):
    """The encoders' zero padding paints stripes and a frame along a picture's edges; the pipeline reflects the photo
    outwards and cuts that margin off, so the outer band is as close as the interior to a picture painted with a margin
    far wider than any edge effect (bench/border.py measures it by margin)."""
    default = Stylizer.from_pretrained(device="cpu", variant=variant)
    content = Image.open(CONTENT).convert("RGB").resize((256, 256))
    model, photo = default.model(variant), to_tensor(content).to(default.dtype)
    style, lambdas = default.encode_style(Image.open(STYLE).convert("RGB"), variant), default.resolve_lambdas({})

    def frame(picture: torch.Tensor, reference: torch.Tensor) -> float:
        edge, interior = edge_and_interior(picture, reference)
        return edge - interior

    reference, unmargined = painted(model, photo, style, lambdas, margin=48), painted(model, photo, style, lambdas, margin=0)
    pipeline = to_tensor(default(content, STYLE, max_side=256, variant=variant))
    unmargined_frame, pipeline_frame = frame(unmargined, reference), frame(pipeline, reference)
    print(f"{variant}: a frame of {unmargined_frame:.2f} grey levels without a margin, {pipeline_frame:.2f} through the pipeline")
    assert pipeline_frame < min(1.0, unmargined_frame / 3)
