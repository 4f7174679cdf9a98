"""Data-parallel training under ``mpiexec -n 2`` (the MPI library installed by pip with the ``mpi`` extra):
two ranks train like one process (float64, to rounding), keep equal weights, resume from a checkpoint to
the very same weights, stop every rank when one dies or raises, and refuse bad arguments on every rank.

The scenarios run in ``mpi_worker.py``. Without mpi4py these tests skip, unless FASTDL_REQUIRE_MPI=1
(CI sets it) turns the missing MPI into a failure."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = str(Path(__file__).with_name("mpi_worker.py"))
TIMEOUT = 120


def _mpiexec():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        mpi4py = None
    found = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if mpi4py is None or found is None:
        if os.environ.get("FASTDL_REQUIRE_MPI") == "1":
            pytest.fail("FASTDL_REQUIRE_MPI=1 but mpi4py or mpiexec is missing: pip install 'fastdl-kernels[mpi]'")
        pytest.skip("needs mpi4py and mpiexec: pip install 'fastdl-kernels[mpi]'")
    return found


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1")


def run_ranks(n, *args, timeout=TIMEOUT):
    """``mpiexec -n n python mpi_worker.py args...``: the CompletedProcess (stdout and stderr joined)."""
    cmd = [_mpiexec(), "-n", str(n), sys.executable, WORKER, *map(str, args)]
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                          env=_env())


def run_one(*args):
    subprocess.run([sys.executable, WORKER, *map(str, args)], check=True, timeout=TIMEOUT, env=_env(),
                   stdout=subprocess.DEVNULL)


def _params(result):
    return [result[k] for k in sorted(result.files) if k.startswith("p")]


@pytest.fixture(scope="module")
def two_rank_cnn(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    done = run_ranks(2, "cnn", folder / "two.npz", "mpi")
    assert done.returncode == 0, done.stdout
    run_one("cnn", folder / "one.npz", "one")
    return np.load(folder / "two.npz"), np.load(folder / "one.npz"), done.stdout


def test_two_ranks_train_like_one_process(two_rank_cnn):
    """Conv + dropout + SGDMomentum + early stopping, 101 rows in batches of 12 (the last one 5 rows,
    split 3 + 2): the same weights and losses as one process, to float64 rounding."""
    two, one, _ = two_rank_cnn
    for a, b in zip(_params(two), _params(one)):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(two["losses"], one["losses"], rtol=1e-11)
    assert len(one["losses"]) == 3


def test_ranks_hold_equal_weights_and_one_message_per_step(two_rank_cnn):
    two, _, _ = two_rank_cnn
    np.testing.assert_array_equal(two["ranks"][0], two["ranks"][1])
    n_params = sum(p.size for p in _params(two))
    assert int(two["allreduce_bytes"]) == (n_params + 1) * 8  # the gradients and the batch loss, float64
    assert float(two["allreduce_ms"]) > 0


def test_only_rank_zero_prints(two_rank_cnn):
    _, _, stdout = two_rank_cnn
    assert stdout.count("Validation loss after 1 epochs") == 1


def test_recurrent_trainer_on_two_ranks_equals_one_process(tmp_path):
    """Chapter 6's LSTM model with AdaGrad and clipping: summed gradients and rank-weighted carried states."""
    done = run_ranks(2, "rnn", tmp_path / "two.npz", "mpi")
    assert done.returncode == 0, done.stdout
    run_one("rnn", tmp_path / "one.npz", "one")
    two, one = np.load(tmp_path / "two.npz"), np.load(tmp_path / "one.npz")
    assert sorted(two.files) == sorted(one.files)
    for name in one.files:
        np.testing.assert_allclose(two[name], one[name], rtol=1e-10, atol=1e-14, err_msg=name)


