"""``DataParallelTrainer``: the book's ``Trainer.fit`` on N MPI ranks.

Every rank holds the whole training set (or the same file), draws the same shuffled order and the same
dropout keys as one process with the same ``seed``, and trains on its rows of each batch: with B rows
and N ranks, rank r takes rows ``[r B / N, (r + 1) B / N)`` (the last, shorter batch of an epoch is split
as evenly as it goes). Its dropout masks are those rows of the one-process mask. After backward each
rank scales its gradients by its share of the batch's rows (the book's losses average over the rows)
and ONE Allreduce sums them, with the batch loss in the same buffer; every rank then runs the same
optimizer step on the same numbers, so the weights stay equal on every rank, bit for bit.
"""

import os
from typing import Any, Dict, Optional, Tuple

import numpy as np

from fastdl.backend import get_backend
from fastdl.distributed.agreement import RankMismatchError, data_fingerprint, require_agreement
from fastdl.distributed.exchange import RankMember
from fastdl.distributed.mpi import abort_on_error
from fastdl.train import Trainer, _dropout_ops

WHO = "DataParallelTrainer"

#: how a loss combines a batch's rows, when the loss does not say (``batch_reduction``)
REDUCTIONS = ("mean", "sum")


def rows_of_rank(rows: int, rank: int, ranks: int) -> Tuple[int, int]:
    """[lo, hi) of ``rank``'s share of ``rows`` rows split as evenly as they go (earlier ranks get the extra)."""
    base, extra = divmod(rows, ranks)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


def loss_reduction(loss, given: Optional[str], who: str) -> str:
    """"mean" or "sum": ``given``, else the loss's ``batch_reduction``; a clear error when neither says."""
    reduction = given if given is not None else getattr(loss, "batch_reduction", None)
    if reduction not in REDUCTIONS:
        raise ValueError(f"{who}: cannot tell whether {type(loss).__name__} averages or sums over a batch's rows "
                         f"(got {reduction!r}); give loss_reduction='mean' or 'sum', or set the loss class's "
                         f"batch_reduction")
    return reduction


