"""Training data read on demand: image folders or Hugging Face datasets (memory-mapped, or streamed) -> random crops,
each a pure function of (seed, step, example), decoded in DataLoader worker processes.

Nothing is decoded before step 1 and a process holds no corpus in memory (an optional cache holds what fits a stated
budget), so memory and start-up do not grow with the corpus. Because every draw is a pure function of its key, a
resumed run, a multi-process run and any number of workers see exactly the examples of one unbroken process. A
streamed dataset has no random access: its k-th row (after a seeded shuffle buffer) is a process's k-th example, and a
resumed run reads the stream up to its position again without decoding it (the cost: docs/training.md).
"""
import functools
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from stylize.images import ImageInputError, list_images, load_image, read_name_list
from train.runs import EVERY, option

CROP_MARGIN = 1.15  # images are resized to this times the crop side (short side), then cropped at random
STREAM_WINDOW = 256  # rows a stream keeps behind its position: an unreadable row's stand-in is read again from here
log = logging.getLogger("stylize.train")


@dataclass
class DataOptions:
    """Where the photos and paintings come from: the options train.train and train.distill share."""

    content_dir: str = option("", "folder of photos, searched recursively for jpg/png/webp (or --content-dataset)")
    style_dir: str = option("", "folder of paintings, searched recursively (or --style-dataset)")
    content_dataset: str = option("", "photos from a `datasets` dataset instead of a folder: a Hub id (e.g. "
                                      "detection-datasets/coco), a folder written by save_to_disk, or an imagefolder"
                                      " directory; memory-mapped and read when drawn, or streamed (--streaming)")
    style_dataset: str = option("", "paintings from a `datasets` dataset (e.g. huggan/wikiart)")
    content_split: str = option("train", "split of --content-dataset (default %(default)s)")
    style_split: str = option("train", "split of --style-dataset (default %(default)s)")
    content_image_column: str = option("image", "image column of --content-dataset (default %(default)s)")
    style_image_column: str = option("image", "image column of --style-dataset (default %(default)s)")
    streaming: bool = option(False, "stream the datasets (`datasets`' streaming=True) instead of downloading them "
                                    "first: training starts within a minute whatever their size; rows are shuffled "
                                    "in a buffer (--shuffle-buffer) seeded by --seed, read in the training process "
                                    "(no data workers), and --resume reads the stream again up to its position")
    shuffle_buffer: int = option(1000, "rows of a streamed dataset shuffled together (default %(default)s)", 1, EVERY)
    holdout: str = option("", "file of image file names never trained on, one per line (default %(default)r)")
    cache_mb: int = option(0, "keep resized images in RAM, per data process, up to this many MB (0: decode at every "
                              "draw; memory then does not grow with the corpus)", 0, EVERY)
    workers: int = option(-1, "DataLoader worker processes per training process that read, decode and crop the next "
                              "batches (-1: none on a CPU device, where they would compete with the step for the "
                              "cores; else min(8, cores per process)); draws are the same for any number", -1, 64)


def check_data_options(parser, cfg: DataOptions) -> None:
    for kind in ("content", "style"):
        if bool(getattr(cfg, f"{kind}_dir")) == bool(getattr(cfg, f"{kind}_dataset")):
            parser.error(f"give --{kind}-dir or --{kind}-dataset (one of them)")
    if cfg.streaming and not (cfg.content_dataset or cfg.style_dataset):
        parser.error("--streaming streams --content-dataset or --style-dataset; folders are read as they are")


def load_sources(cfg: DataOptions, seed: int, rank: int = 0, world: int = 1) -> tuple["ImageSource", "ImageSource"]:
    """The photos and the paintings, listed (folders), memory-mapped or streamed (datasets); nothing is decoded yet."""
    exclude = set(read_name_list(Path(cfg.holdout))) if cfg.holdout else set()
    cache = cfg.cache_mb * 2**20 // 2
    sources = []
    for k, kind in enumerate(("content", "style")):
        dataset = getattr(cfg, f"{kind}_dataset")
        if not dataset:
            sources.append(ImageSource.from_folder(Path(getattr(cfg, f"{kind}_dir")), exclude, cache))
            continue
        stream = Stream(seed + k, cfg.shuffle_buffer, rank, world) if cfg.streaming else None
        sources.append(ImageSource.from_dataset(dataset, getattr(cfg, f"{kind}_split"), getattr(cfg, f"{kind}_image_column"),
                                                cache, stream))
    log.info("data: %s content, %s style images (read when drawn; %d names held out)",
             *(f"{len(s)}" if not s.streamed else f"a stream of {len(s) or 'unknown many'}" for s in sources), len(exclude))
    return sources[0], sources[1]


