"""The MNIST-format loaders: where they look, the download (pooch mocked: tests never go online), the decoded
cache, every bad file, and the book's ``utils.mnist`` module. The data sets are small IDX files written here."""

import dataclasses
import gzip
import hashlib
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fastdl import datasets
from fastdl.datasets import sources
from fastdl.datasets.idx import write_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")


def small_set(seed=0, n_train=12, n_test=5, side=28):
    rng = np.random.default_rng(seed)
    return {"X_train": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
            "X_test": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test).astype(np.uint8)}


def write_set(folder, arrays, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, stem in sources.IDX_STEMS.items():
        write_idx(folder / (stem + (".gz" if compress else "")), arrays[key], compress=compress)
    return folder


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No real cache folder, no FASTDL_DATA, no system folder: each test sets what it needs."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FASTDL_DATA", raising=False)
    monkeypatch.setitem(sources.SOURCES, "fashion-mnist",
                        dataclasses.replace(sources.SOURCES["fashion-mnist"], system_folders=()))


def expected_prepared(arrays, dtype=np.float32):
    X = arrays["X_train"].reshape(len(arrays["X_train"]), -1).astype(np.float64)
    mean, std = X.mean(), X.std()
    X_test = arrays["X_test"].reshape(len(arrays["X_test"]), -1).astype(np.float64)
    return ((X - mean) / std).astype(dtype), ((X_test - mean) / std).astype(dtype)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_explicit_folder_is_prepared_as_the_book(tmp_path, compress, dtype):
    arrays = small_set()
    folder = write_set(tmp_path / "data", arrays, compress)
    X_train, y_train, X_test, y_test = datasets.fashion_mnist(folder, dtype=dtype)
    want_train, want_test = expected_prepared(arrays, dtype)
    np.testing.assert_allclose(X_train, want_train, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    np.testing.assert_allclose(X_test, want_test, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-6)
    assert X_train.dtype == dtype and y_train.dtype == dtype and X_train.shape == (12, 784)
    np.testing.assert_array_equal(y_train.argmax(axis=1), arrays["y_train"])
    np.testing.assert_array_equal(y_test.argmax(axis=1), arrays["y_test"])
    images = datasets.mnist(folder, images=True)
    assert images[0].shape == (12, 1, 28, 28) and images[2].shape == (5, 1, 28, 28)


def test_search_order_fastdl_data_then_cache_then_system(tmp_path, monkeypatch):
    in_env, in_cache, in_system = small_set(1), small_set(2), small_set(3)
    system = write_set(tmp_path / "system", in_system)
    monkeypatch.setitem(sources.SOURCES, "fashion-mnist",
                        dataclasses.replace(sources.SOURCES["fashion-mnist"], system_folders=(str(system),)))
    # only the system package's folder
    np.testing.assert_array_equal(datasets.raw("fashion-mnist", download=False)[1], in_system["y_train"])
    # the user cache folder comes before it
    write_set(sources.user_cache_dir() / "fashion-mnist", in_cache)
    np.testing.assert_array_equal(datasets.raw("fashion-mnist", download=False)[1], in_cache["y_train"])
    # $FASTDL_DATA/<name> comes first
    write_set(tmp_path / "env" / "fashion-mnist", in_env)
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path / "env"))
    np.testing.assert_array_equal(datasets.raw("fashion-mnist", download=False)[1], in_env["y_train"])
    assert sources.search_folders("fashion-mnist") == [tmp_path / "env" / "fashion-mnist",
                                                      sources.user_cache_dir() / "fashion-mnist", system]


def test_decoded_arrays_are_cached_and_refreshed_when_the_files_change(tmp_path):
    folder = write_set(tmp_path / "data", small_set(4))
    first = datasets.raw("mnist", folder)
    cached = list((sources.user_cache_dir() / "mnist").glob("decoded-*.npz"))
    assert len(cached) == 1
    with np.load(cached[0], allow_pickle=False) as stored:
        np.testing.assert_array_equal(stored["X_train"], first[0])
    # a changed file (new size and time) is decoded again; one decoded file is kept
    changed = small_set(5, n_train=7)
    write_idx(folder / "train-images-idx3-ubyte.gz", changed["X_train"], compress=True)
    write_idx(folder / "train-labels-idx1-ubyte.gz", changed["y_train"], compress=True)
    os.utime(folder / "train-images-idx3-ubyte.gz", ns=(1, 1))
    again = datasets.raw("mnist", folder)
    assert again[0].shape == (7, 28, 28)
    np.testing.assert_array_equal(again[1], changed["y_train"])
    assert len(list((sources.user_cache_dir() / "mnist").glob("decoded-*.npz"))) == 1


