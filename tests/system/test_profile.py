"""``fastdl bench --profile``: the work counted for each kernel, and the command's table and JSON."""

import json

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl.cli import profile
from fastdl.cli.main import main


def test_work_counted_from_the_arguments():
    a, b = np.zeros((3, 5)), np.zeros((5, 7))
    assert profile._flops("matmul", (a, b), {}, None) == 2 * 3 * 5 * 7
    assert profile._flops("matmul", (a.T.copy(), b), {"trans_a": True}, None) == 2 * 3 * 5 * 7
    assert profile._flops("linear", (a, b), {}, None) == 2 * 3 * 5 * 7
    assert profile._flops("linear_backward", (a, b), {"need_grad_x": False}, None) == 2 * 3 * 5 * 7
    assert profile._flops("linear_backward", (a, b), {}, None) == 4 * 3 * 5 * 7
    x, w, y = np.zeros((2, 3, 6, 6)), np.zeros((3, 4, 5, 5)), np.zeros((2, 4, 6, 6))
    assert profile._flops("conv2d", (x, w), {}, y) == 2 * y.size * 3 * 25
    assert profile._flops("conv2d_backward", (x, w, y), {}, None) == 4 * y.size * 3 * 25
    h_seq, grad_x = np.zeros((2, 7, 16)), np.zeros((2, 7, 9))
    once = 2 * 2 * 7 * (9 + 16) * 4 * 16
    assert profile._flops("lstm_forward", (grad_x,), {}, (h_seq,)) == once
    assert profile._flops("lstm_backward", (h_seq,), {}, (grad_x,)) == 2 * once
    assert profile._flops("dropout", (x,), {}, None) == 0
    assert profile._nbytes([x, [w, {"k": y}], 3]) == x.nbytes + w.nbytes + y.nbytes


def test_timer_records_every_call_and_restores_the_kernels():
    saved = kernels.linear
    timer = profile.KernelTimer()
    with timer.active():
        kernels.linear(np.ones((4, 3)), np.ones((3, 2)))
    assert kernels.linear is saved
    assert [r[0] for r in timer.records] == ["linear"] and timer.records[0][2] == 2 * 4 * 3 * 2


@pytest.mark.skipif(not fastdl.backend.cpu_available(), reason="fastdl._core is not built")
def test_profile_command_prints_the_table_and_writes_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(profile, "measure_limits", lambda seconds=0.5: (1e11, 1e10))
    path = tmp_path / "p.json"
    assert main(["bench", "--profile", "mlp", "--quick", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    for word in ("linear_backward", "parameter_update", "softmax_cross_entropy", "other", "of limit"):
        assert word in out
    report = json.loads(path.read_text())["profile"]
    rows = {r["kernel"]: r for r in report["rows"]}
    assert rows["linear"]["calls"] == 2 and rows["linear"]["gflops"] > 0
    assert rows["parameter_update"]["bound"] == "memory"
    assert report["other_ms"] >= 0  # every step lasts at least as long as the kernels it ran
    assert report["step_ms"] > 0
