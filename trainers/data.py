"""Data sets as in-memory tensors, with batch-level augmentation.

Every source (sklearn digits, a generated set, Fashion-MNIST, CIFAR-10/100,
any ImageFolder directory or ``.tar.gz``) is loaded once into a
:class:`TensorData` (uint8 or float images ``[N, C, H, W]`` + labels). The
data sets used here fit in memory, and batching tensors avoids per-image
Python work: crops and flips are applied to whole batches, on the training
device. Decoded JPEG folders are cached as ``.npz`` in ``data.cache_dir``.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.config import DataConfig


class DataError(ValueError):
    """A data set that cannot be found or read; the message says where it looked."""


@dataclass
class TensorData:
    """Images ``[N, C, H, W]`` (uint8 0-255 or float) and int64 labels ``[N]``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: list[str]

    def __post_init__(self) -> None:
        if self.images.dim() != 4:
            raise DataError(f"images must be [N, C, H, W], got shape {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise DataError(f"{len(self.images)} images but {len(self.labels)} labels")
        if len(self.images) == 0:
            raise DataError("the data set is empty")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, n: int, seed: int) -> TensorData:
        """A stratified random subset of ``n`` items (all classes kept in proportion)."""
        return self.split(n, seed)[0] if n < len(self) else self

    def split(self, n: int, seed: int) -> tuple[TensorData, TensorData]:
        """``(n stratified random items, the rest)``: the one stratified draw of this module.

        Items are drawn round-robin over classes in a seeded random order, so
        every class is represented in proportion (within one item), and the
        first ``n >= number of classes`` items hold at least one of each class.
        """
        if not 0 < n < len(self):
            raise DataError(f"cannot draw {n} of {len(self)} items: need 0 < n < {len(self)}")
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=gen)
        labels = self.labels[order]
        # round-robin over classes so every class is represented in proportion
        rank = torch.empty_like(order)
        for c in labels.unique():
            idx = (labels == c).nonzero().flatten()
            rank[idx] = torch.arange(len(idx)) * len(self) // len(idx)
        ranked = order[torch.argsort(rank, stable=True)]
        return self._take(ranked[:n]), self._take(ranked[n:])

    def _take(self, idx: torch.Tensor) -> TensorData:
        idx = idx.sort().values
        return TensorData(self.images[idx], self.labels[idx], self.classes)


@dataclass
class DataBundle:
    """Train, validation and test splits plus what the model needs to know about them.

    ``val`` is carved from the source's training set (:func:`carve_validation`)
    and is what every choice of a run reads; ``test`` is only reported.
    """

    train: TensorData
    val: TensorData
    test: TensorData
    mean: tuple[float, ...]
    std: tuple[float, ...]
    name: str

    @property
    def in_channels(self) -> int:
        return self.train.images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train.images.shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.train.classes)


def load_data(cfg: DataConfig, seed: int = 0) -> DataBundle:
    """Load the configured data set, carve the validation split, then apply ``subset``/``test_subset``.

    The validation split is carved first, from the whole training set, so
    that ``subset`` keeps meaning "train on this many images" and runs that
    differ only in ``subset`` select on the same validation images. Channel
    statistics come from the training part only.
    """
    loaders = {
        "digits": _digits,
        "synthetic": _synthetic,
        "fashion-mnist": _fashion_mnist,
        "cifar10": _cifar10,
        "cifar100": _cifar100,
        "imagefolder": _imagefolder,
    }
    train, test = loaders[cfg.name](cfg, seed)
    val, train = carve_validation(train, cfg.val_fraction, seed)
    if cfg.subset:
        train = train.subset(cfg.subset, seed)
    if cfg.test_subset:
        test = test.subset(cfg.test_subset, seed + 1)
    mean, std = _channel_stats(train.images)
    return DataBundle(train, val, test, mean, std, cfg.name)


