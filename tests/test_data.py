"""nasfilter.data: batches from tiny files in the genuine CIFAR / ImageNet16 formats."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import nasfilter.data.cifar as cifar
from nasfilter.data import (
    BatchInfo,
    default_data_dir,
    describe,
    fetch,
    indices_sha256,
    load_batch,
    synthetic_batch,
)
from nasfilter.errors import DataError, UsageError

PER_BATCH = 20  # CIFAR-10 fixture: 5 train batches of 20 + a test batch of 20
C10_MEAN = (0.4914, 0.4822, 0.4465)
C10_STD = (0.2470, 0.2435, 0.2616)


# -- fixtures in the official formats ---------------------------------------------------
def _cifar_rows(n: int, start: int, seed: int) -> np.ndarray:
    """n channel-major 32x32 RGB rows; pixel 0 holds the global index (identifies the
    image), pixel (c=0, y=0, x=1) is 255 and pixel (c=2, y=0, x=1) is 0 in every image."""
    rows = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    rows[:, 0] = np.arange(start, start + n)
    rows[:, 1] = 255
    rows[:, 2 * 1024 + 1] = 0
    return rows


def _dump(path: Path, obj: object, protocol: int = 2) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def make_cifar10(root: Path, meta: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``root/cifar-10-batches-py``; returns (train rows, train labels, test rows)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train = _cifar_rows(5 * PER_BATCH, 0, 1)
    labels = np.arange(5 * PER_BATCH) % 10
    for b in range(5):
        sl = slice(b * PER_BATCH, (b + 1) * PER_BATCH)
        entry = {
            b"batch_label": b"training batch %d of 5" % (b + 1),
            b"labels": [int(x) for x in labels[sl]],
            b"data": train[sl],
            b"filenames": [b"img_%d.png" % i for i in range(sl.start, sl.stop)],
        }
        _dump(folder / f"data_batch_{b + 1}", entry)
    test = _cifar_rows(PER_BATCH, 200, 2)
    _dump(folder / "test_batch", {b"labels": [9] * PER_BATCH, b"data": test})
    if meta:
        _dump(
            folder / "batches.meta",
            {b"num_cases_per_batch": PER_BATCH, b"label_names": [b"x"] * 10, b"num_vis": 3072},
        )
    (folder / "readme.html").write_text("<html></html>")
    return train, labels, test


def make_tar(folder: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        # not in name order, like the official archive
        for p in sorted(folder.iterdir(), reverse=True):
            tar.add(p, arcname=f"{folder.name}/{p.name}")
    return archive


def make_cifar100(root: Path) -> tuple[np.ndarray, np.ndarray]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    train = _cifar_rows(30, 0, 3)
    fine = (np.arange(30) * 7) % 100
    _dump(
        folder / "train",
        {
            b"filenames": [b"f"] * 30,
            b"batch_label": b"training batch 1 of 1",
            b"fine_labels": [int(x) for x in fine],
            b"coarse_labels": [int(x) // 5 for x in fine],
            b"data": train,
        },
    )
    _dump(
        folder / "test",
        {b"fine_labels": [1] * 10, b"coarse_labels": [0] * 10, b"data": _cifar_rows(10, 0, 4)},
    )
    _dump(folder / "meta", {b"fine_label_names": [b"x"] * 100})
    return train, fine


def make_imagenet16(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """ImageNet16 batches with str keys (as NATS-Bench reads them with latin1); labels
    1..200 so that some fall outside ImageNet16-120. Returns all train rows and labels."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(5)
    rows_all, labels_all = [], []
    for b in range(1, 11):
        rows = rng.integers(0, 256, size=(12, 768), dtype=np.uint8)
        labels = [int(x) for x in rng.integers(1, 201, size=12)]
        labels[0], labels[1], labels[2] = 1, 120, 121  # both edges of the subset
        rows_all.append(rows)
        labels_all += labels
        _dump(folder / f"train_data_batch_{b}", {"data": rows, "labels": labels, "mean": 0.0}, 4)
    _dump(folder / "val_data", {"data": rows_all[0][:5], "labels": [3, 130, 120, 1, 500]}, 4)
    return np.concatenate(rows_all), np.asarray(labels_all)


