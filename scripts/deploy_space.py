"""Deploy the app to a Hugging Face Space: builds the folder a Space needs and uploads exactly that.

    python scripts/deploy_space.py you/stylize                       # CPU Space (CPU-only torch wheel)
    python scripts/deploy_space.py you/stylize --hardware zero-gpu   # ZeroGPU Space (CUDA torch wheel)
    python scripts/deploy_space.py you/stylize --out space/ --dry-run  # build the folder only, to look at it

Token: `hf auth login` or HF_TOKEN. The folder holds app.py, the stylize package, the embedded weights, the examples,
a README whose front matter configures the Space, requirements.txt for the chosen hardware and a .gitattributes
that stores every binary file with LFS/Xet (the Hub refuses binaries sent as plain git objects).
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import gradio
from huggingface_hub import HfApi
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from stylize import SOURCE_URL
from stylize.images import one_line

REPO = Path(__file__).resolve().parents[1]
# pyproject.toml makes the Space installable too: the model card's `pip install "stylize @ git+<Space>"` builds from it
SHIPPED = ["app.py", "pyproject.toml", "stylize", "weights", "examples"]
SKIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "samples_training.png")  # training record, not needed to run
LFS_PATTERNS = ["*.safetensors", "*.bin", "*.pt", "*.png", "*.jpg", "*.jpeg", "*.webp", "*.gif", "*.zip"]
# The Space installs Gradio itself (the front matter's sdk_version) and, on ZeroGPU, `spaces`.
NOT_REQUIRED_ON_A_SPACE = ("gradio",)
HARDWARE = {
    # A CPU Space needs no CUDA: from this index pip takes torch==X as X+cpu (a local version sorts above X), ~200 MB,
    # where PyPI's default wheel pulls ~3 GB of CUDA libraries.
    "cpu": {"index": "https://download.pytorch.org/whl/cpu", "suggested": "cpu-basic"},
    "zero-gpu": {"index": None, "suggested": "zero-a10g"},
}


def front_matter(readme: Path) -> list[str]:
    """The Space settings at the top of the checkout's README (the one home of the Space's title, sdk, licence...)."""
    lines = readme.read_text().splitlines()
    if not lines or lines[0] != "---" or "---" not in lines[1:]:
        raise ValueError(f"{readme} does not start with the Space's YAML front matter")
    return lines[1:lines.index("---", 1)]


def space_readme(hardware: str) -> str:
    settings = [line for line in front_matter(REPO / "README.md") if not line.startswith(("sdk_version:", "suggested_hardware:"))]
    settings += [f"sdk_version: {gradio.__version__}", f"suggested_hardware: {HARDWARE[hardware]['suggested']}"]
    return "\n".join(["---", *settings, "---", "", "# Stylize", "",
                      "Any photo, any painting: arbitrary style transfer with a GAN, five loss-weight sliders (λ) that each",
                      "re-render in one forward pass, and refine with exactly those λ.", "",
                      f"Code, CLI and Python package: {SOURCE_URL}", ""])


def space_requirements(hardware: str) -> str:
    lines = [line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()]
    kept = [line for line in lines if line and not line.startswith(NOT_REQUIRED_ON_A_SPACE)]
    index = HARDWARE[hardware]["index"]
    return "\n".join(([f"--extra-index-url {index}"] if index else []) + kept) + "\n"


def build_space_folder(out: Path, hardware: str = "cpu") -> Path:
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {out} is a file: give a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"--out {out} is not empty: give a new or empty folder (nothing in it is replaced)")
    out.mkdir(parents=True, exist_ok=True)
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=SKIPPED)
        else:
            shutil.copy2(source, out / name)
    (out / "README.md").write_text(space_readme(hardware))
    (out / "requirements.txt").write_text(space_requirements(hardware))
    (out / ".gitattributes").write_text("".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS))
    return out


def deploy(space_id: str, folder: Path, hardware: str, private: bool | None, token: str | None = None) -> str:
    api = HfApi(token=token, library_name="stylize")
    api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
    commit = api.upload_folder(repo_id=space_id, repo_type="space", folder_path=str(folder),
                               commit_message=f"Deploy Stylize ({hardware})",
                               delete_patterns=["*"])  # the Space holds exactly this folder: files no longer shipped go
    return commit.commit_url


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("space_id", help="the Space, owner/name (created when missing)")
    parser.add_argument("--hardware", choices=sorted(HARDWARE), default="cpu", help="what the Space runs on (default %(default)s)")
    parser.add_argument("--private", action="store_true", help="create the Space as private (default: the Hub's default)")
    parser.add_argument("--out", type=Path, default=None, help="build the Space folder here (default: a temporary folder)")
    parser.add_argument("--dry-run", action="store_true", help="build the folder, upload nothing")
    args = parser.parse_args(argv)
    try:
        validate_repo_id(args.space_id)
        if args.space_id.count("/") != 1:
            raise HFValidationError("not owner/name")
    except HFValidationError as err:
        parser.exit(2, f"error: {args.space_id!r} is not a Space id (owner/name): {one_line(err)}\n")
    try:
        folder = build_space_folder(args.out or Path(tempfile.mkdtemp(prefix="stylize-space-")) / "space", args.hardware)
    except (FileExistsError, NotADirectoryError) as err:
        parser.exit(2, f"error: {err}\n")
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    print(f"{folder}: {len(files)} files, {sum((folder / f).stat().st_size for f in files) / 1e6:.1f} MB")
    if args.dry_run:
        return 0
    try:
        url = deploy(args.space_id, folder, args.hardware, True if args.private else None)
    except Exception as err:  # noqa: BLE001 - network, auth and HTTP errors: one line, the folder stays for a retry
        print(f"error: cannot deploy to Space {args.space_id} ({type(err).__name__}: {one_line(err)}); "
              f"check the network and `hf auth login`; the folder is kept at {folder}", file=sys.stderr)
        return 1
    print(f"deployed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
