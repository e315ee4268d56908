"""Hugging Face Hub I/O: resolve a repo id to a local folder, write the model card, upload in the background."""
import logging
import shutil
import tempfile
from concurrent.futures import Future
from pathlib import Path

from huggingface_hub import HfApi, ModelCard, ModelCardData, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError, HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from . import SOURCE_URL, __version__
from .checkpoint import (
    CONFIG_FILE, DISCRIMINATOR_FILE, EMBEDDED_DIR, GENERATOR_FILE, STUDENT_DIR, STUDENT_FILE, VGG_FILE, CheckpointError,
)
from .images import one_line

log = logging.getLogger("stylize.hub")

# What a model repo holds for inference: a download skips everything else (sample grids, resume state, logs).
MODEL_FILES = [CONFIG_FILE, GENERATOR_FILE, DISCRIMINATOR_FILE, VGG_FILE, "README.md",
               f"{STUDENT_DIR}/{CONFIG_FILE}", f"{STUDENT_DIR}/{STUDENT_FILE}"]


def resolve_model_folder(path_or_repo_id: str | Path | None = None, *, revision: str | None = None, token: str | bool | None = None,
                         cache_dir: str | Path | None = None, local_files_only: bool = False, force_download: bool = False) -> Path:
    """None -> the embedded weights/; an existing folder -> itself; otherwise a Hub repo id (owner/name).

    The Hub arguments mean what they mean in huggingface_hub.snapshot_download. Without network the cached snapshot
    is used; every failure is a one-line CheckpointError.
    """
    if path_or_repo_id is None:
        return EMBEDDED_DIR
    path = Path(path_or_repo_id).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise CheckpointError(f"{path} is a file: a model is the folder that holds config.json and the weights")
    repo_id = str(path_or_repo_id)
    try:
        validate_repo_id(repo_id)
        valid = repo_id.count("/") == 1 and not repo_id.startswith((".", "~"))
    except HFValidationError:
        valid = False
    if not valid:
        raise CheckpointError(f"model not found: no folder {repo_id!r} here, and it is not a Hub repo id (owner/name)")
    try:
        return _download(repo_id, revision, token, cache_dir, local_files_only, force_download)
    except CheckpointError as err:
        if path.parent.is_dir():  # "runs/modl" beside an existing runs/: most likely a mistyped local folder
            raise CheckpointError(f"model folder not found: {path} ({path.parent} holds no such folder; "
                                  f"as a Hub repo id: {err})") from None
        raise


def _download(repo_id: str, revision, token, cache_dir, local_files_only: bool, force_download: bool) -> Path:
    try:
        return Path(snapshot_download(repo_id, revision=revision, token=token, cache_dir=cache_dir, local_files_only=local_files_only,
                                      force_download=force_download, allow_patterns=MODEL_FILES,
                                      library_name="stylize", library_version=__version__))
    except GatedRepoError:
        raise CheckpointError(f"Hub repo {repo_id} is gated: accept its terms on the Hub and pass a token") from None
    except RepositoryNotFoundError:
        raise CheckpointError(f"Hub repo not found (or private without a token): {repo_id}") from None
    except RevisionNotFoundError:
        raise CheckpointError(f"revision {revision!r} not found in Hub repo {repo_id}") from None
    except LocalEntryNotFoundError:
        why = "local_files_only is set" if local_files_only else "the Hub cannot be reached"
        raise CheckpointError(f"no cached copy of {repo_id} and {why}") from None
    except (HfHubHTTPError, OSError, ValueError) as err:
        raise CheckpointError(f"cannot download {repo_id}: {one_line(err)}") from None