class DataParallelTrainer(RankMember, Trainer):
    """``Trainer`` on every rank of ``comm`` (default ``MPI.COMM_WORLD``); ``fit`` as ``Trainer.fit``.

    ``threads_per_rank``: fastdl's threads in each rank (default: ``OMP_NUM_THREADS`` when set, else the
    CPUs the rank may use divided among the ranks of this machine that share them). ``loss_reduction``:
    "mean" or "sum", for a loss that does not say itself (fastdl's losses do).

    Only rank 0 prints, evaluates and writes the checkpoint; ``checkpoint_path`` must be on a file system
    every rank sees (each rank reads it to resume). After ``fit``: ``allreduce_ms_per_step`` and
    ``allreduce_bytes`` describe the one message per step.
    """

    def __init__(self, net, optim, comm=None, *, threads_per_rank: Optional[int] = None,
                 loss_reduction: Optional[str] = None) -> None:
        if loss_reduction is not None and loss_reduction not in REDUCTIONS:
            raise ValueError(f"{WHO}: loss_reduction must be 'mean' or 'sum', got {loss_reduction!r}")
        self._join(comm, threads_per_rank, WHO)
        super().__init__(net, optim)
        self._loss_reduction = loss_reduction

    # -- checks before anything runs ------------------------------------------------------------------
    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
            epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: Optional[int] = 1,
            single_output: bool = False, restart: bool = True, early_stopping: bool = True,
            conv_testing: bool = False, progress: bool = False, checkpoint_every: int = 0,
            checkpoint_path=None):
        """``Trainer.fit`` on every rank (the same call on each); see the class and ``Trainer.fit``."""
        facts = self._facts(X_train, y_train, X_test, y_test, epochs=epochs, eval_every=eval_every,
                            batch_size=batch_size, seed=seed, restart=restart, early_stopping=early_stopping,
                            checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path)
        require_agreement(self.comm, WHO, facts)
        if "error" in facts:
            raise ValueError(facts["error"])
        self._reduction = facts["loss reduction"]
        with abort_on_error(self.comm, WHO, spare=(RankMismatchError,)):
            return super().fit(X_train, y_train, X_test, y_test, epochs=epochs, eval_every=eval_every,
                               batch_size=batch_size, seed=seed, single_output=single_output, restart=restart,
                               early_stopping=early_stopping, conv_testing=conv_testing, progress=progress,
                               checkpoint_every=checkpoint_every, checkpoint_path=checkpoint_path)

    def _facts(self, X_train, y_train, X_test, y_test, **fit_args) -> Dict[str, Any]:
        """What must be equal on every rank; a problem found here is an ``error`` fact (every rank still
        takes part in the comparison, so none is left waiting)."""
        facts: Dict[str, Any] = {"fit arguments": {k: repr(v) for k, v in fit_args.items()}}
        try:
            facts["training data"] = [data_fingerprint(X_train), data_fingerprint(y_train)]
            facts["test data"] = [data_fingerprint(X_test), data_fingerprint(y_test)]
            facts["loss reduction"] = loss_reduction(self.net.loss, self._loss_reduction, WHO)
            path = fit_args["checkpoint_path"]
            facts["checkpoint file"] = None if path is None else _file_facts(path)
            facts["backend"] = str(get_backend())
            batch_size = fit_args["batch_size"]
            if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
                raise ValueError(f"{WHO}: batch_size must be a positive int, got {batch_size!r}")
            if batch_size % self.ranks:
                raise ValueError(f"{WHO}: the global batch_size {batch_size} is not divisible by the {self.ranks} "
                                 f"ranks; use a multiple of {self.ranks} (each rank trains on batch_size / ranks rows)")
            if np.shape(X_train)[0] < self.ranks:
                raise ValueError(f"{WHO}: {np.shape(X_train)[0]} training rows cannot feed {self.ranks} ranks")
            if facts["backend"] == "cuda":
                raise ValueError(f"{WHO}: the cuda backend is not supported yet; use the cpu or numpy backend")
        except (ValueError, TypeError) as exc:
            facts["error"] = str(exc)
        return facts

    # -- the hooks of Trainer.fit ----------------------------------------------------------------------
    def _before_training(self, X_train: np.ndarray, y_train: np.ndarray, batch_size: int) -> None:
        """Set the layers up (one inference row), check every rank built the same parameters, and give
        every rank rank 0's initial weights."""
        if any(getattr(layer, "first", False) for layer in self.net.layers):
            self.net.forward(X_train[:1], inference=True)
        params = list(self.net.params())
        require_agreement(self.comm, WHO, {"model parameters": [(list(np.shape(p)), str(np.asarray(p).dtype))
                                                                for p in params]})
        self.exchange.broadcast_from_root(params)
        self._dropouts = _dropout_ops(self.net)

    def _batch_part(self, rows: int) -> Tuple[int, int]:
        return rows_of_rank(rows, self.rank, self.ranks)

    def _train_step(self, X_batch: np.ndarray, y_batch: np.ndarray, batches) -> float:
        local = X_batch.shape[0]
        for op in self._dropouts:
            op.first_row = batches.first_row
        if local:
            loss = float(self.net.train_batch(X_batch, y_batch))
        else:  # the last, short batch has no row for this rank: keep the dropout keys in step
            for op in self._dropouts:
                op.skip_batch()
            loss = 0.0
        share = local / batches.rows if self._reduction == "mean" else 1.0
        total, _ = self.exchange.sum_across_ranks(list(self.net.param_grads()), share, loss=loss, has_rows=local > 0)
        self.optim.step()
        return total

    def _evaluate(self, X_test: np.ndarray, y_test: np.ndarray, rows: int) -> Tuple[float, Optional[float]]:
        result = super()._evaluate(X_test, y_test, rows) if self.rank == 0 else None
        loss, accuracy = self.comm.bcast(None if result is None else (float(result[0]), result[1]), root=0)
        return loss, accuracy

    def _checkpoint_written(self) -> None:
        self.comm.Barrier()  # rank 0 wrote it: nobody reads the file (a later fit's resume) before it is whole


def _file_facts(path):
    try:
        st = os.stat(path)
    except OSError:
        return "absent"
    return {"bytes": st.st_size, "modified": st.st_mtime_ns}
