"""``RNNTrainer``: chapter 6's character-level training loop.

The book's data representation is kept: row ``i`` of a batch is the window of ``sequence_length``
characters starting at ``start_pos + i`` (rows overlap, offset by one character), its target is the
same window shifted by one character, both one-hot ``(B, T, V)``; ``start_pos`` advances by
``batch_size`` characters per iteration and wraps to 0 near the end of the text.

Fixes and additions over the book: the vocabulary is ``sorted(set(text))``, so the index mapping is the
same in every run (the book's ``list(set(...))`` depended on string hashing); ``text_file=None`` uses
the corpus bundled with fastdl (``fastdl.datasets.text()``); ``train`` honours ``sample_every`` (the
book hard-coded 100), returns the per-iteration losses, prints instead of plotting, continues from
where the previous call stopped, and shows a tqdm bar with ``progress=True``; sampling draws from a
generator seeded by ``seed`` (the trainer's, or ``sample_output``'s own), never the global RNG.
"""

import logging
import time
from collections import deque
from copy import deepcopy
from typing import Any, Dict, List, Optional

import numpy as np

from fastdl import datasets
from fastdl.utils.progress import progress_bar
from fastdl.rnn.model import RNNModel
from fastdl.rnn.optimizers import RNNOptimizer

MOVING_AVERAGE = 100  # iterations in the reported moving-average loss, as the book


def load_text(text_file=None) -> str:
    """The contents of ``text_file`` (a path), or the bundled corpus when it is None."""
    if text_file is None:
        return datasets.text()
    with open(text_file, "r", encoding="utf-8") as f:
        return f.read()


def vocabulary(text: str) -> List[str]:
    """The sorted distinct characters of ``text``: index ``k`` is character ``vocabulary(text)[k]``."""
    return sorted(set(text))


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max()
    e = np.exp(z)
    return e / e.sum()


