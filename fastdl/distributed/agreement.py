"""Checks that every rank is about to run the same training: gathered from all ranks, compared, and raised
alike on every rank (so no rank is left waiting in a collective call)."""

import zlib
from typing import Any, Dict

import numpy as np


class RankMismatchError(ValueError):
    """The ranks disagree on something that must be the same on all of them (raised on every rank)."""


def data_fingerprint(X: np.ndarray) -> Dict[str, Any]:
    """Shape, dtype and a CRC-32 of up to 64 evenly spaced rows: ranks reading different data differ."""
    X = np.asarray(X)
    rows = np.unique(np.linspace(0, max(X.shape[0] - 1, 0), num=min(64, X.shape[0]), dtype=np.int64))
    sample = np.ascontiguousarray(X[rows]) if X.shape[0] else X
    return {"shape": list(X.shape), "dtype": str(X.dtype), "crc32": zlib.crc32(sample.tobytes())}


def require_agreement(comm, who: str, facts: Dict[str, Any]) -> None:
    """Raise RankMismatchError on every rank unless every rank passed the same ``facts``."""
    gathered = comm.allgather(facts)
    for key in facts:
        values = [rank_facts.get(key) for rank_facts in gathered]
        if any(value != values[0] for value in values[1:]):
            listing = "; ".join(f"rank {rank}: {value}" for rank, value in enumerate(values))
            raise RankMismatchError(f"{who}: the ranks disagree on {key} ({listing}); every rank must build the "
                                    f"same model and call the same training with the same data")