def validation_size(labels: torch.Tensor, fraction: float) -> int:
    """``fraction`` of the items, rounded, and at least one per class present."""
    return max(round(fraction * len(labels)), len(labels.unique()))


def carve_validation(train: TensorData, fraction: float, seed: int) -> tuple[TensorData, TensorData]:
    """``(validation, the rest for training)``: a seeded, stratified split of a training set.

    Refused (naming the classes) when a class would be left with no training
    image, e.g. a class of a single image, or a fraction so large it takes all.
    """
    val, rest = train.split(validation_size(train.labels, fraction), seed)
    missing = sorted(set(train.labels.unique().tolist()) - set(rest.labels.unique().tolist()))
    if missing:
        names = ", ".join(repr(train.classes[c]) for c in missing[:5])
        raise DataError(
            f"data.val_fraction={fraction}: the validation split ({len(val)} of {len(train)} training images) "
            f"would take every training image of class(es) {names}"
        )
    return val, rest


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    x = _to_unit(images[:10000]).transpose(0, 1).reshape(images.shape[1], -1)
    std = x.std(1).clamp_min(1e-3)
    return tuple(x.mean(1).tolist()), tuple(std.tolist())


def _to_unit(images: torch.Tensor) -> torch.Tensor:
    return images.float() / 255.0 if images.dtype == torch.uint8 else images.float()


# ---------------------------------------------------------------- sources


def _digits(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    """scikit-learn's 8x8 digits (1797 images, ships with the package): 80/20 split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(digits.target, dtype=torch.int64)
    idx_train, idx_test = train_test_split(
        np.arange(len(y)), test_size=0.2, stratify=digits.target, random_state=0
    )
    classes = [str(i) for i in range(10)]
    return (
        TensorData(x[idx_train], y[idx_train], classes),
        TensorData(x[idx_test], y[idx_test], classes),
    )


def make_synthetic(
    n_train: int = 512, n_test: int = 128, classes: int = 4, channels: int = 1, size: int = 8, seed: int = 0
) -> tuple[TensorData, TensorData]:
    """A small generated set for tests: noisy class prototypes (learnable in seconds)."""
    gen = torch.Generator().manual_seed(seed)
    protos = torch.rand(classes, channels, size, size, generator=gen)
    names = [f"class{i}" for i in range(classes)]

    def split(n: int) -> TensorData:
        y = torch.arange(n) % classes
        x = protos[y] + 0.25 * torch.randn(n, channels, size, size, generator=gen)
        return TensorData(x.clamp(0, 1), y, names)

    return split(n_train), split(n_test)


def _synthetic(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    return make_synthetic(seed=seed)


def _candidate_roots(cfg: DataConfig) -> list[Path]:
    roots = [Path(cfg.root)] if cfg.root else []
    if os.environ.get("SNNCOST_DATA"):
        roots.append(Path(os.environ["SNNCOST_DATA"]))
    roots += [Path("../shared/data"), Path(cfg.cache_dir)]
    return roots


def _fashion_mnist(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    """Fashion-MNIST via torchvision; raw ``.gz`` IDX files are staged into the cache."""
    from torchvision.datasets import FashionMNIST

    files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
    cache = Path(cfg.cache_dir) / "torchvision"
    raw = cache / "FashionMNIST" / "raw"
    tried = []
    if not all((raw / f).exists() for f in files):
        for root in _candidate_roots(cfg):
            for d in (root, root / "fashion-mnist", root / "FashionMNIST" / "raw"):
                tried.append(str(d))
                if all((d / f).exists() or (d / f"{f}.gz").exists() for f in files):
                    _stage_idx(d, raw, files)
                    break
            if all((raw / f).exists() for f in files):
                break
    if not all((raw / f).exists() for f in files) and not cfg.download:
        raise DataError(
            "Fashion-MNIST not found (looked in: " + ", ".join(tried) + "); set data.root to the directory "
            "holding the IDX files, or data.download=true when online"
        )
    out = []
    for train in (True, False):
        ds = FashionMNIST(str(cache), train=train, download=cfg.download)
        out.append(TensorData(ds.data.unsqueeze(1).contiguous(), ds.targets.long(), list(ds.classes)))
    return out[0], out[1]


def _stage_idx(src: Path, raw: Path, files: list[str]) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        if (src / f).exists():
            shutil.copyfile(src / f, raw / f)
        else:
            with gzip.open(src / f"{f}.gz", "rb") as fin, open(raw / f".{f}.tmp", "wb") as fout:
                shutil.copyfileobj(fin, fout)
            os.replace(raw / f".{f}.tmp", raw / f)


def _cifar10(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    """CIFAR-10: torchvision's pickled batches, or the JPEG ImageFolder archive."""
    for root in _candidate_roots(cfg):
        for archive in (root / "cifar10-jpeg.tar.gz", root):
            if archive.suffixes[-2:] == [".tar", ".gz"] and archive.is_file():
                return _imagefolder_splits(archive, cfg)
        if (root / "cifar10-jpeg" / "train").is_dir():
            return _imagefolder_splits(root / "cifar10-jpeg", cfg)
    return _torchvision_cifar("CIFAR10", cfg)


def _cifar100(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    return _torchvision_cifar("CIFAR100", cfg)


def _torchvision_cifar(name: str, cfg: DataConfig) -> tuple[TensorData, TensorData]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, name)
    errors = []
    for root in _candidate_roots(cfg):
        try:
            splits = [cls(str(root), train=t, download=cfg.download) for t in (True, False)]
        except (RuntimeError, OSError) as exc:
            errors.append(f"{root}: {str(exc).splitlines()[0]}")
            continue
        return tuple(  # type: ignore[return-value]
            TensorData(torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets), list(ds.classes))
            for ds in splits
        )
    raise DataError(f"{name} not found; tried " + "; ".join(errors) + " (set data.root, or data.download=true when online)")


