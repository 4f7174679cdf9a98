"""What the ranks exchange while training: rank 0's parameters once (a broadcast), then, every step, the
gradients of every rank's rows summed in ONE Allreduce over a contiguous buffer, with the carried
recurrent states and the batch loss riding in the same message. It times the Allreduce."""

import time
from typing import List, Optional, Sequence, Tuple

import numpy as np

from fastdl.distributed.flat import FlatArrays


class GradientExchange:
    def __init__(self, comm, who: str) -> None:
        self.comm, self.who = comm, who
        self._flat: Optional[FlatArrays] = None
        self.seconds = 0.0  # spent in the Allreduce (waiting for the slowest rank included)
        self.steps = 0

    def broadcast_from_root(self, arrays: Sequence[np.ndarray]) -> None:
        """Every rank's ``arrays`` (in place) become rank 0's: one broadcast of one buffer."""
        flat = FlatArrays(arrays, self.who)
        if self.comm.Get_rank() == 0:
            flat.fill(arrays, [1.0] * len(arrays))
        flat.broadcast(self.comm)
        flat.drain(arrays)

    def sum_across_ranks(self, grads: Sequence[np.ndarray], grad_scale: float, states: Sequence[np.ndarray] = (),
                         state_scale: float = 1.0, loss: float = 0.0, has_rows: bool = True) -> Tuple[float, List]:
        """In place: ``grads[i] = sum over ranks of grad_scale * grads[i]``; a rank without rows in this batch
        (``has_rows`` False) adds zeros (its arrays are only written). ``states`` are summed the same way with
        ``state_scale`` and returned as new arrays, with the summed ``grad_scale * loss``."""
        layout = list(grads) + list(states)
        if self._flat is None:
            self._flat = FlatArrays(layout, self.who, extra=1)
        flat = self._flat
        if has_rows:
            flat.fill(layout, [grad_scale] * len(grads) + [state_scale] * len(states), [loss * grad_scale])
        else:
            flat.buffer[:] = 0
        start = time.perf_counter()
        flat.allreduce_sum(self.comm)
        self.seconds += time.perf_counter() - start
        self.steps += 1
        summed_states = [flat.view(len(grads) + j).copy() for j in range(len(states))]
        loss_total = flat.drain(list(grads))[0]
        return loss_total, summed_states

    @property
    def nbytes(self) -> int:
        """Bytes of the one message per step."""
        return 0 if self._flat is None else self._flat.nbytes

    def ms_per_step(self) -> float:
        return 1e3 * self.seconds / max(self.steps, 1)


class RankMember:
    """What both data-parallel trainers share: their place in the communicator, their threads, and the
    figures of the one message per step."""

    def _join(self, comm, threads_per_rank, who: str) -> None:
        from fastdl.distributed.mpi import choose_threads, resolve_comm

        self.comm = resolve_comm(comm, who)
        self.rank, self.ranks = self.comm.Get_rank(), self.comm.Get_size()
        self._speaks = self.rank == 0  # only rank 0 prints, evaluates and saves
        self.threads_per_rank = choose_threads(self.comm, threads_per_rank, who)
        self.exchange = GradientExchange(self.comm, who)

    @property
    def allreduce_ms_per_step(self) -> float:
        """Mean milliseconds per step in the gradients' Allreduce (waiting for the slowest rank included)."""
        return self.exchange.ms_per_step()

    @property
    def allreduce_bytes(self) -> int:
        """Bytes of the one Allreduce message per step: the gradients, the carried states and the batch loss."""
        return self.exchange.nbytes
