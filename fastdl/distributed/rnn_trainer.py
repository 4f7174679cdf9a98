"""``DataParallelRNNTrainer``: chapter 6's ``RNNTrainer`` on N MPI ranks.

Each step's B windows are split among the ranks (rank r takes windows ``[r B / N, (r + 1) B / N)``).
The ch6 loss sums over the windows (``batch_reduction`` "sum"), so the ranks' gradients are summed as
they are; the states the
layers carry to the next batch (``start_H``, ``start_C``: batch means) are averaged with weights equal
to each rank's share of the windows. Both ride in ONE Allreduce per step, and the optimizer (with the
book's gradient clipping) then runs on the summed gradients on every rank: N ranks train like one
process with batch B, up to float rounding. Only rank 0 prints and samples.
"""

from typing import Optional

import numpy as np

from fastdl.distributed.agreement import RankMismatchError, data_fingerprint, require_agreement
from fastdl.distributed.exchange import RankMember
from fastdl.distributed.mpi import abort_on_error
from fastdl.distributed.trainer import loss_reduction, rows_of_rank
from fastdl.rnn.trainer import RNNTrainer

WHO = "DataParallelRNNTrainer"


class DataParallelRNNTrainer(RankMember, RNNTrainer):
    """``RNNTrainer(text_file, model, optim, batch_size, seed)`` on every rank of ``comm`` (default
    ``MPI.COMM_WORLD``); ``train`` as ``RNNTrainer.train``. ``threads_per_rank`` as in
    ``DataParallelTrainer``. The batch size must be divisible by the number of ranks."""

    def __init__(self, text_file=None, model=None, optim=None, batch_size: int = 32, seed: Optional[int] = None,
                 comm=None, *, threads_per_rank: Optional[int] = None) -> None:
        self._join(comm, threads_per_rank, WHO)
        super().__init__(text_file, model, optim, batch_size, seed)
        self._ready = False

    def train(self, num_iterations: int, sample_every: Optional[int] = 100, progress: bool = False):
        """``RNNTrainer.train`` on every rank (the same call on each)."""
        require_agreement(self.comm, WHO, {"iterations": repr(num_iterations), "batch_size": self.batch_size,
                                           "text": data_fingerprint(self._indices),
                                           "position": [self.start_pos, self.num_iter]})
        if self.batch_size % self.ranks:
            raise ValueError(f"{WHO}: the global batch_size {self.batch_size} is not divisible by the {self.ranks} "
                             f"ranks; use a multiple of {self.ranks} (each rank trains on batch_size / ranks windows)")
        self._reduction = loss_reduction(self.model.loss, None, WHO)
        with abort_on_error(self.comm, WHO, spare=(RankMismatchError,)):
            if not self._ready:
                self._set_up()
            return super().train(num_iterations, sample_every, progress)

    def _set_up(self) -> None:
        """Create the parameters (one window through the model, its carried states put back), check every
        rank built the same ones, and give every rank rank 0's."""
        layers = self.model.layers
        if any(getattr(layer, "first", False) for layer in layers):
            states = [(layer, name, getattr(layer, name)) for layer in layers for name in getattr(layer, "STATES", ())]
            inputs, _ = self._generate_inputs_targets(0)
            self.model.forward(self._generate_one_hot_array(inputs[:1]))
            for layer, name, value in states:
                setattr(layer, name, value)
        params = [entry["value"] for layer in layers for entry in getattr(layer, "params", {}).values()]
        require_agreement(self.comm, WHO, {"model parameters": [(list(p.shape), str(p.dtype)) for p in params]})
        self.exchange.broadcast_from_root(params)
        self._ready = True

    def _batch_part(self, rows: int):
        return rows_of_rank(rows, self.rank, self.ranks)

    def _train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        loss = float(self.model.single_step(self._generate_one_hot_array(inputs),
                                            self._generate_one_hot_array(targets)))
        layers = self.model.layers
        grads = [entry["deriv"] for layer in layers for entry in getattr(layer, "params", {}).values()]
        carried = [(layer, name) for layer in layers for name in getattr(layer, "STATES", ())]
        share = inputs.shape[0] / self.batch_size
        total, states = self.exchange.sum_across_ranks(grads, share if self._reduction == "mean" else 1.0,
                                                       [getattr(layer, name) for layer, name in carried], share,
                                                       loss=loss)
        for (layer, name), value in zip(carried, states):
            setattr(layer, name, value)
        self.optim.step()
        return total
