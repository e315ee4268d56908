"""Hugging Face Hub I/O: resolve a repo id to a local folder, write the model card, upload in the background."""
import shutil
import tempfile
from concurrent.futures import Future
from pathlib import Path

from huggingface_hub import HfApi, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

from .checkpoint import CheckpointError, EMBEDDED_DIR


def resolve_model_folder(path_or_repo_id: str | Path | None = None, revision: str | None = None) -> Path:
    """None -> the embedded weights/; an existing folder -> itself; otherwise a Hub repo id.

    The Hub snapshot is cached; with no network, the cached copy is used (offline-friendly).
    """
    if path_or_repo_id is None:
        return EMBEDDED_DIR
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        return path
    repo_id = str(path_or_repo_id)
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise CheckpointError(f"model not found: {repo_id} is neither a folder nor a Hub repo id (owner/name)")
    try:
        return Path(snapshot_download(repo_id, revision=revision, library_name="stylize"))
    except RepositoryNotFoundError:
        raise CheckpointError(f"Hub repo not found (or private without a token): {repo_id}") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        try:
            return Path(snapshot_download(repo_id, revision=revision, library_name="stylize", local_files_only=True))
        except LocalEntryNotFoundError:
            raise CheckpointError(f"cannot download {repo_id} and no cached copy exists ({err.__class__.__name__})") from None


def model_card(config: dict, repo_id: str, sample_image: str | None) -> str:
    lam = config["lambdas"]
    training = config.get("training", {})
    rows = "\n".join(
        f"| {n} | {lam['defaults'][n]:g} | {lam['ranges'][n][0]:g} – {lam['ranges'][n][1]:g} |" for n in lam["names"]
    )
    data = training.get("data", {})
    sample = f"\n![samples]({sample_image})\n" if sample_image else ""
    return f"""---
library_name: stylize
license: mit
pipeline_tag: image-to-image
tags:
- style-transfer
- gan
- image-to-image
---

# {repo_id}

Arbitrary style transfer generator for Stylize: content photo + any style image →
stylised image, conditioned on the five loss weights (λ), so each slider is one forward pass.

```python
from stylize.pipeline import Stylizer
stylizer = Stylizer.from_pretrained("{repo_id}")
image = stylizer("photo.jpg", "painting.jpg", lambdas={{"style": 3.0}})
```

## Loss weights (λ)

Sampled log-uniformly per example during training; values outside the trained range are clamped.

| λ | default | trained range |
|---|---|---|
{rows}
{sample}
## Training

- steps: {training.get("step", "?")}, crop {training.get("size", "?")} px, batch {training.get("batch_size", "?")}
- content images: {_data_line(data.get("content"))}
- style images: {_data_line(data.get("style"))}
- encoder: VGG16 (ImageNet, Caffe weights) blocks 1–4, frozen
"""


def _data_line(description: dict | None) -> str:
    if not description:
        return "?"
    return f"{description['images']} from a folder named `{description['folder']}` (file list sha256 {description['file_list_sha256'][:12]})"


class HubUploader:
    """Uploads snapshots of the model folder without blocking training; uploads run in order."""

    def __init__(self, repo_id: str, private: bool = False, token: str | None = None, api: HfApi | None = None):
        self.repo_id = repo_id
        self.api = api or HfApi(token=token)
        self.api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        self.pending: list[Future] = []

    def push(self, folder: Path, step: int) -> Future:
        # Upload a frozen copy: the next save must not change files mid-upload.
        snapshot = Path(tempfile.mkdtemp(prefix="stylize-upload-"))
        shutil.copytree(folder, snapshot, dirs_exist_ok=True)
        future = self.api.upload_folder(
            repo_id=self.repo_id, repo_type="model", folder_path=str(snapshot),
            commit_message=f"Stylize checkpoint at step {step}", run_as_future=True,
        )
        future.add_done_callback(lambda _: shutil.rmtree(snapshot, ignore_errors=True))
        self.pending.append(future)
        return future

    def wait(self) -> list[Exception]:
        """Blocks until every upload has finished; returns the failures (training never dies of one)."""
        errors = []
        for future in self.pending:
            try:
                future.result()
            except Exception as err:  # noqa: BLE001 - reported by the caller
                errors.append(err)
        self.pending.clear()
        return errors
