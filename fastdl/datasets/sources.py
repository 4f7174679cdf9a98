"""Where the MNIST-format data sets come from: the folders searched, the download, the decoded-array cache.

A data set is four IDX files (``train-images-idx3-ubyte[.gz]`` and friends). ``find_or_fetch(name)`` looks,
in order, in

1. ``$FASTDL_DATA/<name>``,
2. the user cache folder, ``user_cache_dir()/<name>`` (``~/.cache/fastdl/<name>`` on Linux),
3. the folder of a system package that installs the files (Debian's ``dataset-fashion-mnist``),

and when none holds all four files it downloads them into the user cache folder with pooch (optional:
``pip install "fastdl-kernels[data]"``), from the data set's official location, each checked against a fixed
SHA-256. Offline, or without pooch, ``DataNotFoundError`` says the three ways to provide the files.

Decoding 70,000 gzip-compressed images takes a few tenths of a second, so the decoded uint8 arrays are
kept beside them (``decoded-<key>.npz``, no pickle, written atomically) and reused while the source files
are unchanged (the key covers their paths, sizes and modification times; one decoded file per data set).
"""

import hashlib
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from fastdl.datasets.idx import read_idx
from fastdl.utils.files import save_npz_atomically

#: the four arrays of a data set and the stem of the IDX file that holds each
IDX_STEMS = {"X_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
             "X_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


@dataclass(frozen=True)
class Source:
    name: str                       # folder name under $FASTDL_DATA and the cache
    base_urls: Tuple[str, ...]      # tried in order; each + "<stem>.gz"
    sha256: Dict[str, str]          # "<stem>.gz" -> SHA-256 of the published file
    system_folders: Tuple[str, ...] = field(default=())  # folders a system package installs the files in
    system_hint: str = ""           # how to install that package


SOURCES = {
    "mnist": Source(
        "mnist",
        ("https://storage.googleapis.com/cvdf-datasets/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        {"train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
         "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
         "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
         "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"}),
    "fashion-mnist": Source(
        "fashion-mnist",
        ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
         "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
        {"train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
         "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
         "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
         "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5"},
        ("/usr/share/datasets/fashion-mnist",), "sudo apt-get install dataset-fashion-mnist (Debian, Ubuntu)"),
}


class DataNotFoundError(FileNotFoundError):
    """The data set's files are in none of the searched folders and could not be downloaded."""


def user_cache_dir() -> Path:
    """fastdl's user cache folder: ``$XDG_CACHE_HOME/fastdl`` (default ``~/.cache/fastdl``) on Linux,
    ``~/Library/Caches/fastdl`` on macOS, ``%LOCALAPPDATA%\\fastdl\\Cache`` on Windows."""
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "fastdl"
    if os.name == "nt":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "fastdl" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fastdl"


def idx_file(folder: Path, stem: str) -> Optional[Path]:
    """The IDX file for ``stem`` in ``folder`` (plain or .gz, '-idx' or '.idx' spelling), or None."""
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        path = folder / name
        if path.is_file():
            return path
    return None


def idx_files(folder: Path) -> Dict[str, Optional[Path]]:
    """{array key: path, or None where ``folder`` lacks that file}."""
    return {key: idx_file(folder, stem) for key, stem in IDX_STEMS.items()}


def search_folders(name: str) -> List[Path]:
    """The folders searched for data set ``name``, in order."""
    folders = []
    if os.environ.get("FASTDL_DATA"):
        folders.append(Path(os.environ["FASTDL_DATA"]) / name)
    folders.append(user_cache_dir() / name)
    folders += [Path(f) for f in SOURCES[name].system_folders]
    return folders


def find_or_fetch(name: str, path=None, download: bool = True) -> Dict[str, Path]:
    """The four IDX files of data set ``name``: from ``path`` alone when given, else from the first
    searched folder that holds all four, else downloaded into the user cache folder."""
    if name not in SOURCES:
        raise ValueError(f"unknown data set {name!r}; known: {', '.join(SOURCES)}")
    if path is not None:
        folder = Path(path)
        if not folder.is_dir():
            raise DataNotFoundError(f"{name}: the folder {os.fspath(folder)!r} does not exist")
        found = idx_files(folder)
        missing = [IDX_STEMS[key] for key, p in found.items() if p is None]
        if missing:
            raise DataNotFoundError(f"{name}: no {', '.join(s + '[.gz]' for s in missing)} in {os.fspath(folder)}")
        return found
    for folder in search_folders(name):
        found = idx_files(folder)
        if all(found.values()):
            return found
    if download:
        return fetch(name)
    raise DataNotFoundError(_not_found_message(name, "downloading was not requested"))


def fetch(name: str, folder=None) -> Dict[str, Path]:
    """Download the four files of ``name`` into ``folder`` (default: the user cache folder) with pooch,
    each checked against its SHA-256; returns {array key: path}."""
    source = SOURCES[name]
    folder = Path(folder) if folder is not None else user_cache_dir() / name
    try:
        import pooch
    except ImportError:
        raise DataNotFoundError(_not_found_message(name, "pooch, which downloads them, is not installed")) from None
    found = {}
    for key, stem in IDX_STEMS.items():
        fname = stem + ".gz"
        found[key] = _download_one(pooch, source, fname, folder)
    return found


def _download_one(pooch, source: Source, fname: str, folder: Path) -> Path:
    expected = source.sha256[fname]
    errors = []
    for base in source.base_urls:
        try:
            path = Path(pooch.retrieve(base + fname, known_hash=f"sha256:{expected}", fname=fname, path=folder))
        except Exception as exc:  # network errors, HTTP errors, pooch's own hash mismatch
            errors.append(f"{base + fname}: {exc}")
            continue
        actual = sha256_of(path)
        if actual != expected:  # checked here too: the file on disk is what fastdl will read
            path.unlink(missing_ok=True)
            raise ValueError(f"{source.name}: {fname} has SHA-256 {actual}, expected {expected}; the download "
                             f"was corrupt or changed upstream, and was deleted")
        return path
    raise DataNotFoundError(_not_found_message(source.name, "the download failed:\n  " + "\n  ".join(errors)))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _not_found_message(name: str, why: str) -> str:
    source = SOURCES[name]
    folders = "\n".join(f"    {os.fspath(f)}" for f in search_folders(name))
    ways = [f"  1. put the four IDX files ({', '.join(s + '.gz' for s in IDX_STEMS.values())}) in a folder and "
            f"pass it (path=..., or --data-dir on the command line), or set FASTDL_DATA to a folder holding "
            f"{name}/",
            f"  2. install pooch (pip install \"fastdl-kernels[data]\") and go online: they are downloaded into "
            f"{os.fspath(user_cache_dir() / name)} and checked against fixed SHA-256 hashes"]
    if source.system_hint:
        ways.append(f"  3. install the system package: {source.system_hint}")
    return (f"{name}: the data set's files were not found ({why}).\nSearched:\n{folders}\n"
            f"Ways to provide them:\n" + "\n".join(ways))


# -- the decoded arrays ------------------------------------------------------------------------------
def load_arrays(files: Dict[str, Path], name: str) -> Dict[str, np.ndarray]:
    """The four raw arrays (images uint8 (N, rows, cols), labels uint8 (N,)) of the IDX files, from the
    decoded cache when it matches the files, else decoded (and cached for next time)."""
    cache = _cache_path(files, name)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as stored:
                arrays = {key: stored[key] for key in IDX_STEMS}
            _check(arrays, name)
            return arrays
        except Exception:  # truncated, empty, damaged (BadZipFile, EOFError, ...) or stale: decode again
            pass
    arrays = {key: read_idx(path) for key, path in files.items()}
    _check(arrays, name)
    if cache is not None:
        _write_atomically(cache, arrays)
    return arrays


def _check(arrays: Dict[str, np.ndarray], name: str) -> None:
    for split in ("train", "test"):
        images, labels = arrays[f"X_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or labels.ndim != 1:
            raise ValueError(f"{name}: {split} images must be (N, rows, cols) and labels (N,), got "
                             f"{images.shape} and {labels.shape}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"{name}: {split} images and labels differ in count: "
                             f"{images.shape[0]} vs {labels.shape[0]}")
        if labels.size and int(labels.max()) > 9:
            raise ValueError(f"{name}: {split} labels must be 0..9, found {int(labels.max())}")


def _cache_path(files: Dict[str, Path], name: str) -> Optional[Path]:
    """``user_cache_dir()/<name>/decoded-<key>.npz``, the key made from the files' paths, sizes and mtimes."""
    digest = hashlib.sha256()
    try:
        for key in sorted(files):
            stat = files[key].stat()
            digest.update(f"{key}:{files[key].resolve()}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    except OSError:
        return None
    return user_cache_dir() / name / f"decoded-{digest.hexdigest()[:20]}.npz"


def _write_atomically(path: Path, arrays: Dict[str, np.ndarray]) -> None:
    """Write the .npz beside its final name, then rename it, and drop the data set's older decoded files
    (one per data set is kept); a folder that cannot be written to just skips caching."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_npz_atomically(path, arrays, prefix=".decoded-")
        for old in path.parent.glob("decoded-*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        return
