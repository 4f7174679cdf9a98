"""``Trainer`` (lincoln ``train.py``): the book's training loop, with the L2019 ``fit`` arguments.

Fixes over the book: early stopping restores the BEST evaluated model (the book restored the
un-evaluated state one epoch before the increase and printed the wrong epoch); the restore happens in
place, so the caller's network object holds the best parameters too (``trainer.net`` is still that
object). Shuffling and dropout masks use generators seeded from fit's ``seed``; the global NumPy RNG is
never touched. ``restart=True`` also resets the optimizer's running state (velocities, AdaGrad sums),
which the book carried over into the re-initialised network. ``progress=True`` shows a tqdm bar when
tqdm is installed. ``fit`` returns the history of its evaluations and logs its lines to ``logging``.

Faster than the book, same batches: each epoch's batches hold exactly the rows the book's
``permute_data`` + ``generate_batches`` would give (the same generator draws), but they are gathered into
one reused buffer instead of copying the whole training set every epoch, and evaluation runs the test set
through the network ``EVAL_ROWS`` rows at a time.

On the cuda backend the network's layers keep their parameters on the device (``fastdl.device``):
``train_batch`` and fastdl's optimizers leave them there, evaluation predictions come back as NumPy,
and the early-stopping copy (``deepcopy``) and its restore (state dicts) see the current values.
"""

import logging
import os
import time
from copy import deepcopy
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from fastdl.checkpoint import load_checkpoint, pack_state, save_checkpoint, unpack_state
from fastdl import kernels
from fastdl.dropout import Dropout
from fastdl.utils.progress import progress_bar
from fastdl.network import NeuralNetwork
from fastdl.optimizers import Optimizer
from fastdl.utils.np_utils import ShapeMismatchError, permute_data

LOGGER = logging.getLogger("fastdl")

#: the progress bar is redrawn at most once per this many batches (its cost stays off the step)
BAR_EVERY = 25

#: evaluation runs the test set through the network this many rows at a time (or batch_size, if larger)
EVAL_ROWS = 1024


