"""``fastdl train mlp|cnn --data ...``: the flags, bad values (exit status 2, one clear line, no traceback),
the JSON run report and its history, the plot; and the history and logging of ``Trainer.fit``."""

import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from fastdl.datasets.idx import write_idx


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "fastdl", "train", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def small_mnist_folder(folder, n_train=240, n_test=60):
    """A learnable stand-in of MNIST's format: each class is a bright square at its own place."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        images = rng.integers(0, 40, (n, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            r, c = 2 + 8 * (label // 4), 2 + 8 * (label % 4)
            images[i, r:r + 6, c:c + 6] = 250
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", images, compress=True)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", labels, compress=True)
    return folder


@pytest.mark.parametrize("args,words", [
    (["mlp", "--epochs", "0"], "--epochs: must be a finite number greater than 0"),
    (["mlp", "--epochs", "two"], "is not an integer"),
    (["mlp", "--batch-size", "-3"], "--batch-size: must be a finite number greater than 0"),
    (["mlp", "--lr", "0"], "--lr: must be a finite number greater than 0"),
    (["lstm", "--distributed"], "--distributed applies to mlp and cnn"),
    (["lstm", "--checkpoint", "x.npz"], "--checkpoint applies to mlp and cnn"),
    (["mlp", "--threads-per-rank", "1"], "--threads-per-rank applies with --distributed"),
    (["mlp", "--threads-per-rank", "0", "--distributed"], "--threads-per-rank: must be a finite number"),
    (["mlp", "--checkpoint-every", "3"], "--checkpoint-every needs --checkpoint PATH"),
    (["mlp", "--checkpoint", "/no/such/folder/run.npz"], "cannot write /no/such/folder/run.npz"),
    (["mlp", "--lr", "inf"], "--lr: must be a finite number greater than 0"),
    (["mlp", "--lr", "nan"], "--lr: must be a finite number greater than 0"),
    (["mlp", "--data", "nosuch"], "invalid choice: 'nosuch'"),
    (["cnn", "--data", "mnist", "--data-dir", "/nonexistent/folder"], "does not exist"),
    (["mlp", "--data-dir", "/tmp"], "--data-dir applies to fashion-mnist and mnist"),
    (["lstm", "--data", "mnist"], "--data applies to mlp and cnn"),
    (["mlp", "--json", "/nonexistent/folder/run.json"], "cannot write /nonexistent/folder/run.json"),
])
def test_bad_values_exit_2_with_a_clear_line(args, words):
    result = run_cli(*args)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_files_without_network_exit_2(tmp_path):
    blocked = tmp_path / "blocked"  # a `pooch` that cannot be imported: the child never goes online
    (blocked / "pooch").mkdir(parents=True)
    (blocked / "pooch" / "__init__.py").write_text("raise ImportError('pooch is blocked in this test')\n")
    result = run_cli("mlp", "--data", "mnist", env={"XDG_CACHE_HOME": str(tmp_path), "FASTDL_DATA": str(tmp_path),
                                                    "PYTHONPATH": str(blocked)})
    assert result.returncode == 2
    assert "Ways to provide them" in result.stderr and "Traceback" not in result.stderr


def test_train_mlp_on_mnist_format_files_writes_json_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    folder = small_mnist_folder(tmp_path / "data")
    report, plot = tmp_path / "run.json", tmp_path / "curves.png"
    result = run_cli("mlp", "--data", "mnist", "--data-dir", str(folder), "--epochs", "3", "--batch-size", "30",
                     "--lr", "0.02", "--json", str(report), "--plot", str(plot),
                     env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "test accuracy:" in out and "s per epoch" in out and "images/s" in out
    run = json.loads(report.read_text())
    assert run["model"] == "mlp" and run["data"] == "mnist" and run["epochs"] == 3 and run["batch_size"] == 30
    assert run["lr"] == pytest.approx(0.02)
    assert [row["epoch"] for row in run["history"]] == [1, 2, 3]
    assert all(0 <= row["accuracy"] <= 1 and row["loss"] > 0 for row in run["history"])
    assert run["history"][-1]["seconds"] >= run["history"][-1]["train_seconds"] > 0
    assert run["test_accuracy"] == pytest.approx(float(out.split("test accuracy:")[1].split()[0]), abs=1e-4)
    assert run["test_accuracy"] > 0.5  # ten bright squares are easy to tell apart
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_cnn_on_fastdl_data(tmp_path):
    small_mnist_folder(tmp_path / "mnist", n_train=120, n_test=30)
    result = run_cli("cnn", "--data", "mnist", "--epochs", "1",
                     env={"FASTDL_DATA": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "model: cnn on mnist (120 training images 1x28x28, 30 test)" in result.stdout


def test_progress_bar_counts_batches(tmp_path):
    pytest.importorskip("tqdm")
    folder = small_mnist_folder(tmp_path / "data", n_train=100, n_test=20)
    result = run_cli("mlp", "--data", "mnist", "--data-dir", str(folder), "--epochs", "2", "--batch-size", "10",
                     "--progress", env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stderr
    assert "20/20" in result.stderr and "loss=" in result.stderr


# -- Trainer.fit's history and logging --------------------------------------------------------------
def small_fit(caplog=None, **kwargs):
    from fastdl.cli.demos import build_mlp
    from fastdl.datasets import one_hot
    from fastdl.train import Trainer

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 8)).astype(np.float32)
    labels = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)
    y = one_hot(labels, 10)  # four classes used of the MLP's ten outputs
    net, optim = build_mlp(seed=3)
    trainer = Trainer(net, optim)
    history = trainer.fit(X[:90], y[:90], X[90:], y[90:], batch_size=15, seed=1, **kwargs)
    return trainer, history


def test_fit_returns_the_history_and_logs_the_books_lines(caplog, capsys):
    with caplog.at_level(logging.INFO, logger="fastdl"):
        trainer, history = small_fit(epochs=6, eval_every=2, early_stopping=False)
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"Validation loss after {e} epochs is {row['loss']:.3f}"
                       for e, row in zip((2, 4, 6), history)]
    assert [r.getMessage() for r in caplog.records if r.name == "fastdl"] == printed
    assert history is trainer.history and [row["epoch"] for row in history] == [2, 4, 6]
    assert all(0 <= row["accuracy"] <= 1 for row in history)
    assert history[0]["seconds"] < history[1]["seconds"] < history[2]["seconds"]
    assert trainer.epochs_trained == 6 and 0 < trainer.train_seconds


def test_accuracy_in_the_history_is_the_argmax_accuracy():
    from fastdl.train import _accuracy

    preds = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert _accuracy(preds, np.array([[0, 1], [0, 1], [0, 1]])) == pytest.approx(2 / 3)
    assert _accuracy(preds[:, :1], np.ones((3, 1))) is None  # one column: a regression target


def test_rnn_trainer_history_and_log(caplog):
    from fastdl.rnn import LSTMLayer, RNNModel, RNNTrainer, load_text, vocabulary
    from fastdl.rnn.optimizers import SGD

    vocab = len(vocabulary(load_text()))
    model = RNNModel([LSTMLayer(16, vocab, weight_scale=0.01)], sequence_length=10, vocab_size=vocab, seed=1)
    trainer = RNNTrainer(None, model, SGD(lr=0.01), batch_size=4, seed=1)
    with caplog.at_level(logging.INFO, logger="fastdl"):
        trainer.train(6, sample_every=3)
    assert [row["iteration"] for row in trainer.history] == [0, 3]
    assert all(row["loss"] > 0 for row in trainer.history)
    assert sum(r.getMessage().startswith("iteration ") for r in caplog.records if r.name == "fastdl") == 2


def test_checkpoint_flag_trains_the_same_and_a_finished_checkpoint_starts_afresh(tmp_path):
    """Checkpointing does not change the training; a finished run's checkpoint (here of a 1-epoch run) is
    overwritten by a fresh run, not resumed. (Resuming an interrupted run: tests/book/test_checkpoint.py and,
    killed under mpiexec, tests/distributed.)"""
    folder = small_mnist_folder(tmp_path / "data")
    common = ["mlp", "--data", "mnist", "--data-dir", str(folder), "--epochs", "3", "--batch-size", "40"]
    whole = run_cli(*common, "--json", str(tmp_path / "whole.json"))
    assert whole.returncode == 0, whole.stderr
    path = tmp_path / "run.npz"
    first = run_cli(*common, "--epochs", "1", "--checkpoint", str(path))
    assert first.returncode == 0 and path.exists()
    again = run_cli(*common, "--checkpoint", str(path), "--checkpoint-every", "4",
                    "--json", str(tmp_path / "again.json"))
    assert again.returncode == 0, again.stderr
    assert "Resuming" not in again.stdout
    reports = [json.loads((tmp_path / name).read_text()) for name in ("whole.json", "again.json")]
    assert reports[0]["test_accuracy"] == reports[1]["test_accuracy"]
    assert [h["loss"] for h in reports[0]["history"]] == [h["loss"] for h in reports[1]["history"]]


def test_checkpoint_of_another_unfinished_run_exits_2(tmp_path):
    from fastdl.checkpoint import save_checkpoint

    path = tmp_path / "other.npz"
    save_checkpoint(path, {}, {"fit": {"rows": 1}, "finished": False})
    folder = small_mnist_folder(tmp_path / "data")
    result = run_cli("mlp", "--data", "mnist", "--data-dir", str(folder), "--epochs", "1", "--checkpoint", str(path))
    assert result.returncode == 2 and "is of another run" in result.stderr and "Traceback" not in result.stderr