def model_card(config: dict, repo_id: str, sample_image: str | None, loss_curve: str | None = None) -> str:
    """The README.md of a pushed model: metadata through huggingface_hub's ModelCardData (checked as the Hub reads it),
    then how to use it, its λ and its training stages."""
    lam = config["lambdas"]
    training = config.get("training", {})
    stages = training.get("stages") or [{}]
    rows = "\n".join(
        f"| {n} | {lam['defaults'][n]:g} | {lam['ranges'][n][0]:g} – {lam['ranges'][n][1]:g} |" for n in lam["names"]
    )
    data = stages[-1].get("data", {})
    sample = f"\n![samples]({sample_image})\n" if sample_image else ""
    curve = f"\n![G and D losses during training]({loss_curve})\n" if loss_curve else ""
    metadata = ModelCardData(library_name="stylize", license="mit", pipeline_tag="image-to-image",
                             tags=["style-transfer", "gan", "image-to-image"])
    return str(ModelCard(f"---\n{metadata.to_yaml()}\n---\n" + f"""
# {repo_id}

Arbitrary style transfer generator for [Stylize]({SOURCE_URL}): content photo + any style image →
stylised image, conditioned on the five loss weights (λ), so each slider is one forward pass.

## Use

```bash
pip install "stylize @ git+{SOURCE_URL}"
stylize photo.jpg painting.jpg -o out.png --model {repo_id}
```

```python
from stylize.pipeline import Stylizer
stylizer = Stylizer.from_pretrained("{repo_id}")     # revision=, token=, cache_dir=, local_files_only= as in huggingface_hub
image = stylizer("photo.jpg", "painting.jpg", lambdas={{"style": 10.0}})
image.save("out.png")
```

## Loss weights (λ)

Sampled log-uniformly per example during training; values outside the trained range are clamped.

| λ | default | trained range |
|---|---|---|
{rows}
{sample}
## Training

- steps: {training.get("step", "?")} in {len(stages)} stage(s); the last: {_stage_line(stages[-1])}
- content images (last stage): {_data_line(data.get("content"))}
- style images (last stage): {_data_line(data.get("style"))}{curve}
- encoder: VGG16 (ImageNet, Caffe weights) blocks 1–4, frozen

## Licences

The generator and critic: MIT. `vgg16_imagenet.safetensors` holds the VGG16 ImageNet weights of Simonyan & Zisserman,
"Very Deep Convolutional Networks for Large-Scale Image Recognition" (ICLR 2015), released under CC BY 4.0
(https://www.robots.ox.ac.uk/~vgg/research/very_deep/); converted as described in the code's `weights/README.md`.
"""))


def _stage_line(stage: dict) -> str:
    return (f"{stage.get('steps', '?')} steps, crop {stage.get('size', '?')} px (paintings {stage.get('style_size', '?')} px), "
            f"batch {stage.get('batch_size', '?')} x {stage.get('processes', 1)} process(es), {stage.get('device', '?')}, "
            f"{stage.get('minutes', '?')} min")


def _data_line(description: dict | None) -> str:
    if not description:
        return "?"
    if description.get("streamed"):
        return (f"the dataset `{description['dataset']}` streamed (split {description['split']}, shuffled in a buffer of "
                f"{description['shuffle_buffer']} with seed {description['shuffle_seed']})")
    if "dataset" in description:
        return f"{description['images']} from the dataset `{description['dataset']}` (split {description['split']})"
    listed = f" (file list sha256 {description['file_list_sha256'][:12]})" if "file_list_sha256" in description else ""
    return f"{description.get('images', '?')} from a folder named `{description.get('folder', '?')}`{listed}"  # older runs: no hash


class HubError(RuntimeError):
    """The Hub repo cannot be created or reached; the message is one line."""


def _named(err: BaseException) -> str:
    return f"{type(err).__name__}: {one_line(err)}"


class HubUploader:
    """Uploads snapshots of the model folder without blocking training; uploads run in order.

    The repo is created (or found) at construction, so a missing network or token fails before any work. A failed
    upload is logged when it fails; the next save uploads the whole folder again, so it is retried then.
    """

    def __init__(self, repo_id: str, private: bool | None = None, token: str | None = None, api: HfApi | None = None):
        self.repo_id = repo_id
        self.api = api or HfApi(token=token, library_name="stylize", library_version=__version__)
        try:  # private=None: the Hub's default for this user or organisation
            self.api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        except Exception as err:  # noqa: BLE001 - network, auth and HTTP errors all stop the run the same way
            raise HubError(f"cannot create or reach Hub repo {repo_id} ({_named(err)}); check the network and "
                           f"`hf auth login` (or HF_TOKEN), or leave out --push-to-hub") from None
        self.pending: list[Future] = []

    def push(self, folder: Path, step: int) -> Future:
        # Upload a frozen copy: the next save must not change files mid-upload.
        snapshot = Path(tempfile.mkdtemp(prefix="stylize-upload-"))
        shutil.copytree(folder, snapshot, dirs_exist_ok=True)
        future = self.api.upload_folder(
            repo_id=self.repo_id, repo_type="model", folder_path=str(snapshot),
            commit_message=f"Stylize checkpoint at step {step}", run_as_future=True,
        )
        future.add_done_callback(lambda done: self._finished(done, snapshot, step))
        self.pending.append(future)
        return future

    def _finished(self, future: Future, snapshot: Path, step: int) -> None:
        shutil.rmtree(snapshot, ignore_errors=True)
        if future.exception() is not None:
            log.error("Hub upload of step %d to %s failed (%s); the next save uploads again", step, self.repo_id,
                      _named(future.exception()))

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