def _imagefolder(cfg: DataConfig, seed: int) -> tuple[TensorData, TensorData]:
    if not cfg.root:
        raise DataError("data.name=imagefolder needs data.root: a directory with train/ and test/ (or a .tar.gz)")
    return _imagefolder_splits(Path(cfg.root), cfg)


def _imagefolder_splits(path: Path, cfg: DataConfig) -> tuple[TensorData, TensorData]:
    """Decode an ImageFolder tree (``train/`` and ``test/``, one folder per class) once, then cache."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such directory or archive")
    key = hashlib.sha1(f"{path.resolve()}:{path.stat().st_mtime_ns}".encode()).hexdigest()[:12]
    cache = Path(cfg.cache_dir) / f"imagefolder-{path.name.split('.')[0]}-{key}.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as z:
            classes = [str(c) for c in z["classes"]]
            return (
                TensorData(torch.from_numpy(z["xtr"]), torch.from_numpy(z["ytr"]), classes),
                TensorData(torch.from_numpy(z["xte"]), torch.from_numpy(z["yte"]), classes),
            )
    tree = path
    if path.is_file():
        tree = Path(cfg.cache_dir) / f"unpacked-{key}"
        if not tree.exists():
            _safe_extract(path, tree)
    tree = _find_split_parent(tree)
    splits = [_decode_folder(tree / split) for split in ("train", "test")]
    if splits[0][2] != splits[1][2]:
        raise DataError(f"{tree}: train/ and test/ have different class folders")
    tmp = cache.with_suffix(".tmp.npz")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(tmp, xtr=splits[0][0], ytr=splits[0][1], xte=splits[1][0], yte=splits[1][1], classes=np.array(splits[0][2]))
    os.replace(tmp, cache)
    return tuple(TensorData(torch.from_numpy(x), torch.from_numpy(y), c) for x, y, c in splits)  # type: ignore[return-value]


def _find_split_parent(tree: Path) -> Path:
    for cand in [tree, *sorted(p for p in tree.iterdir() if p.is_dir())]:
        if (cand / "train").is_dir() and (cand / "test").is_dir():
            return cand
    raise DataError(f"{tree}: expected train/ and test/ class folders (ImageFolder layout)")


def _safe_extract(archive: Path, dest: Path) -> None:
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:*") as tar:
            tar.extractall(tmp, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"{archive}: cannot unpack ({exc})") from None
    os.replace(tmp, dest)


def _decode_folder(folder: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    from PIL import Image
    from tqdm import tqdm

    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(f"{folder}: no class folders (expected {folder}/<class>/<image files>)")
    # hidden files (.DS_Store, ._x.jpg, ...) are not images
    files = [
        (f, i)
        for i, c in enumerate(classes)
        for f in sorted((folder / c).iterdir())
        if f.is_file() and not f.name.startswith(".")
    ]
    if not files:
        raise DataError(f"{folder}: no image files in its {len(classes)} class folder(s)")

    def decode(f: Path) -> np.ndarray:
        try:
            with Image.open(f) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
            raise DataError(f"{f}: not a readable image ({exc})") from None

    first = decode(files[0][0])
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    for k, (f, _) in enumerate(tqdm(files, desc=f"decoding {folder.name}", unit="img", mininterval=2)):
        img = decode(f)
        if img.shape != first.shape:
            raise DataError(f"{f}: image shape {img.shape} differs from {first.shape}")
        out[k] = img
    labels = np.array([i for _, i in files], dtype=np.int64)
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2)), labels, classes


# ---------------------------------------------------------------- batching


class BatchLoader:
    """Iterates normalised (and optionally augmented) batches of a :class:`TensorData`.

    Shuffling uses a generator seeded by ``seed`` and the epoch, so a resumed
    run sees exactly the batches an uninterrupted one would. ``rank`` and
    ``world`` shard each epoch's permutation for distributed training.
    ``channels_last`` yields images in that memory layout (the run's ``channels_last``).
    """

    def __init__(
        self,
        data: TensorData,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        shuffle: bool = False,
        augment: bool = False,
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        channels_last: bool = False,
    ) -> None:
        self.data, self.batch_size = data, batch_size
        self.shuffle, self.augment, self.device = shuffle, augment, torch.device(device)
        self.seed, self.rank, self.world = seed, rank, world
        self.epoch = 0
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.mean = torch.tensor(mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self._indices())
        return (n + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.data)
        if self.shuffle:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(n, generator=gen)
        else:
            order = torch.arange(n)
        if self.world > 1:
            per = (n + self.world - 1) // self.world
            order = torch.cat([order, order[: per * self.world - n]])  # pad, like DistributedSampler
            order = order[self.rank :: self.world]
        return order

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self._indices()
        gen = torch.Generator().manual_seed(self.seed * 7_919 + self.epoch + 1)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            x = _to_unit(self.data.images[idx]).to(self.device, non_blocking=True)
            y = self.data.labels[idx].to(self.device, non_blocking=True)
            if self.augment:
                x = _augment(x, gen)
            yield ((x - self.mean) / self.std).contiguous(memory_format=self.memory_format), y


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop with zero padding (size/8 px) and horizontal flip, per image."""
    n, _, h, w = x.shape
    pad = max(1, h // 8)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=gen).to(x.device)
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device).view(1, w)).view(n, 1, 1, w)
    flip = torch.rand(n, generator=gen).to(x.device) < 0.5
    cols = torch.where(flip.view(n, 1, 1, 1), cols.flip(-1), cols)
    c = x.shape[1]
    rows = rows.expand(n, c, h, w)
    cols = cols.expand(n, c, h, w)
    batch = torch.arange(n, device=x.device).view(n, 1, 1, 1).expand(n, c, h, w)
    chan = torch.arange(c, device=x.device).view(1, c, 1, 1).expand(n, c, h, w)
    return padded[batch, chan, rows, cols]