@dataclass(frozen=True)
class Stream:
    """How a dataset is streamed: its shuffle buffer's seed and size, and this process's share of its rows."""

    seed: int
    buffer: int
    rank: int = 0
    world: int = 1


def check_hub_reachable(dataset_id: str) -> None:
    """One quick request before `datasets` tries (it retries with backoff for ~25 s, a log line per try); offline
    (HF_HUB_OFFLINE=1) the cached copy is used without asking."""
    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        return
    try:
        HfApi().dataset_info(dataset_id, timeout=10)
    except HfHubHTTPError:
        return  # the Hub answered: `datasets` reports what it said (not found, gated) in its own words
    except Exception as err:  # noqa: BLE001 - no answer: httpx's or requests' connection errors and timeouts
        raise ValueError(f"cannot load dataset {dataset_id!r}: the Hub cannot be reached ({type(err).__name__}); "
                         "with a copy in the cache, set HF_HUB_OFFLINE=1") from None


@dataclass
class ImageSource:
    """A corpus of images read when drawn: a folder's files, or the image column of a `datasets` Dataset (memory-mapped
    Arrow: random access without loading it). `cache_bytes` keeps resized images in this process up to that budget."""

    name: str
    count: int
    read: object  # index -> PIL image (raises on an unreadable one)
    description_: dict
    cache_bytes: int = 0
    streamed: bool = False
    skipped: set = field(default_factory=set)
    cache: dict = field(default_factory=dict)
    cached_bytes: int = 0

    @classmethod
    def from_folder(cls, folder: Path, exclude: set[str] = frozenset(), cache_bytes: int = 0) -> "ImageSource":
        folder = Path(folder)
        paths = [p for p in list_images(folder) if p.name not in exclude]
        if not paths:
            raise ValueError(f"no images in {folder}")
        names = "\n".join(sorted(p.relative_to(folder).as_posix() for p in paths))
        # names, counts and hashes only: config.json and the model card are published, a machine's paths are not
        description = {"folder": folder.resolve().name, "images": len(paths),
                       "file_list_sha256": hashlib.sha256(names.encode()).hexdigest()}
        return cls(str(folder), len(paths), FolderReader(paths), description, cache_bytes)

    @classmethod
    def from_dataset(cls, name: str, split: str = "train", column: str = "image", cache_bytes: int = 0,
                     stream: Stream | None = None) -> "ImageSource":
        """A Hub dataset id (downloaded once, then memory-mapped, or with `stream` streamed), a folder written by
        Dataset.save_to_disk, or an `imagefolder` directory."""
        import datasets

        if not Path(name).is_dir():
            check_hub_reachable(name)
        streaming = stream is not None
        try:
            if Path(name).is_dir() and (Path(name) / "dataset_info.json").exists():
                dataset = datasets.load_from_disk(name)
            elif Path(name).is_dir():
                dataset = datasets.load_dataset("imagefolder", data_dir=name, split=split, streaming=streaming)
            else:
                dataset = datasets.load_dataset(name, split=split, streaming=streaming)
        except Exception as err:  # noqa: BLE001 - the Hub, the network and the loaders raise anything
            raise ValueError(f"cannot load dataset {name!r} (split {split!r}): {type(err).__name__}: "
                             f"{' '.join(str(err).split())[:200]}") from None
        if isinstance(dataset, (datasets.DatasetDict, datasets.IterableDatasetDict)):
            if split not in dataset:
                raise ValueError(f"dataset {name!r} has no split {split!r}; it has {', '.join(dataset)}")
            dataset = dataset[split]
        if column not in (dataset.column_names or [column]):
            raise ValueError(f"dataset {name!r} has no column {column!r}; it has {', '.join(dataset.column_names)}")
        label = Path(name).name if Path(name).is_dir() else name
        if streaming:
            if isinstance(dataset, datasets.Dataset):
                dataset = dataset.to_iterable_dataset(num_shards=min(64, max(1, len(dataset))))
            dataset = dataset.cast_column(column, datasets.Image(decode=False))  # a row skipped is not decoded
            dataset = dataset.shuffle(seed=stream.seed, buffer_size=stream.buffer)
            if stream.world > 1:
                dataset = datasets.distributed.split_dataset_by_node(dataset, stream.rank, stream.world)
            split_info = (dataset.info.splits or {}).get(split)
            count = split_info.num_examples if split_info else 0
            description = {"dataset": label, "split": split, "streamed": True, "shuffle_seed": stream.seed,
                           "shuffle_buffer": stream.buffer}
            return cls(name, count, StreamReader(dataset, column), description, cache_bytes, streamed=True)
        if len(dataset) == 0:
            raise ValueError(f"dataset {name!r} (split {split!r}) is empty")
        description = {"dataset": label, "split": split, "images": len(dataset),
                       "fingerprint": getattr(dataset, "_fingerprint", None)}
        return cls(name, len(dataset), DatasetReader(dataset, column), description, cache_bytes)

    def __len__(self) -> int:
        return self.count

    def description(self) -> dict:
        return dict(self.description_)

    def image(self, index: int, side: int) -> torch.Tensor:
        """Image `index` as uint8 (3, H, W), short side resized to `side`. An unreadable one is counted and logged once,
        and the next readable index stands in for it (the same one every time, so draws stay pure)."""
        for offset in range(STREAM_WINDOW if self.streamed else self.count):
            i = index + offset if self.streamed else (index + offset) % self.count
            key = (i, side)
            if key in self.cache:
                return self.cache[key]
            if i in self.skipped:
                continue
            try:
                image = load_image(self.read(i), f"{self.name} image {i}")
            except (ImageInputError, OSError, ValueError):  # any file that does not decode, or cannot be read
                self.skipped.add(i)
                log.warning("skipped 1 unreadable image in %s: %s; its draws take the next image", Path(self.name).name,
                            self.read.label(i))
                continue
            scale = side / min(image.size)
            image = image.resize((max(side, round(image.width * scale)), max(side, round(image.height * scale))), Image.BICUBIC)
            tensor = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)
            if self.cached_bytes + tensor.numel() <= self.cache_bytes:
                self.cache[key] = tensor
                self.cached_bytes += tensor.numel()
            return tensor
        raise ValueError(f"no readable images in {self.name}")

    def crop(self, index: int, size: int, gen: torch.Generator) -> torch.Tensor:
        """A random size x size crop with a random horizontal flip -> (3, size, size) float in [0, 1]."""
        image = self.image(index, round(size * CROP_MARGIN))
        _, h, w = image.shape
        top = int(torch.randint(0, h - size + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - size + 1, (1,), generator=gen))
        crop = image[:, top : top + size, left : left + size]
        if torch.rand(1, generator=gen).item() < 0.5:
            crop = crop.flip(-1)
        return crop.float().div_(255.0)


