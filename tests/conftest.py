from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stylize.discriminator import MultiScaleDiscriminator
from stylize.encoder import VGGEncoder
from stylize.generator import Generator
from stylize.lambda_spec import LAMBDA_NAMES, LambdaSpec

REPO = Path(__file__).resolve().parents[1]
VGG_PATH = REPO / "weights" / "vgg16_imagenet.safetensors"


@pytest.fixture(scope="session")
def encoder() -> VGGEncoder:
    return VGGEncoder.from_file(VGG_PATH)


@pytest.fixture(scope="session")
def measuring_vgg() -> VGGEncoder:
    """The models' VGG in fp32, a copy of its own: tests measure with it whatever precision a stylizer paints in
    (bf16 on a CPU with AMX)."""
    return VGGEncoder.from_file(VGG_PATH).eval()


@pytest.fixture
def tiny_generator(encoder) -> Generator:
    torch.manual_seed(0)
    return Generator(encoder, widths=(32, 16, 16, 8), blocks=(1, 1, 1), attention_key_dim=16, attention_value_dim=16, film_hidden=16)


@pytest.fixture
def tiny_discriminator() -> MultiScaleDiscriminator:
    torch.manual_seed(0)
    return MultiScaleDiscriminator(scales=2, base_channels=8, layers=2)


def tiny_model_config() -> dict:
    spec = LambdaSpec.for_training().with_normalizers({n: 1.0 for n in LAMBDA_NAMES})
    return {"format": "stylize", "lambdas": spec.to_config(), "style_max_side": 128}


@pytest.fixture
def tiny_model_dir(tmp_path, tiny_generator, tiny_discriminator) -> Path:
    from stylize.checkpoint import save_model_folder

    folder = tmp_path / "model"
    save_model_folder(folder, tiny_generator, tiny_discriminator, tiny_model_config())
    return folder


@pytest.fixture(scope="session")
def data_dirs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for sub, shape in (("content", (72, 88)), ("style/nested", (80, 64))):
        (root / sub).mkdir(parents=True)
        for i in range(4):
            Image.fromarray((rng.random((*shape, 3)) * 255).astype(np.uint8)).save(root / sub / f"{i}.png")
    (root / "style" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    return root / "content", root / "style"