def test_killed_job_resumes_from_its_checkpoint_to_the_same_weights(tmp_path, two_rank_cnn):
    path = tmp_path / "run.npz"
    stopped = run_ranks(2, "cnn", tmp_path / "unused.npz", "mpi", "checkpoint", path, 17)
    assert stopped.returncode != 0 and path.exists()
    resumed = run_ranks(2, "cnn", tmp_path / "resumed.npz", "mpi", "checkpoint", path)
    assert resumed.returncode == 0, resumed.stdout
    assert "Resuming from" in resumed.stdout and "epoch 2, batch 7" in resumed.stdout  # 15 = 9 + 6 batches
    two = two_rank_cnn[0]
    for a, b in zip(_params(np.load(tmp_path / "resumed.npz")), _params(two)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("how", ["kill", "raise"])
def test_a_failing_rank_ends_the_job(tmp_path, how):
    done = run_ranks(2, "dies", tmp_path / "x", how, timeout=60)  # a hang would raise TimeoutExpired
    assert done.returncode != 0
    if how == "raise":
        assert "DataParallelTrainer failed on rank 1 of 2" in done.stdout
        assert "a failure in rank 1's step" in done.stdout


@pytest.mark.parametrize("case, message", [
    ("batch", "global batch_size 13 is not divisible by the 2 ranks"),
    ("shapes", "ranks disagree on model parameters"),
    ("seed", "ranks disagree on fit arguments"),
    ("data", "ranks disagree on training data"),
    ("comm", "comm must be an mpi4py intracommunicator"),
])
def test_bad_arguments_fail_on_every_rank(tmp_path, case, message):
    done = run_ranks(2, "bad", tmp_path / "x", case, timeout=60)
    assert done.returncode == 7, done.stdout
    assert done.stdout.count(message) == 2, done.stdout  # both ranks raised it, none waits


def test_single_process_world_is_the_plain_trainer(tmp_path):
    """Without mpiexec mpi4py's world has one rank: the data-parallel trainer trains as Trainer does."""
    _mpiexec()
    run_one("cnn", tmp_path / "alone.npz", "mpi")
    run_one("cnn", tmp_path / "one.npz", "one")
    for a, b in zip(_params(np.load(tmp_path / "alone.npz")), _params(np.load(tmp_path / "one.npz"))):
        np.testing.assert_array_equal(a, b)


def test_command_line_distributed_run(tmp_path):
    """mpiexec -n 2 fastdl train mlp --distributed: rank 0 alone prints and writes the report; without
    OMP_NUM_THREADS each rank takes its share of the CPUs."""
    pytest.importorskip("sklearn", reason="the command's default data, the digits, comes with scikit-learn")
    env = {k: v for k, v in _env().items() if k != "OMP_NUM_THREADS"}
    out = tmp_path / "run.json"
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "fastdl", "train", "mlp", "--distributed", "--epochs", "2",
           "--json", str(out)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT, env=env)
    assert done.returncode == 0, done.stdout
    assert done.stdout.count("test accuracy:") == 1 and "2 ranks" in done.stdout
    report = json.loads(out.read_text())
    assert report["ranks"] == 2 and report["test_accuracy"] > 0.8
    assert report["threads_per_rank"] == max(1, len(os.sched_getaffinity(0)) // 2)
    assert report["allreduce_bytes"] == (64 * 89 + 89 + 89 * 10 + 10 + 1) * 4  # float32 gradients + the loss


def test_command_line_bad_batch_is_said_once_and_every_rank_exits_2(tmp_path):
    cmd = [_mpiexec(), "-n", "2", sys.executable, "-m", "fastdl", "train", "mlp", "--distributed", "--batch-size", "61"]
    pytest.importorskip("sklearn", reason="the command's default data, the digits, comes with scikit-learn")
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT,
                          env=_env())
    assert done.returncode == 2, done.stdout
    assert done.stdout.count("global batch_size 61 is not divisible by the 2 ranks") == 1, done.stdout
    assert "Traceback" not in done.stdout