class Trainer:
    """Trains ``net`` with ``optim`` (and sets ``optim.net = net``)."""

    def __init__(self, net: NeuralNetwork, optim: Optimizer) -> None:
        self.net = net
        self.optim = optim
        self.best_loss = 1e9
        self.best_epoch: Optional[int] = None
        self._best_model = None
        self.history: List[Dict[str, Any]] = []  # fit's evaluations (see fit)
        self.epochs_trained = 0
        self.train_seconds = 0.0
        setattr(self.optim, "net", self.net)

    # ------------------------------------------------------------------------------------------
    def fit(self, X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
            epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: Optional[int] = 1,
            single_output: bool = False, restart: bool = True, early_stopping: bool = True,
            conv_testing: bool = False, progress: bool = False, checkpoint_every: int = 0,
            checkpoint_path=None) -> List[Dict[str, Any]]:
        """Train for ``epochs`` epochs of shuffled mini-batches, evaluating on the whole test set every
        ``eval_every`` epochs; with ``early_stopping`` stop at the first evaluation whose loss does not
        improve and restore the best model. ``single_output`` is accepted and unused (as in the book).

        Returns the history (also ``self.history``): one dict per evaluation with ``epoch``, ``loss``
        (the test loss), ``accuracy`` (arg-max accuracy for one-hot targets, else None), ``seconds``
        since fit began and ``train_seconds`` (the same without the evaluations). It prints the book's
        lines and logs them (INFO) to ``logging.getLogger("fastdl")``. Afterwards ``epochs_trained`` and
        ``train_seconds`` (the wall time of the epochs, evaluations not counted) describe the run.
        ``progress=True`` shows a per-batch tqdm bar (when tqdm is installed) with the running training loss.

        ``checkpoint_every=K`` and ``checkpoint_path=P``: after every K batches, and when fit ends, the whole
        training state (parameters, optimizer state, the position in the data, the generators, the
        early-stopping record, the history) is saved to P (``fastdl.checkpoint``, an ``.npz`` written
        atomically). When fit starts and P holds the checkpoint of an unfinished run with the same data
        size, epochs, batch size, evaluation interval and seed, it continues from there, to the very weights
        an uninterrupted run reaches; a finished run's checkpoint is overwritten by a fresh run.
        """
        checkpoints = _Checkpoints(self, checkpoint_every, checkpoint_path)
        setattr(self.optim, "max_epochs", epochs)
        self.optim._setup_decay()
        seeds = np.random.SeedSequence(seed)
        shuffle_seq, dropout_seq = seeds.spawn(2)
        shuffle_rng = np.random.default_rng(shuffle_seq)

        if restart:
            for layer in self.net.layers:
                layer.first = True
            self.best_loss = 1e9
            self.best_epoch, self._best_model = None, None
            if hasattr(self.optim, "first"):
                self.optim.first = True
        self._seed_dropout(dropout_seq)

        batches = _ShuffledBatches(self, X_train, y_train, batch_size)
        self._before_training(X_train, y_train, batch_size)
        history: List[Dict[str, Any]] = []
        self.history = history
        run = _RunState(fit_args={"rows": int(X_train.shape[0]), "epochs": epochs, "eval_every": eval_every,
                                  "batch_size": batch_size, "seed": None if seed is None else int(seed)})
        resumed = checkpoints.resume(run, batches, shuffle_rng)
        bar = progress_bar((epochs - run.epoch) * batches.count - run.batch, progress and self._speaks,
                           "training", "batch")
        say = _Reporter(bar, quiet=not self._speaks)
        if resumed:
            say(f"Resuming from {checkpoint_path}: epoch {run.epoch + 1}, batch {run.batch + 1}")
        start = time.perf_counter() - run.seconds
        eval_seconds = run.eval_seconds
        self.epochs_trained, self.train_seconds = run.epoch, 0.0
        batch_loss = float("nan")
        try:
            for e in range(run.epoch, epochs):
                resume_at = run.batch if e == run.epoch and run.batch else None
                for ii, (X_batch, y_batch) in enumerate(batches.epoch(shuffle_rng, resume_at), start=resume_at or 0):
                    batch_loss = self._train_step(X_batch, y_batch, batches)
                    if bar is not None:
                        say.batch_done(batch_loss, self.optim.lr)
                    if conv_testing:
                        self._conv_testing_report(ii, X_batch, y_batch, X_test, y_test, say)
                    if checkpoints.due(e * batches.count + ii + 1):
                        run.update(e, ii + 1, time.perf_counter() - start, eval_seconds)
                        checkpoints.save(run, batches, shuffle_rng)
                self.epochs_trained = e + 1

                if (e + 1) % eval_every == 0:
                    eval_start = time.perf_counter()
                    loss, accuracy = self._evaluate(X_test, y_test, max(batch_size, EVAL_ROWS))
                    history.append({"epoch": e + 1, "loss": float(loss), "accuracy": accuracy,
                                    "seconds": eval_start - start, "train_seconds": eval_start - start - eval_seconds})
                    eval_seconds += time.perf_counter() - eval_start
                    if early_stopping:
                        if loss < self.best_loss:
                            say(f"Validation loss after {e + 1} epochs is {loss:.3f}")
                            self.best_loss = loss
                            self.best_epoch = e + 1
                            self._best_model = deepcopy(self.net)
                        else:
                            say()
                            say(f"Loss increased after epoch {e + 1}, final loss was {self.best_loss:.3f}, "
                                f"\nusing the model from epoch {self.best_epoch}")
                            self._restore_best()
                            break
                    else:
                        say(f"Validation loss after {e + 1} epochs is {loss:.3f}")

                if self.optim.final_lr:
                    self.optim._decay_lr()
            run.finished = True
            run.update(self.epochs_trained, 0, time.perf_counter() - start, eval_seconds)
            checkpoints.save(run, batches, shuffle_rng)
        finally:
            say.close()
            self.train_seconds = time.perf_counter() - start - eval_seconds
        return history

    # -- the hooks a data-parallel trainer replaces ------------------------------------------------
    #: whether this process prints, logs and shows the progress bar
    _speaks = True

    def _before_training(self, X_train: np.ndarray, y_train: np.ndarray, batch_size: int) -> None:
        """Runs once per fit, after the seeds are set and before the first batch."""

    def _batch_part(self, rows: int) -> Tuple[int, int]:
        """The rows ``[lo, hi)`` of a batch of ``rows`` rows that this process trains on: all of them."""
        return 0, rows

    def _train_step(self, X_batch: np.ndarray, y_batch: np.ndarray, batches: "_ShuffledBatches") -> float:
        """One batch: forward, backward, optimizer step; returns the batch loss."""
        loss = self.net.train_batch(X_batch, y_batch)
        self.optim.step()
        return loss

    def _evaluate(self, X_test: np.ndarray, y_test: np.ndarray, rows: int) -> Tuple[float, Optional[float]]:
        """(test loss, accuracy or None) of the current network."""
        preds = self._predict(X_test, rows)
        return self.net.loss.forward(preds, y_test), _accuracy(preds, y_test)

    def _checkpoint_written(self) -> None:
        """Runs on every process after a checkpoint was saved (by the process that speaks)."""

    # ------------------------------------------------------------------------------------------
    def generate_batches(self, X: np.ndarray, y: np.ndarray,
                         size: int = 32) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """Consecutive ``(X[i:i+size], y[i:i+size])`` slices (views); the last batch may be smaller."""
        if X.shape[0] != y.shape[0]:
            raise ShapeMismatchError(f"features and target must have the same number of rows, instead features "
                                     f"has {X.shape[0]} and target has {y.shape[0]}")
        N = X.shape[0]
        for ii in range(0, N, size):
            yield X[ii:ii + size], y[ii:ii + size]

    def _predict(self, X: np.ndarray, rows: int) -> np.ndarray:
        return predict(self.net, X, rows)

    def _seed_dropout(self, dropout_seq: np.random.SeedSequence) -> None:
        """Give every layer a dropout seed from fit's seed (and re-seed Dropout ops that already exist)."""
        layers = list(self.net.layers)
        for layer, child in zip(layers, dropout_seq.spawn(len(layers))):
            layer_seed = int(child.generate_state(1)[0])
            setattr(layer, "dropout_seed", layer_seed)
            for op in getattr(layer, "operations", None) or []:
                if isinstance(op, Dropout):
                    op.reseed(layer_seed)

    def _restore_best(self) -> None:
        """Put the best evaluated model back, in place when possible; keep ``optim.net`` pointing at it."""
        best = self._best_model
        if best is None:
            return  # no evaluation of this run improved on an earlier fit's best: keep the current state
        if hasattr(self.net, "load_state_dict") and hasattr(best, "state_dict"):
            # copy the best values INTO the live arrays: the caller's layer objects, the optimizer's
            # view of the parameters and everything else keep their identity
            self.net.load_state_dict(best.state_dict())
        else:  # a lincoln-style network without state dicts: swap the object, as the book did
            self.net = deepcopy(best)
        setattr(self.optim, "net", self.net)

    def _conv_testing_report(self, ii, X_batch, y_batch, X_test, y_test, log: "_Reporter") -> None:
        """The book's ``conv_testing`` prints: batch loss every 10 batches, test accuracy every 100."""
        if ii % 10 == 0:
            batch_loss = self.net.loss.forward(self.net.forward(X_batch, inference=True), y_batch)
            log(f"batch {ii} loss {batch_loss}")
        if ii % 100 == 0 and ii > 0:
            preds = np.argmax(self.net.forward(X_test, inference=True), axis=1)
            acc = np.equal(preds, np.argmax(y_test, axis=1)).sum() * 100.0 / X_test.shape[0]
            log(f"Validation accuracy after {ii} batches is {acc:.2f}%")


