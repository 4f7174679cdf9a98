"""The CUDA backend's launch-configuration choices for a real GPU. Pure Python: runs without numba,
a GPU or the simulator (the choices themselves are timed on a GPU by benches/gpu_suite.py)."""

import importlib

import numpy as np
import pytest

matmul = importlib.import_module("fastdl.cuda.matmul")          # the module, not the kernel of that name
softmax_ce = importlib.import_module("fastdl.cuda.softmax_cross_entropy")
H100_SHARED_OPTIN = 232448                                      # bytes per block after opting in


@pytest.fixture(autouse=True)
def real_gpu_choices(monkeypatch):
    for module in (matmul, softmax_ce):
        monkeypatch.setattr(module, "simulator", lambda: False)


@pytest.mark.parametrize("cfg,_,__", matmul.CONFIGS)
def test_float64_gets_half_the_blocks_per_sm(cfg, _, __):
    f32, f64 = matmul.blocks_per_sm(cfg, np.float32), matmul.blocks_per_sm(cfg, np.float64)
    assert f32 >= 2 and f64 == f32 // 2
    # the register cap 65536 / (threads x blocks) leaves a float64 thread room for its accumulators
    threads = (cfg[0] // cfg[3]) * (cfg[1] // cfg[4])
    assert 65536 // (threads * f64) >= 2 * cfg[3] * cfg[4] + 32


def test_configurations_outside_the_table_are_not_capped():
    assert matmul.blocks_per_sm(matmul.SIM_CONFIG, np.float32) is None


def test_pick_config_prefers_the_big_tile_for_big_products():
    assert matmul.pick_config(4096, 4096) == (128, 128, 8, 8, 8)
    assert matmul.pick_config(4096, 4096, dtype=np.float64) == (128, 128, 8, 8, 8)
    assert matmul.pick_config(32, 100352)[:2] == (32, 128)       # the conv forward: C_out = 32 rows


@pytest.mark.parametrize("C,dtype,cached", [
    (50304, np.float32, True),       # the 8192 x 50304 logits: 197 KiB per row
    (50304, np.float64, False),      # 393 KiB: pass 2 re-reads the row through L2
    (25000, np.float64, True),
    (53500, np.float32, True),
    (56000, np.float32, False),      # 219 KiB + the reduction arrays no longer fit
    (8192, np.float32, True),
    (8191, np.float32, False),       # shorter rows: several blocks per SM, rows stay in L2
    (4096, np.float32, False),
])
def test_softmax_rows_in_shared_memory_where_they_fit(C, dtype, cached):
    nt, unroll, per_sm, in_shared = softmax_ce._config(C, np.dtype(dtype), H100_SHARED_OPTIN)
    assert in_shared is cached
    if in_shared:
        assert per_sm == 1 and C * np.dtype(dtype).itemsize + nt * (2 * np.dtype(dtype).itemsize + 8) < H100_SHARED_OPTIN


def test_softmax_without_a_shared_memory_limit_keeps_rows_in_l2():
    assert softmax_ce._config(50304, np.dtype(np.float32))[3] is False


def test_softmax_within_the_public_launch_limit_keeps_long_rows_in_l2():
    """Without the opt-in (48 KiB per block), no row of 8192 or more float32 values fits beside the
    reduction arrays: every long row takes the L2 path."""
    for C in (8192, 12288, 50304):
        assert softmax_ce._config(C, np.dtype(np.float32), 48 * 1024)[3] is False