class RNNTrainer:
    """Trains ``model`` (an ``RNNModel``) with ``optim`` on the characters of ``text_file``.

    ``RNNTrainer(text_file, model, optim, batch_size=32)`` as the book (``text_file=None``: the bundled
    corpus). Sets ``optim.model = model``. ``vocab_size`` is the number of distinct characters; the last
    layer's ``output_size`` must equal it (build the model from ``vocabulary(load_text(path))``).
    ``seed`` seeds the sampling generator.
    """

    def __init__(self, text_file=None, model: Optional[RNNModel] = None, optim: Optional[RNNOptimizer] = None,
                 batch_size: int = 32, seed: Optional[int] = None) -> None:
        if model is None or optim is None:
            raise TypeError("RNNTrainer needs a model and an optimizer: RNNTrainer(text_file, model, optim)")
        self.data = load_text(text_file)
        self.model = model
        self.chars = vocabulary(self.data)
        self.vocab_size = len(self.chars)
        self.char_to_idx = {ch: i for i, ch in enumerate(self.chars)}
        self.idx_to_char = {i: ch for i, ch in enumerate(self.chars)}
        self.sequence_length = self.model.sequence_length
        self.batch_size = batch_size
        self.optim = optim
        setattr(self.optim, "model", self.model)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.start_pos = 0
        self.num_iter = 0
        self.loss_history: List[float] = []
        self.history: List[Dict[str, Any]] = []  # one entry per report: iteration, loss, seconds
        self._indices = np.fromiter((self.char_to_idx[ch] for ch in self.data), dtype=np.int64,
                                    count=len(self.data))
        self._check()

    def _check(self) -> None:
        need = self.sequence_length + self.batch_size + 1
        if len(self.data) < need:
            raise ValueError(f"RNNTrainer: the text has {len(self.data)} characters; sequence_length "
                             f"{self.sequence_length} + batch_size {self.batch_size} + 1 = {need} are needed")
        out = getattr(self.model.layers[-1], "output_size", self.vocab_size)
        if out != self.vocab_size:
            raise ValueError(f"RNNTrainer: the last layer's output_size is {out} but the text has "
                             f"{self.vocab_size} distinct characters; they must be equal")

    # -- data ----------------------------------------------------------------------------------
    def _generate_inputs_targets(self, start_pos: int):
        """``(inputs (B, T), targets (B, T))`` int64: row i is ``data[start_pos+i : start_pos+i+T]``,
        the target the same window one character later (only this process's rows, ``_batch_part``)."""
        lo, hi = self._batch_part(self.batch_size)
        rows = start_pos + np.arange(lo, hi)[:, None] + np.arange(self.sequence_length)[None, :]
        return self._indices[rows], self._indices[rows + 1]

    def _dtype(self):
        dtype = getattr(self.model.layers[0], "dtype", None)  # (a dtype is falsy: it has len 0)
        return np.float64 if dtype is None else dtype

    def _generate_one_hot_array(self, indices: np.ndarray) -> np.ndarray:
        """indices (B, T) -> one-hot (B, T, V) in the first layer's dtype."""
        return np.eye(self.vocab_size, dtype=self._dtype())[indices]

    # -- sampling -----------------------------------------------------------------------------------
    def sample_output(self, input_char: int, sample_length: int, seed: Optional[int] = None) -> str:
        """``sample_length`` characters generated one at a time from a copy of the model, starting
        from the character index ``input_char``. Each next index is drawn from the softmax of the
        logits; the copy's ``start_H``/``start_C`` carry the state. ``seed``: draw from
        ``default_rng(seed)``; None: from the trainer's generator (seeded by the trainer's ``seed``)."""
        rng = self.rng if seed is None else np.random.default_rng(seed)
        sample_model = deepcopy(self.model)
        eye = np.eye(self.vocab_size, dtype=self._dtype())
        indices = []
        for _ in range(sample_length):
            logits = sample_model.forward(eye[input_char][None, None, :])
            p = _softmax(np.asarray(logits, dtype=np.float64).ravel())
            input_char = int(rng.choice(self.vocab_size, p=p))
            indices.append(input_char)
        return "".join(self.idx_to_char[i] for i in indices)

    # -- the hooks a data-parallel trainer replaces ---------------------------------------------------
    #: whether this process prints, samples and shows the progress bar
    _speaks = True

    def _batch_part(self, rows: int):
        """The rows ``[lo, hi)`` of each batch that this process trains on: all of them."""
        return 0, rows

    def _train_step(self, inputs: np.ndarray, targets: np.ndarray) -> float:
        """One step on these windows: ``single_step`` then ``optim.step()``; returns the loss."""
        loss = float(self.model.single_step(self._generate_one_hot_array(inputs),
                                            self._generate_one_hot_array(targets)))
        self.optim.step()
        return loss

    # -- training -----------------------------------------------------------------------------------
    def train(self, num_iterations: int, sample_every: Optional[int] = 100, progress: bool = False) -> List[float]:
        """Run ``num_iterations`` steps (``single_step`` then ``optim.step()``); return their losses.

        Every ``sample_every`` iterations (counted over all calls; None or 0: never) print the moving
        average of the last 100 losses and a 200-character sample seeded with the next character.
        ``progress=True`` shows a tqdm bar (when tqdm is installed). ``loss_history`` keeps every loss;
        ``history`` gets one dict per report (``iteration``, ``loss``: the moving average, ``seconds`` since
        this call began), and each report is also logged (INFO) to ``logging.getLogger("fastdl")``.
        """
        moving_average = deque(self.loss_history[-MOVING_AVERAGE:], maxlen=MOVING_AVERAGE)
        losses: List[float] = []
        bar = progress_bar(num_iterations, progress and self._speaks, "iterations", "it")
        log = print if bar is None else bar.write
        start = time.perf_counter()
        try:
            for _ in range(num_iterations):
                if self.start_pos + self.sequence_length + self.batch_size + 1 > len(self.data):
                    self.start_pos = 0
                inputs, targets = self._generate_inputs_targets(self.start_pos)
                loss = self._train_step(inputs, targets)
                losses.append(loss)
                self.loss_history.append(loss)
                moving_average.append(loss)
                self.start_pos += self.batch_size
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{np.mean(moving_average):.1f}")
                if sample_every and self.num_iter % sample_every == 0 and self._speaks:
                    sample = self.sample_output(self.char_to_idx[self.data[self.start_pos]], 200)
                    report = (f"iteration {self.num_iter}: loss {np.mean(moving_average):.2f} "
                              f"(mean of the last {len(moving_average)})\n{sample}")
                    log(report)
                    logging.getLogger("fastdl").info(report)
                    self.history.append({"iteration": self.num_iter, "loss": float(np.mean(moving_average)),
                                         "seconds": time.perf_counter() - start})
                self.num_iter += 1
        finally:
            if bar is not None:
                bar.close()
        return losses