class FolderReader:
    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __call__(self, i: int) -> Path:
        return self.paths[i]

    def label(self, i: int) -> str:
        return self.paths[i].name


class StreamReader:
    """Row `i` of a streamed dataset, read in order: a row ahead is reached by reading (not decoding) the rows between,
    a row more than STREAM_WINDOW behind by reading the stream again from its start (a resumed run's first draw), and
    the end of the stream starts its next epoch, reshuffled."""

    def __init__(self, dataset, column: str):
        self.dataset, self.column = dataset, column
        self.rows, self.epoch, self.position, self.window = None, 0, 0, {}

    def __getstate__(self):  # a worker process starts its own reading
        return {**self.__dict__, "rows": None, "epoch": 0, "position": 0, "window": {}}

    def start(self, epoch: int) -> None:
        self.epoch = epoch
        self.dataset.set_epoch(epoch)
        self.rows = iter(self.dataset)

    def __call__(self, i: int):
        if i not in self.window:
            if self.rows is None or i < self.position:
                self.start(0)
                self.position, self.window = 0, {}
            while self.position <= i:
                row = next(self.rows, None)
                if row is None:
                    if self.position == 0:
                        raise ValueError("the streamed dataset has no rows")
                    self.start(self.epoch + 1)
                    continue
                self.window[self.position] = row[self.column]
                self.window.pop(self.position - STREAM_WINDOW, None)
                self.position += 1
        image = self.window[i]
        return image["bytes"] if image.get("bytes") else image["path"]

    def label(self, i: int) -> str:
        return f"streamed row {i}"