@pytest.fixture(scope="module")
def c10(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("c10")
    train, labels, test = make_cifar10(root)
    tar_root = tmp_path_factory.mktemp("c10tar")
    make_tar(root / "cifar-10-batches-py", tar_root / "cifar-10-python.tar.gz")
    return root, tar_root, train, labels, test


# -- CIFAR-10 -----------------------------------------------------------------------------
def test_cifar10_batch_shapes_indices_and_labels(c10) -> None:
    root, _, _, labels, _ = c10
    info = load_batch("cifar10", 8, seed=3, data_dir=root)
    assert isinstance(info, BatchInfo)
    assert info.images.shape == (8, 3, 32, 32) and info.images.dtype == np.float32
    assert info.labels.shape == (8,) and info.labels.dtype == np.int64
    assert info.dataset == "cifar10" and info.synthetic is False
    assert info.source == str(root / "cifar-10-batches-py")
    expected = np.random.default_rng(3).choice(100, size=8, replace=False)
    assert info.indices == [int(i) for i in expected]
    assert len(set(info.indices)) == 8
    np.testing.assert_array_equal(info.labels, labels[expected])
    raw = np.rint((info.images * np.float32(C10_STD[0]) + np.float32(C10_MEAN[0])) * 255)
    np.testing.assert_array_equal(raw[:, 0, 0, 0], expected)  # pixel 0 = global index


def test_cifar10_normalization_values(c10) -> None:
    root, _, train, _, _ = c10
    info = load_batch("cifar10", 5, seed=0, data_dir=root)
    assert info.mean == C10_MEAN and info.std == C10_STD
    # 255 in channel 0 -> (1 - 0.4914) / 0.2470; 0 in channel 2 -> -0.4465 / 0.2616
    np.testing.assert_allclose(info.images[:, 0, 0, 1], 2.0591093, atol=1e-6)
    np.testing.assert_allclose(info.images[:, 2, 0, 1], -1.7068043, atol=1e-6)
    x = train[info.indices].reshape(-1, 3, 32, 32) / 255.0
    ref = (x - np.array(C10_MEAN)[:, None, None]) / np.array(C10_STD)[:, None, None]
    np.testing.assert_allclose(info.images, ref, atol=1e-5)


def test_same_seed_same_batch_different_seed_different(c10) -> None:
    root = c10[0]
    a = load_batch("cifar10", 10, seed=7, data_dir=root)
    b = load_batch("cifar10", 10, seed=7, data_dir=root)
    c = load_batch("cifar10", 10, seed=8, data_dir=root)
    assert a.indices == b.indices
    np.testing.assert_array_equal(a.images, b.images)
    assert a.indices != c.indices
    assert not np.array_equal(a.images, c.images)


def test_tar_and_folder_give_identical_batches(c10) -> None:
    root, tar_root = c10[0], c10[1]
    for split, k in (("train", 100), ("train", 17), ("test", 6)):
        f = load_batch("cifar10", k, seed=11, data_dir=root, split=split)
        t = load_batch("cifar10", k, seed=11, data_dir=tar_root, split=split)
        assert t.source == str(tar_root / "cifar-10-python.tar.gz")
        assert f.indices == t.indices
        np.testing.assert_array_equal(f.images, t.images)
        np.testing.assert_array_equal(f.labels, t.labels)


def test_folder_without_meta_gives_same_batch(c10, tmp_path: Path) -> None:
    make_cifar10(tmp_path, meta=False)
    a = load_batch("cifar10", 9, seed=4, data_dir=tmp_path)
    b = load_batch("cifar10", 9, seed=4, data_dir=c10[0])
    assert a.indices == b.indices
    np.testing.assert_array_equal(a.images, b.images)


def test_meta_lets_untouched_batch_files_go_unread(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    seed = next(  # a seed whose 3 draws all avoid data_batch_5 (indices 80..99)
        s for s in range(100) if max(np.random.default_rng(s).choice(100, 3, False)) < 80
    )
    (tmp_path / "cifar-10-batches-py" / "data_batch_5").write_bytes(b"garbage")
    assert len(load_batch("cifar10", 3, seed, data_dir=tmp_path).indices) == 3
    with pytest.raises(DataError, match="data_batch_5"):
        load_batch("cifar10", 100, seed, data_dir=tmp_path)


def test_data_dir_may_be_the_extracted_folder_itself(c10) -> None:
    a = load_batch("cifar10", 4, seed=1, data_dir=c10[0] / "cifar-10-batches-py")
    b = load_batch("cifar10", 4, seed=1, data_dir=c10[0])
    np.testing.assert_array_equal(a.images, b.images)


def test_test_split_reads_test_batch(c10) -> None:
    info = load_batch("cifar10", 20, seed=0, data_dir=c10[0], split="test")
    assert sorted(info.indices) == list(range(20))
    assert set(info.labels.tolist()) == {9}
    raw = np.rint((info.images[:, 0, 0, 0] * C10_STD[0] + C10_MEAN[0]) * 255)
    np.testing.assert_array_equal(raw, np.asarray(info.indices) + 200)


# -- CIFAR-100 ----------------------------------------------------------------------------
def test_cifar100_fine_labels_and_normalization(tmp_path: Path) -> None:
    _, fine = make_cifar100(tmp_path)
    info = load_batch("cifar100", 6, seed=2, data_dir=tmp_path)
    assert info.images.shape == (6, 3, 32, 32)
    assert info.indices == [int(i) for i in np.random.default_rng(2).choice(30, 6, False)]
    np.testing.assert_array_equal(info.labels, fine[info.indices])
    assert info.mean == (0.5071, 0.4865, 0.4409) and info.std == (0.2673, 0.2564, 0.2762)
    np.testing.assert_allclose(info.images[:, 0, 0, 1], (1 - 0.5071) / 0.2673, atol=1e-6)
    make_tar(tmp_path / "cifar-100-python", tmp_path / "x.tar.gz")
    tar_root = tmp_path / "t"
    tar_root.mkdir()
    (tmp_path / "x.tar.gz").rename(tar_root / "cifar-100-python.tar.gz")
    t = load_batch("cifar100", 6, seed=2, data_dir=tar_root)
    np.testing.assert_array_equal(t.images, info.images)
    assert load_batch("cifar100", 10, seed=0, data_dir=tar_root, split="test").labels.sum() == 10


# -- ImageNet16-120 -------------------------------------------------------------------------
def test_imagenet16_120_keeps_labels_up_to_120_and_shifts_them(tmp_path: Path) -> None:
    rows, labels = make_imagenet16(tmp_path / "ImageNet16")
    keep = labels <= 120
    sub_rows, sub_labels = rows[keep], labels[keep] - 1
    n = int(keep.sum())
    info = load_batch("imagenet16-120", n, seed=0, data_dir=tmp_path)
    assert info.images.shape == (n, 3, 16, 16) and info.images.dtype == np.float32
    assert info.dataset == "imagenet16-120"
    assert info.source == str(tmp_path / "ImageNet16")
    assert sorted(info.indices) == list(range(n))
    np.testing.assert_array_equal(info.labels, sub_labels[info.indices])
    assert info.labels.min() == 0 and info.labels.max() == 119
    mean = np.array([122.68, 116.66, 104.01]) / 255
    std = np.array([63.22, 61.26, 65.09]) / 255
    np.testing.assert_allclose(info.mean, mean) and np.testing.assert_allclose(info.std, std)
    x = sub_rows[info.indices].reshape(-1, 3, 16, 16) / 255.0
    np.testing.assert_allclose(
        info.images, (x - mean[:, None, None]) / std[:, None, None], atol=1e-5
    )
    with pytest.raises(DataError, match=f"has {n} samples"):
        load_batch("imagenet16-120", n + 1, seed=0, data_dir=tmp_path)
    # the folder itself as data_dir; the val split
    same = load_batch("imagenet16-120", n, seed=0, data_dir=tmp_path / "ImageNet16")
    np.testing.assert_array_equal(same.images, info.images)
    val = load_batch("imagenet16-120", 3, seed=0, data_dir=tmp_path, split="val")
    assert sorted(val.labels.tolist()) == [0, 2, 119]


def test_imagenet16_missing_and_incomplete(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        load_batch("imagenet16-120", 4, 0, data_dir=tmp_path)
    assert str(tmp_path / "ImageNet16") in str(err.value)
    assert "\n" not in str(err.value)
    make_imagenet16(tmp_path / "ImageNet16")
    os.remove(tmp_path / "ImageNet16" / "train_data_batch_7")
    with pytest.raises(DataError, match="lacks train_data_batch_7"):
        load_batch("imagenet16-120", 4, 0, data_dir=tmp_path)


# -- synthetic ------------------------------------------------------------------------------
def test_synthetic_is_seeded_gaussian() -> None:
    a = load_batch("synthetic", 5, seed=9, data_dir="/nonexistent")
    b = load_batch("synthetic", 5, seed=9)
    c = load_batch("synthetic", 5, seed=10)
    assert a.synthetic is True and a.source == "synthetic" and a.dataset == "synthetic"
    assert a.images.shape == (5, 3, 32, 32) and a.images.dtype == np.float32
    assert a.labels.dtype == np.int64
    gen = np.random.default_rng(9)
    ref = gen.standard_normal((5, 3, 32, 32), dtype=np.float32)
    np.testing.assert_array_equal(a.images, ref)
    # labels: seeded random classes, drawn after the images from the same generator
    np.testing.assert_array_equal(a.labels, gen.integers(0, 10, size=5, dtype=np.int64))
    np.testing.assert_array_equal(a.labels, b.labels)
    many = synthetic_batch(200, 1, num_classes=7).labels
    assert set(many.tolist()) == set(range(7))
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    assert synthetic_batch(2, 0, resolution=16).images.shape == (2, 3, 16, 16)
    assert synthetic_batch(2, 0, 49, channels=1, width=40).images.shape == (2, 1, 49, 40)


# -- errors -------------------------------------------------------------------------------
def test_missing_cifar_names_expected_paths(tmp_path: Path) -> None:
    where = tmp_path / "nothing"
    with pytest.raises(DataError) as err:
        load_batch("cifar10", 4, 0, data_dir=where)
    assert str(err.value) == (
        f"CIFAR-10 not found: expected {where}/cifar-10-python.tar.gz or "
        f"{where}/cifar-10-batches-py/. Pass --data-dir DIR, set NASFILTER_DATA, or add "
        f"--download."
    )
    with pytest.raises(DataError, match="cifar-100-python.tar.gz"):
        load_batch("cifar100", 4, 0, data_dir=where)


def test_incomplete_folder_lists_missing_files(tmp_path: Path) -> None:
    make_cifar10(tmp_path)
    os.remove(tmp_path / "cifar-10-batches-py" / "data_batch_3")
    with pytest.raises(DataError, match=r"cifar-10-batches-py/ lacks data_batch_3\."):
        load_batch("cifar10", 4, 0, data_dir=tmp_path)


def test_corrupt_pickle_is_a_data_error_naming_the_file(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    bad = tmp_path / "cifar-100-python" / "train"
    bad.write_bytes(bad.read_bytes()[:500])
    with pytest.raises(DataError) as err:
        load_batch("cifar100", 4, 0, data_dir=tmp_path)
    assert f"Cannot read {bad}:" in str(err.value) and "\n" not in str(err.value)
    bad.write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match="Cannot read"):
        load_batch("cifar100", 4, 0, data_dir=tmp_path)


def test_pickle_with_foreign_objects_is_refused_not_run(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    _dump(tmp_path / "cifar-100-python" / "train", {b"data": Evil()})
    with pytest.raises(DataError, match="unexpected object"):
        load_batch("cifar100", 4, 0, data_dir=tmp_path)
    assert not marker.exists()


def test_wrong_format_pickle(tmp_path: Path) -> None:
    make_cifar100(tmp_path)
    _dump(tmp_path / "cifar-100-python" / "train", {b"data": np.zeros((3, 5), np.uint8)})
    with pytest.raises(DataError, match="'fine_labels'"):
        load_batch("cifar100", 2, 0, data_dir=tmp_path)
    _dump(
        tmp_path / "cifar-100-python" / "train",
        {b"data": np.zeros((3, 5), np.uint8), b"fine_labels": [0, 1, 2]},
    )
    with pytest.raises(DataError, match="Nx3072"):
        load_batch("cifar100", 2, 0, data_dir=tmp_path)


def test_truncated_tar_is_a_data_error(c10, tmp_path: Path) -> None:
    blob = (c10[1] / "cifar-10-python.tar.gz").read_bytes()
    # cuts inside a member or the headers (a cut in the end-of-archive padding after all
    # the members is harmless: the reader stops once it has the split's members)
    for cut in (len(blob) // 2, 40, len(blob) - 1000):
        (tmp_path / "cifar-10-python.tar.gz").write_bytes(blob[:cut])
        with pytest.raises(DataError) as err:
            load_batch("cifar10", 100, 0, data_dir=tmp_path)
        assert str(tmp_path / "cifar-10-python.tar.gz") in str(err.value)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="Cannot read"):
        load_batch("cifar10", 1, 0, data_dir=tmp_path)


def test_batch_larger_than_split(c10) -> None:
    with pytest.raises(DataError, match=r"--batch-size 101 is larger than .* 100 samples"):
        load_batch("cifar10", 101, 0, data_dir=c10[0])
    with pytest.raises(DataError, match="Use --batch-size 20 or less"):
        load_batch("cifar10", 21, 0, data_dir=c10[1], split="test")


def test_bad_options_are_usage_errors(c10) -> None:
    with pytest.raises(UsageError) as err:
        load_batch("mnist", 4, 0)
    assert "cifar10, cifar100, imagenet16-120, synthetic" in str(err.value)
    for bad in ({"batch_size": 0}, {"batch_size": -3}, {"seed": -1}, {"split": "valid"}):
        kwargs = {"batch_size": 4, "seed": 0, "data_dir": c10[0], **bad}
        with pytest.raises(UsageError):
            load_batch("cifar10", **kwargs)
    assert load_batch(" CIFAR10 ", 2, 0, data_dir=c10[0]).dataset == "cifar10"


# -- download -------------------------------------------------------------------------------
@pytest.fixture
def served(c10, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The tiny CIFAR-10 archive behind a file:// URL, patched into the module constants."""
    src = tmp_path / "server" / "cifar-10-python.tar.gz"
    src.parent.mkdir()
    src.write_bytes((c10[1] / "cifar-10-python.tar.gz").read_bytes())
    monkeypatch.setattr(cifar, "CIFAR10_URL", src.as_uri())
    monkeypatch.setattr(cifar, "CIFAR10_MD5", hashlib.md5(src.read_bytes()).hexdigest())
    return src


def test_download_from_file_url(c10, served: Path, tmp_path: Path) -> None:
    dest = tmp_path / "fresh" / "data"
    with pytest.raises(DataError, match="add --download"):
        load_batch("cifar10", 4, 0, data_dir=dest)
    info = load_batch("cifar10", 4, 0, data_dir=dest, download=True)
    assert sorted(os.listdir(dest)) == ["cifar-10-python.tar.gz"]
    assert (dest / "cifar-10-python.tar.gz").read_bytes() == served.read_bytes()
    assert info.source == str(dest / "cifar-10-python.tar.gz")
    ref = load_batch("cifar10", 4, 0, data_dir=c10[0])
    np.testing.assert_array_equal(info.images, ref.images)


def test_download_with_wrong_md5_leaves_nothing(
    served: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cifar, "CIFAR10_MD5", "0" * 32)
    dest = tmp_path / "dl"
    with pytest.raises(DataError, match="expected 0{32}; the file was deleted"):
        load_batch("cifar10", 4, 0, data_dir=dest, download=True)
    assert os.listdir(dest) == []


def test_fetch_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="failed"):
        fetch((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "out" / "x", md5=None)
    assert os.listdir(tmp_path / "out") == []
    src = tmp_path / "blob"
    src.write_bytes(b"x" * 3000)
    out = fetch(src.as_uri(), tmp_path / "out" / "x", md5=hashlib.md5(b"x" * 3000).hexdigest())
    assert out.read_bytes() == b"x" * 3000


# -- settings -------------------------------------------------------------------------------
def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NASFILTER_DATA", str(tmp_path / "d"))
    assert default_data_dir() == tmp_path / "d"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NASFILTER_DATA", "rel")
    assert default_data_dir() == tmp_path / "rel"
    monkeypatch.delenv("NASFILTER_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "nasfilter" / "data"
    assert default_data_dir().is_absolute()


def test_describe_is_json_safe_and_exact(c10) -> None:
    info = load_batch("cifar10", 3, seed=5, data_dir=c10[0])
    d = json.loads(json.dumps(describe(info)))
    assert d["dataset"] == "cifar10" and d["synthetic"] is False and d["split"] == "train"
    assert d["batch_size"] == 3 and d["seed"] == 5 and d["shape"] == [3, 3, 32, 32]
    assert d["source"] == info.source
    assert d["normalization"] == {"mean": list(C10_MEAN), "std": list(C10_STD)}
    assert d["indices"] == info.indices
    joined = ",".join(str(i) for i in info.indices).encode()
    assert d["indices_sha256"] == hashlib.sha256(joined).hexdigest() == indices_sha256(info.indices)
    assert d["images_sha256"] == hashlib.sha256(info.images.tobytes()).hexdigest()
    big = describe(synthetic_batch(200, 0))
    assert "indices" not in big and big["synthetic"] is True and big["source"] == "synthetic"


def test_module_does_not_import_torch() -> None:
    code = "import sys, nasfilter.data; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        check=True,
    )
    assert out.stdout.strip() == "False"
