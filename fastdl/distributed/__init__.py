"""Data-parallel training on MPI (mpi4py): the book's training loops on N processes.

``DataParallelTrainer(net, optim, comm=None)`` has ``Trainer.fit``'s signature and
``DataParallelRNNTrainer`` is chapter 6's ``RNNTrainer``. Started on N processes (``mpiexec -n N python
train.py``), each process (rank) trains on its share of every batch: the batches, their order and the
dropout masks are those of one process training with the same batch size and seed, each rank
computes the gradients of its rows, and ONE ``Allreduce`` per step over a contiguous buffer combines
them, so every rank applies the same update and N ranks train like one process, up to float rounding.
Rank 0's initial weights are broadcast to all; only rank 0 prints, evaluates and writes checkpoints.

Needs ``mpi4py`` and an MPI library: ``pip install "fastdl-kernels[mpi]"`` installs both (MPICH as a
wheel). See the docs page "Training on many processes" for running across machines.
"""

from fastdl.distributed.agreement import RankMismatchError
from fastdl.distributed.rnn_trainer import DataParallelRNNTrainer
from fastdl.distributed.trainer import DataParallelTrainer

__all__ = ["DataParallelTrainer", "DataParallelRNNTrainer", "RankMismatchError"]