@pytest.mark.parametrize("damage", ["garbage", "empty", "truncated"])
def test_a_corrupt_decoded_cache_is_decoded_again(tmp_path, damage):
    folder = write_set(tmp_path / "data", small_set(6))
    want = datasets.raw("mnist", folder)
    (cached,) = (sources.user_cache_dir() / "mnist").glob("decoded-*.npz")
    data = cached.read_bytes()
    cached.write_bytes({"garbage": b"not an npz", "empty": b"", "truncated": data[:len(data) // 2]}[damage])
    np.testing.assert_array_equal(datasets.raw("mnist", folder)[0], want[0])
    with np.load(cached, allow_pickle=False) as stored:  # and the cache is whole again
        np.testing.assert_array_equal(stored["X_train"], want[0])


@pytest.mark.parametrize("damage,message", [
    ("truncate", "holds"),
    ("garbage-gzip", "corrupt gzip"),
    ("count-mismatch", "differ in count"),
    ("bad-label", "labels must be 0..9"),
])
def test_bad_files_give_clear_errors(tmp_path, damage, message):
    arrays = small_set(7)
    if damage == "count-mismatch":
        arrays["y_test"] = arrays["y_test"][:-1]
    if damage == "bad-label":
        arrays["y_train"][0] = 12
    folder = write_set(tmp_path / "data", arrays, compress=damage != "truncate")
    path = folder / "train-images-idx3-ubyte"
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-10])
    if damage == "garbage-gzip":
        (folder / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"x" * 40)
    with pytest.raises(ValueError, match=message):
        datasets.fashion_mnist(folder)


@pytest.mark.parametrize("loader", ["mnist", "fashion_mnist"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, "bool"])
def test_an_integer_dtype_is_refused_before_anything_is_read(tmp_path, loader, dtype):
    """Scaled pixels cast to integers would be silently truncated."""
    with pytest.raises(TypeError, match=f"{loader}: dtype must be a floating-point type"):
        getattr(datasets, loader)(tmp_path / "not-even-there", dtype=dtype)


def test_missing_files_name_the_file_and_the_ways_to_provide_them(tmp_path, monkeypatch):
    folder = write_set(tmp_path / "data", small_set())
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(datasets.DataNotFoundError, match="t10k-labels-idx1-ubyte"):
        datasets.mnist(folder)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.mnist(tmp_path / "nosuch")
    monkeypatch.setitem(sys.modules, "pooch", None)  # pooch not installed
    with pytest.raises(datasets.DataNotFoundError) as info:
        datasets.fashion_mnist()
    text = str(info.value)
    assert "pooch" in text and "FASTDL_DATA" in text and "1." in text and "2." in text


def fake_pooch(served, calls):
    """A stand-in for pooch.retrieve that 'downloads' from the bytes in ``served`` (by file name)."""
    def retrieve(url, known_hash=None, fname=None, path=None, **_):
        calls.append((url, known_hash))
        if fname not in served:
            raise ConnectionError(f"offline: {url}")
        target = Path(path) / fname
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(served[fname])
        return str(target)
    return types.SimpleNamespace(retrieve=retrieve)


def served_files(arrays):
    files = {}
    for key, stem in sources.IDX_STEMS.items():
        header = bytes([0, 0, 8, arrays[key].ndim]) + np.array(arrays[key].shape, ">u4").tobytes()
        files[stem + ".gz"] = gzip.compress(header + arrays[key].tobytes())
    return files


def test_download_goes_to_the_cache_checked_by_sha256(monkeypatch):
    arrays = small_set(8)
    served = served_files(arrays)
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in served.items()}
    monkeypatch.setitem(sources.SOURCES, "mnist", sources.Source("mnist", ("https://example.invalid/a/",), hashes))
    calls = []
    monkeypatch.setitem(sys.modules, "pooch", fake_pooch(served, calls))
    X_train, y_train, _, _ = datasets.raw("mnist")
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    assert len(calls) == 4 and all(h.startswith("sha256:") for _, h in calls)
    assert sorted(p.name for p in (sources.user_cache_dir() / "mnist").glob("*-ubyte.gz")) == sorted(served)
    # the next call finds them in the cache folder: no download
    datasets.raw("mnist")
    assert len(calls) == 4


def test_a_download_with_the_wrong_hash_is_rejected_and_deleted(monkeypatch):
    served = served_files(small_set(9))
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in served.items()}
    hashes["t10k-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setitem(sources.SOURCES, "mnist", sources.Source("mnist", ("https://example.invalid/",), hashes))
    monkeypatch.setitem(sys.modules, "pooch", fake_pooch(served, []))
    with pytest.raises(ValueError, match="SHA-256"):
        datasets.mnist()
    assert not (sources.user_cache_dir() / "mnist" / "t10k-images-idx3-ubyte.gz").exists()


def test_offline_download_tries_every_mirror_then_says_how_to_provide_the_files(monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "pooch", fake_pooch({}, calls))
    with pytest.raises(datasets.DataNotFoundError, match="download failed") as info:
        datasets.mnist()
    assert len(calls) == len(sources.SOURCES["mnist"].base_urls)
    assert "--data-dir" in str(info.value)


def test_install_hints_name_the_distribution():
    """Every hint names fastdl-kernels: the index's `fastdl` is an unrelated project."""
    import fastdl

    root = Path(fastdl.__file__).parent
    assert [str(p) for p in root.rglob("*.py") if 'fastdl[' in p.read_text()] == []


def test_the_published_hashes_are_sha256_hex():
    for source in sources.SOURCES.values():
        assert sorted(source.sha256) == sorted(stem + ".gz" for stem in sources.IDX_STEMS.values())
        assert all(len(h) == 64 and int(h, 16) >= 0 for h in source.sha256.values())


def test_book_utils_mnist_load(tmp_path, monkeypatch):
    arrays = small_set(10)
    write_set(tmp_path / "env" / "mnist", arrays)
    monkeypatch.setenv("FASTDL_DATA", str(tmp_path / "env"))
    from fastdl.utils import mnist

    mnist.init()
    X_train, y_train, X_test, y_test = mnist.load()
    assert X_train.dtype == np.uint8 and X_train.shape == (12, 784) and X_test.shape == (5, 784)
    assert y_train.dtype == np.int64 and y_train.shape == (12,)
    np.testing.assert_array_equal(X_train, arrays["X_train"].reshape(12, -1))
    np.testing.assert_array_equal(y_test, arrays["y_test"])


@pytest.mark.skipif(not DEBIAN_FASHION.is_dir(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package():
    X_train, y_train, X_test, y_test = datasets.fashion_mnist(DEBIAN_FASHION)
    assert X_train.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert abs(float(X_train.mean())) < 1e-3 and abs(float(X_train.std()) - 1) < 1e-3
    np.testing.assert_array_equal(y_train.sum(axis=0), np.full(10, 6000))
