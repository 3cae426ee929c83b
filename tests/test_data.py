"""Data loading: built-in digits, generated data, batching, and real data when present."""

from pathlib import Path

import pytest
import torch

from trainers.config import DataConfig
from trainers.data import BatchLoader, DataError, TensorData, load_data, make_synthetic

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def test_digits_split_and_stats():
    d = load_data(DataConfig(name="digits"))
    assert (len(d.train), len(d.val), len(d.test)) == (1437 - 144, 144, 360)  # val: 10% of the 1,437
    assert (d.in_channels, d.image_size, d.num_classes) == (1, 8, 10)


def test_subset_is_stratified():
    train, _ = make_synthetic(n_train=400, classes=4)
    sub = train.subset(40, seed=0)
    assert len(sub) == 40
    assert torch.bincount(sub.labels).tolist() == [10, 10, 10, 10]


def test_loader_is_deterministic_per_epoch_and_shards():
    train, _ = make_synthetic(n_train=100)
    mk = lambda **kw: BatchLoader(train, 16, (0.5,), (0.25,), shuffle=True, augment=True, seed=3, **kw)  # noqa: E731
    a, b = mk(), mk()
    a.set_epoch(2)
    b.set_epoch(2)
    for (xa, ya), (xb, yb) in zip(a, b, strict=False):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    shards = [mk(rank=r, world=2) for r in range(2)]
    seen = torch.cat([y for s in shards for _, y in s])
    assert len(seen) == 100


def test_augment_keeps_shapes():
    train, _ = make_synthetic(n_train=8, channels=3, size=32)
    x, _ = next(iter(BatchLoader(train, 8, (0, 0, 0), (1, 1, 1), augment=True)))
    assert x.shape == (8, 3, 32, 32)


def test_bad_data_errors():
    with pytest.raises(DataError, match="empty"):
        TensorData(torch.zeros(0, 1, 2, 2), torch.zeros(0, dtype=torch.long), [])
    with pytest.raises(DataError, match=r"\[N, C, H, W\]"):
        TensorData(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), [])
    with pytest.raises(DataError, match="data.root"):
        load_data(DataConfig(name="imagefolder"))
    with pytest.raises(DataError, match="no such directory"):
        load_data(DataConfig(name="imagefolder", root="/nonexistent/folder"))


def test_imagefolder_from_generated_tree(tmp_path):
    from PIL import Image

    for split in ("train", "test"):
        for c in ("cat", "dog"):
            (tmp_path / "tree" / split / c).mkdir(parents=True)
            for i in range(3):
                Image.new("RGB", (6, 6), (i * 40, 0, 0)).save(tmp_path / "tree" / split / c / f"{i}.png")
    cfg = DataConfig(name="imagefolder", root=str(tmp_path / "tree"), cache_dir=str(tmp_path / "cache"))
    d = load_data(cfg)
    assert d.train.images.shape == (4, 3, 6, 6) and d.val.images.shape == (2, 3, 6, 6)  # 1 per class to val
    assert d.train.classes == ["cat", "dog"]
    assert torch.equal(load_data(cfg).train.images, d.train.images)  # from the cache


@pytest.mark.skipif(not (SHARED / "fashion-mnist").is_dir(), reason="../shared/data not present")
def test_real_fashion_mnist_subset(tmp_path):
    cfg = DataConfig(name="fashion-mnist", root=str(SHARED), subset=500, test_subset=200, cache_dir=str(tmp_path))
    d = load_data(cfg)
    assert (len(d.train), len(d.test), d.image_size, d.num_classes) == (500, 200, 28, 10)
