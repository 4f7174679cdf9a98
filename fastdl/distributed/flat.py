"""One contiguous buffer for a list of arrays: the gradients summed across ranks in ONE Allreduce per step
(with extra scalar slots, such as the batch loss, riding along), and the parameters broadcast from rank 0."""

from typing import List, Optional, Sequence

import numpy as np


class FlatArrays:
    """A buffer laid out for arrays of these shapes (one dtype), plus ``extra`` scalar slots at the end."""

    def __init__(self, arrays: Sequence[np.ndarray], who: str, extra: int = 0) -> None:
        dtypes = {np.asarray(a).dtype for a in arrays}
        if len(dtypes) > 1:
            raise TypeError(f"{who}: the parameters have several dtypes ({sorted(str(d) for d in dtypes)}); "
                            f"data-parallel training sums them in one buffer and needs a single dtype")
        self.dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
        self.shapes = [np.shape(a) for a in arrays]
        self.offsets = np.concatenate([[0], np.cumsum([int(np.prod(s, dtype=np.int64)) for s in self.shapes])])
        self.extra = extra
        self.buffer = np.zeros(int(self.offsets[-1]) + extra, self.dtype)

    def view(self, i: int) -> np.ndarray:
        """The buffer's part for array ``i`` (a view: copy it to keep it past the next step)."""
        return self.buffer[self.offsets[i]:self.offsets[i + 1]].reshape(self.shapes[i])

    def fill(self, arrays: Optional[Sequence[np.ndarray]], scales: Sequence[float],
             extras: Sequence[float] = ()) -> None:
        """buffer = scales[i] * arrays[i] for each array (zeros for ``arrays`` None), then the extra slots."""
        if arrays is None:
            self.buffer[:self.offsets[-1]] = 0
        else:
            for i, (a, scale) in enumerate(zip(arrays, scales)):
                if scale == 1.0:
                    np.copyto(self.view(i), a)
                else:
                    np.multiply(a, self.dtype.type(scale), out=self.view(i))
        for j, value in enumerate(extras):
            self.buffer[self.offsets[-1] + j] = value

    def drain(self, arrays: Sequence[np.ndarray]) -> List[float]:
        """Copy the buffer back into ``arrays`` (in place, in their order; fewer arrays than the layout's
        leave the rest to ``view``); return the extra slots."""
        for i, a in enumerate(arrays):
            np.copyto(a, self.view(i))
        return [float(v) for v in self.buffer[self.offsets[-1]:]]

    def allreduce_sum(self, comm) -> None:
        """Sum the buffer over every rank of ``comm``, in place: one message of the buffer's size."""
        from fastdl.distributed.mpi import mpi

        comm.Allreduce(mpi().IN_PLACE, self.buffer, op=mpi().SUM)

    def broadcast(self, comm, root: int = 0) -> None:
        comm.Bcast(self.buffer, root=root)

    @property
    def nbytes(self) -> int:
        return self.buffer.nbytes
