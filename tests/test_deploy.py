"""scripts/deploy_space.py: the Space folder it builds runs the app, and the upload sends exactly that folder."""
import fnmatch
import os
import subprocess
import sys
from pathlib import Path

import gradio
import pytest

from scripts import deploy_space

from .conftest import REPO


@pytest.fixture(scope="module")
def space(tmp_path_factory) -> Path:
    return deploy_space.build_space_folder(tmp_path_factory.mktemp("deploy") / "space", "cpu")


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_space_folder_holds_exactly_what_the_app_needs(space):
    files = files_in(space)
    package = {f"stylize/{p.name}" for p in (REPO / "stylize").glob("*.py")}
    examples = {str(p.relative_to(REPO)) for p in (REPO / "examples").rglob("*") if p.is_file()}
    weights = {f"weights/{n}" for n in ("config.json", "README.md", "generator.safetensors", "discriminator.safetensors",
                                        "vgg16_imagenet.safetensors", "fast/config.json", "fast/student.safetensors")}
    assert files == {"app.py", "pyproject.toml", "README.md", "requirements.txt", ".gitattributes"} | package | examples | weights
    assert sum((space / f).stat().st_size for f in files) < 30e6


def test_front_matter_configures_a_gradio_space_at_the_tested_version(space):
    readme = (space / "README.md").read_text().splitlines()
    assert readme[0] == "---"
    settings = dict(line.split(": ", 1) for line in readme[1:readme.index("---", 1)])
    assert settings["sdk"] == "gradio" and settings["app_file"] == "app.py"
    assert settings["sdk_version"] == gradio.__version__  # the Space runs the Gradio the tests ran
    assert settings["suggested_hardware"] == "cpu-basic" and settings["license"] == "mit"


def test_every_binary_file_is_stored_with_lfs(space):
    patterns = [line.split()[0] for line in (space / ".gitattributes").read_text().splitlines() if "filter=lfs" in line]
    binaries = [f for f in files_in(space) if b"\0" in (space / f).read_bytes()[:8000]]
    assert binaries and all(any(fnmatch.fnmatch(Path(f).name, p) for p in patterns) for f in binaries), binaries


def test_requirements_per_hardware(space, tmp_path):
    cpu = (space / "requirements.txt").read_text().splitlines()
    assert cpu[0] == "--extra-index-url https://download.pytorch.org/whl/cpu"
    assert any(line.startswith("torch==") for line in cpu) and not any(line.startswith("gradio") for line in cpu)
    gpu = deploy_space.build_space_folder(tmp_path / "gpu", "zero-gpu")
    assert not any("--extra-index-url" in line for line in (gpu / "requirements.txt").read_text().splitlines())
    assert "suggested_hardware: zero-a10g" in (gpu / "README.md").read_text()


def test_the_app_in_the_space_folder_runs_on_its_own_copy(space):
    """Run from the folder as a Space would: its own stylize package and weights, not the checkout's."""
    probe = "import app, stylize.checkpoint as c; print(c.__file__); print(c.EMBEDDED_DIR); print(type(app.demo).__name__)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=space, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PYTHONPATH": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    module, weights, demo = done.stdout.strip().splitlines()[-3:]
    assert Path(module).is_relative_to(space) and Path(weights) == space / "weights" and demo == "Blocks"


def test_deploy_uploads_the_folder_to_a_gradio_space(space, monkeypatch):
    from huggingface_hub import CommitInfo, HfApi

    calls = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls.append(("create", repo_id, kw)))  # network boundary

    def upload_folder(self, **kwargs):
        calls.append(("upload", kwargs["repo_id"], kwargs))
        return CommitInfo(commit_url="https://huggingface.co/spaces/you/stylize/commit/abc", commit_message="m",
                          commit_description="", oid="abc")

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    assert deploy_space.deploy("you/stylize", space, "cpu", None).endswith("/commit/abc")
    (_, repo, created), (_, _, uploaded) = calls
    assert repo == "you/stylize" and created == {"repo_type": "space", "space_sdk": "gradio", "private": None, "exist_ok": True}
    assert uploaded["repo_type"] == "space" and uploaded["folder_path"] == str(space) and uploaded["delete_patterns"] == ["*"]


def test_deploy_without_network_is_one_line_and_keeps_the_folder(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # the network boundary: refused
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")
    assert deploy_space.main(["you/stylize", "--out", str(tmp_path / "space")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: cannot deploy to Space you/stylize (ConnectError")
    assert (tmp_path / "space" / "app.py").exists()


def test_the_model_cards_install_line_builds_from_the_space_folder(space, tmp_path):
    """pip install "stylize @ git+<Space>" builds what the clone holds: this folder (the build backend as installed)."""
    import zipfile

    from stylize.hub import model_card

    card = model_card({"lambdas": {"names": [], "defaults": {}, "ranges": {}}}, "you/model", None)
    assert 'pip install "stylize @ git+' in card
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                           str(space)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("stylize-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"stylize/cli.py", "stylize/pipeline.py", "stylize/weights/config.json", "stylize/weights/generator.safetensors",
            "stylize/weights/fast/student.safetensors"} <= names


def test_the_model_card_reads_back_as_hub_metadata():
    import json

    from huggingface_hub import ModelCard

    from stylize.hub import model_card

    card = ModelCard(model_card(json.loads((REPO / "weights" / "config.json").read_text()), "you/stylize-mine", "samples.png"))
    assert card.data.library_name == "stylize" and card.data.license == "mit" and card.data.pipeline_tag == "image-to-image"
    assert "style-transfer" in card.data.tags and "# you/stylize-mine" in card.text and "![samples](samples.png)" in card.text
