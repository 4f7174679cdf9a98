"""Run under ``mpiexec -n N`` by test_distributed.py (or alone as one process): one training scenario,
results written by rank 0 to ``OUT`` as an .npz.

    python mpi_worker.py SCENARIO OUT [extra...]
"""

import os
import signal
import sys

import numpy as np

import fastdl
from fastdl.activations import Linear, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum
from fastdl.train import Trainer

FIT = dict(epochs=3, eval_every=1, batch_size=12, seed=4, early_stopping=True)


def data(n=101):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((n, 1, 6, 6)).astype(np.float64)
    y = np.eye(3)[rng.integers(0, 3, size=n)]
    return X, y


def net():
    return NeuralNetwork([Conv2D(3, 3, dropout=0.8, flatten=True, activation=Tanh(), dtype=np.float64),
                          Dense(3, activation=Linear(), dtype=np.float64)], loss=SoftmaxCrossEntropy(), seed=9)


def save(out, trainer, **extra):
    arrays = {f"p{i}": p for i, p in enumerate(trainer.net.params())}
    arrays["losses"] = np.array([h["loss"] for h in trainer.history])
    np.savez(out, **arrays, **extra)


def cnn(out, distributed, *extra):
    fastdl.set_backend("cpu")
    X, y = data()
    if distributed:
        from fastdl.distributed import DataParallelTrainer

        trainer = DataParallelTrainer(net(), SGDMomentum(0.05, momentum=0.9))
    else:
        trainer = Trainer(net(), SGDMomentum(0.05, momentum=0.9))
    kwargs = dict(FIT)
    if extra and extra[0] == "checkpoint":
        kwargs.update(checkpoint_every=5, checkpoint_path=extra[1])
        if len(extra) > 2:  # stop after this many steps: a killed job
            stop = int(extra[2])
            step = trainer._train_step

            def stopping(*args, _n=[0]):
                if _n[0] == stop:
                    raise SystemExit(3)
                _n[0] += 1
                return step(*args)
            trainer._train_step = stopping
    trainer.fit(X, y, X[:40], y[:40], **kwargs)
    if distributed:
        comm = trainer.comm
        gathered = comm.gather(np.concatenate([p.ravel() for p in trainer.net.params()]), root=0)
        if comm.Get_rank() == 0:
            save(out, trainer, ranks=np.stack(gathered), allreduce_bytes=trainer.allreduce_bytes,
                 allreduce_ms=trainer.allreduce_ms_per_step)
    else:
        save(out, trainer)


def rnn(out, distributed):
    from fastdl.rnn import LSTMLayer, RNNModel, SoftmaxCrossEntropy as RNNLoss
    from fastdl.rnn.optimizers import AdaGrad
    from fastdl.rnn.trainer import RNNTrainer, load_text, vocabulary

    fastdl.set_backend("cpu")
    vocab = len(vocabulary(load_text()))
    model = RNNModel([LSTMLayer(16, 16, dtype=np.float64), LSTMLayer(16, vocab, dtype=np.float64)],
                     sequence_length=7, vocab_size=vocab, loss=RNNLoss(), seed=3)
    if distributed:
        from fastdl.distributed import DataParallelRNNTrainer

        trainer = DataParallelRNNTrainer(None, model, AdaGrad(0.01), batch_size=6, seed=1)
    else:
        trainer = RNNTrainer(None, model, AdaGrad(0.01), batch_size=6, seed=1)
    losses = trainer.train(12, sample_every=None)
    rank = trainer.comm.Get_rank() if distributed else 0
    if rank == 0:
        arrays = {f"p{i}": e["value"] for i, e in enumerate(
            entry for layer in model.layers for entry in layer.params.values())}
        arrays.update({f"s{i}": layer.start_H for i, layer in enumerate(model.layers)})
        np.savez(out, losses=np.array(losses), **arrays)


def bad(out, case):
    """Arguments that must fail on every rank with a clear error."""
    from mpi4py import MPI

    from fastdl.distributed import DataParallelTrainer

    rank = MPI.COMM_WORLD.Get_rank()
    X, y = data()
    kwargs = dict(FIT)
    model = net()
    if case == "batch":
        kwargs["batch_size"] = 13
    elif case == "shapes":
        model = NeuralNetwork([Conv2D(3 + rank, 3, flatten=True, activation=Tanh(), dtype=np.float64),
                               Dense(3, activation=Linear(), dtype=np.float64)], loss=SoftmaxCrossEntropy(), seed=9)
    elif case == "seed":
        kwargs["seed"] = 4 + rank
    elif case == "data":
        X = X + rank
    comm = "not a communicator" if case == "comm" else None
    try:
        trainer = DataParallelTrainer(model, SGDMomentum(0.05, momentum=0.9), comm=comm)
        trainer.fit(X, y, X[:40], y[:40], **kwargs)
    except (ValueError, TypeError) as exc:
        print(f"rank {rank}: {type(exc).__name__}: {exc}", flush=True)
        sys.exit(7)


def dies(out, how):
    """Rank 1 is killed (or raises) in the middle of training; rank 0 must not wait for ever."""
    from mpi4py import MPI

    from fastdl.distributed import DataParallelTrainer

    X, y = data()
    trainer = DataParallelTrainer(net(), SGDMomentum(0.05, momentum=0.9))
    step = trainer._train_step

    def failing(*args, _n=[0]):
        _n[0] += 1
        if _n[0] == 4 and MPI.COMM_WORLD.Get_rank() == 1:
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("a failure in rank 1's step")
        return step(*args)
    trainer._train_step = failing
    trainer.fit(X, y, X[:40], y[:40], **FIT)


if __name__ == "__main__":
    scenario, out = sys.argv[1], sys.argv[2]
    if scenario in ("cnn", "rnn"):
        distributed = sys.argv[3] == "mpi"
        globals()[scenario](out, distributed, *sys.argv[4:])
    else:
        globals()[scenario](out, *sys.argv[3:])