class _ShuffledBatches:
    """The book's epochs of batches without its copies: the book shuffles the whole training set each epoch
    (``permute_data``, a permutation composed on the last epoch's order) and slices batches from the copy.
    Here only the order of the rows is composed, and each batch is gathered from the caller's arrays into
    one reused buffer, so every batch holds the same rows as the book's and nothing the size of the
    training set is written. A Trainer subclass with its own ``generate_batches`` gets the book's path.

    Each batch yields only the trainer's part of it (``trainer._batch_part``: all rows in one process);
    ``first_row`` and ``rows`` then tell where that part lies in the whole batch."""

    def __init__(self, trainer: Trainer, X: np.ndarray, y: np.ndarray, size: int) -> None:
        if X.shape[0] != y.shape[0]:
            raise ShapeMismatchError(f"features and target must have the same number of rows, instead features "
                                     f"has {X.shape[0]} and target has {y.shape[0]}")
        self.trainer, self.X, self.y, self.size = trainer, X, y, size
        self.order = np.arange(X.shape[0])
        self.book_path = type(trainer).generate_batches is not Trainer.generate_batches
        self.count = -(-X.shape[0] // size)  # batches per epoch
        self.X_buffer = np.empty((min(size, X.shape[0]),) + X.shape[1:], X.dtype)
        self.y_buffer = np.empty((min(size, y.shape[0]),) + y.shape[1:], y.dtype)
        self.first_row, self.rows = 0, 0

    def epoch(self, rng: np.random.Generator, resume_at: Optional[int] = None
              ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        """This epoch's batches, shuffled by ``rng`` exactly as ``permute_data(X, y, rng=rng)`` would; with
        ``resume_at`` the epoch's order is the current one (already shuffled) and batches start there."""
        if self.book_path:
            if resume_at is not None:
                raise ValueError("Trainer.fit: a checkpoint cannot resume a Trainer subclass with its own "
                                 "generate_batches")
            self.X, self.y = permute_data(self.X, self.y, rng=rng)
            for X_batch, y_batch in self.trainer.generate_batches(self.X, self.y, self.size):
                self.first_row, self.rows = 0, X_batch.shape[0]
                yield X_batch, y_batch
            return
        if resume_at is None:
            self.order = self.order[rng.permutation(self.X.shape[0])]
        for start in range((resume_at or 0) * self.size, self.X.shape[0], self.size):
            rows = self.order[start:start + self.size]
            lo, hi = self.trainer._batch_part(len(rows))
            self.first_row, self.rows = lo, len(rows)
            rows = rows[lo:hi]
            X_batch, y_batch = self.X_buffer[:len(rows)], self.y_buffer[:len(rows)]
            _gather(self.X, rows, X_batch)
            _gather(self.y, rows, y_batch)
            yield X_batch, y_batch


def _gather(table: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = table[rows[i]]``: the backend's row gather for plain NumPy arrays (on the cpu backend, threaded
    C++), NumPy's for anything else the book's loop accepts (memory-mapped files, object arrays). ``rows`` is a
    slice of the epoch's order (a permutation of the training rows) and ``out`` a slice of a batch buffer, so a
    C-contiguous table needs none of take_rows' checks."""
    if type(table) is np.ndarray and not table.dtype.hasobject:
        if table.flags.c_contiguous and rows.dtype == np.int64 and rows.flags.c_contiguous:
            kernels._take_rows_known_good(table, rows, out)
        else:
            kernels.take_rows(table, rows, out)
    else:
        np.take(table, rows, axis=0, out=out)


def predict(net, X: np.ndarray, rows: int = EVAL_ROWS) -> np.ndarray:
    """Inference predictions of ``net`` for ``X``, computed ``rows`` rows at a time (so a large test set never
    holds every layer's activations at once) and joined."""
    if X.shape[0] <= rows:
        return net.forward(X, inference=True)
    return np.concatenate([net.forward(X[i:i + rows], inference=True) for i in range(0, X.shape[0], rows)])


def _accuracy(preds: np.ndarray, y: np.ndarray) -> Optional[float]:
    """Fraction of rows whose arg-max matches the one-hot target's; None for other targets."""
    y = np.asarray(y)
    if y.ndim != 2 or y.shape[1] < 2 or np.asarray(preds).shape != y.shape:
        return None
    return float(np.mean(np.argmax(preds, axis=1) == np.argmax(y, axis=1)))


class _Reporter:
    """The trainer's output: the book's lines printed (through the bar when there is one) and logged, and
    the bar advanced in steps of ``BAR_EVERY`` batches with the mean training loss of those batches."""

    def __init__(self, bar, quiet: bool = False) -> None:
        self.bar = bar
        self.quiet = quiet  # a data-parallel rank other than 0: nothing printed or logged
        self.pending = 0
        self.loss_sum = 0.0
        self.lr = float("nan")

    def __call__(self, message: str = "") -> None:
        if self.quiet:
            return
        (print if self.bar is None else self.bar.write)(message)
        if message:
            LOGGER.info(message)

    def batch_done(self, loss, lr) -> None:
        self.pending += 1
        self.loss_sum += float(loss)
        self.lr = lr
        if self.pending == BAR_EVERY:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.bar.set_postfix(loss=f"{self.loss_sum / self.pending:.3f}", lr=f"{float(self.lr):.4g}", refresh=False)
            self.bar.update(self.pending)
        self.pending, self.loss_sum = 0, 0.0

    def close(self) -> None:
        if self.bar is not None:
            self.flush()
            self.bar.close()


class _RunState:
    """Where a fit stands: the next (epoch, batch), the seconds spent, the history, and the fit's arguments
    that a checkpoint must agree with."""

    def __init__(self, fit_args: Dict[str, Any]) -> None:
        self.fit_args = fit_args
        self.epoch, self.batch = 0, 0
        self.seconds, self.eval_seconds = 0.0, 0.0
        self.finished = False

    def update(self, epoch: int, batch: int, seconds: float, eval_seconds: float) -> None:
        self.epoch, self.batch, self.seconds, self.eval_seconds = epoch, batch, seconds, eval_seconds


def _dropout_ops(net) -> List[Dropout]:
    return [op for layer in net.layers for op in (getattr(layer, "operations", None) or []) if isinstance(op, Dropout)]


class _Checkpoints:
    """fit's ``checkpoint_every`` / ``checkpoint_path``: checked when fit starts, saved when due, resumed."""

    def __init__(self, trainer: Trainer, every: int, path) -> None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 0:
            raise ValueError(f"Trainer.fit: checkpoint_every must be an int >= 0 (0: no checkpoints), got {every!r}")
        if every and path is None:
            raise ValueError(f"Trainer.fit: checkpoint_every={every} needs a checkpoint_path to write to")
        if path is not None and not hasattr(trainer.net, "state_dict"):
            raise TypeError(f"Trainer.fit: checkpoints need a network with state_dict/load_state_dict (fastdl's "
                            f"NeuralNetwork); got {type(trainer.net).__name__}")
        self.trainer, self.every, self.path = trainer, int(every), path

    def due(self, step: int) -> bool:
        return bool(self.every) and step % self.every == 0

    def save(self, run: _RunState, batches: _ShuffledBatches, shuffle_rng: np.random.Generator) -> None:
        if self.path is None:
            return
        trainer = self.trainer
        if trainer._speaks:
            self._write(run, batches, shuffle_rng)
        trainer._checkpoint_written()

    def _write(self, run: _RunState, batches: _ShuffledBatches, shuffle_rng: np.random.Generator) -> None:
        trainer = self.trainer
        arrays = {f"net.{name}": value for name, value in trainer.net.state_dict().items()}
        arrays["position.order"] = batches.order
        best = trainer._best_model
        if best is not None:
            arrays.update({f"best.{name}": value for name, value in best.state_dict().items()})
        meta = {"fit": run.fit_args, "epoch": run.epoch, "batch": run.batch, "finished": run.finished,
                "seconds": run.seconds, "eval_seconds": run.eval_seconds, "history": trainer.history,
                "best_loss": float(trainer.best_loss), "best_epoch": trainer.best_epoch, "has_best": best is not None,
                "shuffle_rng": shuffle_rng.bit_generator.state,
                "dropout_rngs": [op.rng.bit_generator.state for op in _dropout_ops(trainer.net)],
                "optimizer": pack_state(trainer.optim, "optim", arrays, skip=("net", "model"))}
        save_checkpoint(self.path, arrays, meta)

    def resume(self, run: _RunState, batches: _ShuffledBatches, shuffle_rng: np.random.Generator) -> bool:
        """Continue from ``self.path`` when it holds an unfinished run of the same fit (returns True); else
        start afresh (False)."""

        if self.path is None or not os.path.exists(self.path):
            return False
        arrays, meta = load_checkpoint(self.path)
        if meta.get("finished"):
            return False
        if meta.get("fit") != run.fit_args:
            raise ValueError(f"Trainer.fit: the checkpoint {self.path} is of another run: it was saved by fit with "
                             f"{meta.get('fit')}, this fit has {run.fit_args}; pass another checkpoint_path or "
                             f"delete the file to start afresh")
        trainer = self.trainer
        trainer.net.load_state_dict({k[4:]: v for k, v in arrays.items() if k.startswith("net.")})
        unpack_state(trainer.optim, meta["optimizer"], arrays)
        order = arrays["position.order"]
        if order.shape != batches.order.shape:
            raise ValueError(f"Trainer.fit: the checkpoint {self.path} has a data order of {order.shape[0]} rows, "
                             f"the training set has {batches.order.shape[0]}")
        batches.order = order
        shuffle_rng.bit_generator.state = meta["shuffle_rng"]
        ops = _dropout_ops(trainer.net)
        if len(ops) != len(meta["dropout_rngs"]):
            raise ValueError(f"Trainer.fit: the checkpoint {self.path} has {len(meta['dropout_rngs'])} dropout "
                             f"generators, the network {len(ops)}")
        for op, state in zip(ops, meta["dropout_rngs"]):
            op.rng.bit_generator.state = state
        trainer.best_loss, trainer.best_epoch = meta["best_loss"], meta["best_epoch"]
        trainer._best_model = None
        if meta["has_best"]:
            trainer._best_model = deepcopy(trainer.net)
            trainer._best_model.load_state_dict({k[5:]: v for k, v in arrays.items() if k.startswith("best.")})
        trainer.history[:] = meta["history"]
        run.update(meta["epoch"], meta["batch"], meta["seconds"], meta["eval_seconds"])
        return True