class DatasetReader:
    def __init__(self, dataset, column: str):
        self.dataset, self.column = dataset, column

    def __call__(self, i: int):
        return self.dataset[i][self.column]

    def label(self, i: int) -> str:
        return f"row {i}"


def example_generator(seed: int, step: int, position: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 10_007 + position)


def shard_index(n: int, step: int, j: int, batch_size: int, rank: int, world: int, seed: int) -> int:
    """Example j of this rank's slice of the global batch at `step`: epochs of a seeded permutation, no repeats across
    ranks within an epoch; a pure function of its arguments."""
    epoch, offset = divmod(step * batch_size * world + rank * batch_size + j, n)
    return _epoch_permutation(n, seed, epoch)[offset]


@functools.lru_cache(maxsize=4)
def _epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch)).tolist()


class Examples(torch.utils.data.Dataset):
    """Example `(step, j)` of this process: a photo crop, a painting crop and `draw_condition(uniform)` (its λ, strength,
    ...: numbers drawn with uniform() from U[0, 1)), all from the example's own generator."""

    def __init__(self, sources: tuple[ImageSource, ImageSource], batch_size: int, sizes: tuple[int, int], seed: int,
                 draw_condition, rank: int = 0, world: int = 1):
        self.sources, self.batch_size, self.sizes, self.seed = sources, batch_size, sizes, seed
        self.draw_condition, self.rank, self.world = draw_condition, rank, world

    def __getitem__(self, key: tuple[int, int]):
        step, j = key
        gen = example_generator(self.seed, step, self.rank * self.batch_size + j)
        crops = [source.crop(step * self.batch_size + j if source.streamed else  # this process's own share of the stream
                             shard_index(len(source), step, j, self.batch_size, self.rank, self.world, self.seed + k), size, gen)
                 for k, (source, size) in enumerate(zip(self.sources, self.sizes))]
        return (*crops, *self.draw_condition(lambda: torch.rand(1, generator=gen).item()))

    def batch(self, step: int) -> tuple[torch.Tensor, ...]:
        """All of this process's examples at `step`, drawn in this process."""
        return collate([self[(step, j)] for j in range(self.batch_size)])


def collate(examples: list[tuple]) -> tuple[torch.Tensor, ...]:
    """Per example (content, style, *conditions) -> (contents, styles, one tensor per condition)."""
    columns = list(zip(*examples))
    return (torch.stack(columns[0]), torch.stack(columns[1]), *(torch.tensor(c) for c in columns[2:]))


def worker_count(requested: int, device: torch.device, processes: int = 1, streamed: bool = False) -> int:
    """`requested` data workers, or for -1: none on a CPU device (they would take the cores the step needs), else up
    to 8 per training process. None for a stream: each worker would read all of it to reach its own rows."""
    if streamed:
        if requested > 0:
            log.info("--workers %d: a streamed dataset is read in the training process", requested)
        return 0
    if requested >= 0:
        return requested
    return 0 if device.type == "cpu" else max(1, min(8, (os.cpu_count() or 1) // processes))


def loader(examples: Examples, first_step: int, workers: int, pin_memory: bool):
    """Batches of steps first_step, first_step + 1, ... in order, drawn `workers` processes ahead (0: in line)."""
    def keys():
        step = first_step
        while True:
            yield [(step, j) for j in range(examples.batch_size)]
            step += 1

    return iter(torch.utils.data.DataLoader(examples, batch_sampler=keys(), num_workers=workers, collate_fn=collate,
                                            pin_memory=pin_memory, prefetch_factor=4 if workers else None,
                                            persistent_workers=False))
