"""The MPI side of fastdl.distributed: mpi4py imported on first use, the communicator checked, the threads
per rank chosen, and a failing rank turned into the end of the whole job."""

import os
import sys
import traceback
from contextlib import contextmanager

import fastdl

INSTALL_HINT = 'pip install "fastdl-kernels[mpi]" (mpi4py and the MPICH library as wheels)'


def mpi():
    """The ``mpi4py.MPI`` module; ImportError with the install line when mpi4py is missing."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"fastdl.distributed needs mpi4py and an MPI library: {INSTALL_HINT}") from exc
    return MPI


def resolve_comm(comm, who: str):
    """``comm``, or ``MPI.COMM_WORLD`` when it is None; TypeError unless it is an mpi4py intracommunicator."""
    MPI = mpi()
    if comm is None:
        return MPI.COMM_WORLD
    if not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"{who}: comm must be an mpi4py intracommunicator (MPI.COMM_WORLD or one made from it "
                        f"with Split or Dup), got {type(comm).__name__} {comm!r}")
    if comm == MPI.COMM_NULL:
        raise ValueError(f"{who}: comm is MPI.COMM_NULL: this process is not a member of the communicator")
    return comm


def ranks_sharing_my_cpus(comm) -> int:
    """How many ranks of ``comm`` on this machine may run on exactly this process's CPUs (1 when every rank
    is bound to CPUs of its own, all of them when none is bound)."""
    MPI = mpi()
    mine = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [os.cpu_count() or 1]
    node = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return sum(1 for cpus in node.allgather(mine) if cpus == mine)
    finally:
        node.Free()


def choose_threads(comm, threads_per_rank, who: str) -> int:
    """Set and return fastdl's thread count for this rank: ``threads_per_rank`` when given; else
    ``OMP_NUM_THREADS`` when set; else this process's CPUs divided among the ranks that share them."""
    if threads_per_rank is not None:
        fastdl.set_num_threads(threads_per_rank)
    elif not os.environ.get("OMP_NUM_THREADS"):
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        fastdl.set_num_threads(max(1, cpus // ranks_sharing_my_cpus(comm)))
    return fastdl.get_num_threads()


@contextmanager
def abort_on_error(comm, who: str, spare=()):
    """Run the block; if it raises on one rank of several, print the error with the rank to stderr and
    abort the whole MPI job (the other ranks would wait for this one forever). Exceptions of the
    ``spare`` types, raised alike on every rank, propagate normally."""
    try:
        yield
    except spare:
        raise
    except BaseException as exc:
        if comm.Get_size() == 1:
            raise
        rank = comm.Get_rank()
        sys.stdout.flush()
        sys.stderr.write(f"fastdl: {who} failed on rank {rank} of {comm.Get_size()}; aborting every rank:\n")
        sys.stderr.write("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        sys.stderr.flush()
        comm.Abort(1)
