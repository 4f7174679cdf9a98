"""Compile fastdl's CUDA kernels for sm_90 on a machine without a GPU and report, per kernel, the
registers, spills and shared memory that ptxas gives, and the instruction mix of the innermost loops.

    pip install numba-cuda nvidia-cuda-nvcc nvidia-cuda-nvrtc nvidia-cuda-nvdisasm   # a dev venv
    python tools/cuda_static.py gemm        # every GEMM tile configuration, both dtypes, all transposes
    python tools/cuda_static.py xent        # the fused softmax cross-entropy kernels
    python tools/cuda_static.py conv        # the implicit-im2col GEMMs of the convolutions

These are static facts about the code a GPU would run, not timings. numba asks the (absent) device
for its compute capability when it compiles device functions; this tool answers (9, 0).
"""

import collections
import importlib
import os
import re
import subprocess
import sys
import tempfile
import types as pytypes

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from numba import cuda, types  # noqa: E402
from numba.np.numpy_support import from_dtype  # noqa: E402
import numba.cuda.dispatcher as _dispatcher  # noqa: E402

_dispatcher.get_current_device = lambda: pytypes.SimpleNamespace(compute_capability=(9, 0))
CC = (9, 0)
TOOLS = os.path.join(list(importlib.import_module("nvidia.cu13").__path__)[0], "bin")   # ptxas, nvdisasm
COUNTED = ["FFMA", "DFMA", "LDS.128", "LDS.64", "LDS", "LDG.E", "LDG.E.64", "STG.E", "STS", "STS.64",
           "MUFU.EX2", "MUFU.LG2", "BAR.SYNC.DEFER_BLOCKING", "LDL", "STL"]


def _signature(args):
    sig = []
    for a in args:
        if isinstance(a, np.ndarray):
            sig.append(types.Array(from_dtype(a.dtype), a.ndim, "C"))
        elif isinstance(a, (np.floating, np.integer)):
            sig.append(from_dtype(np.asarray(a).dtype))
        else:
            sig.append(types.int64)
    return tuple(sig)


def compile_kernel(dispatcher, args, launch_bounds=None, fastmath=False):
    """(ptxas resource line, SASS text) of a cuda.jit kernel compiled for the given example args."""
    ptx, _ = cuda.compile_ptx(dispatcher.py_func, _signature(args), cc=CC, launch_bounds=launch_bounds,
                              fastmath=fastmath)
    with tempfile.TemporaryDirectory() as d:
        src, cubin = os.path.join(d, "k.ptx"), os.path.join(d, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        arch = f"-arch=sm_{CC[0]}{CC[1]}"
        info = subprocess.run([os.path.join(TOOLS, "ptxas"), arch, "-O3", "-v", src, "-o", cubin],
                              capture_output=True, text=True, check=True).stderr
        sass = subprocess.run([os.path.join(TOOLS, "nvdisasm"), "-c", cubin],
                              capture_output=True, text=True, check=True).stdout
    resources = " ".join(line.replace("ptxas info    :", "").strip() for line in info.splitlines()
                         if "Used" in line or "spill" in line)
    return resources, sass


def loops(sass):
    """Opcode counts of each loop (a backward branch and its body), innermost (shortest) first."""
    ops, labels, found = [], {}, []
    for line in sass.splitlines():
        label = re.match(r"^(\.L_x_\d+):", line.strip())
        if label:
            labels[label.group(1)] = len(ops)
            continue
        m = re.match(r"\s*/\*[0-9a-f]+\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]+)(.*)", line)
        if m:
            ops.append((m.group(1), m.group(2)))
    for i, (op, rest) in enumerate(ops):
        target = re.search(r"`\((\.L_x_\d+)\)", rest) if op == "BRA" else None
        if target and labels.get(target.group(1), i + 1) <= i:
            found.append(collections.Counter(o for o, _ in ops[labels[target.group(1)]:i + 1]))
    return sorted(found, key=lambda c: sum(c.values()))


def mix(counter):
    return f"{sum(counter.values())} instructions: " + ", ".join(
        f"{k.split('.')[0] if k.startswith('BAR') else k}={counter[k]}" for k in COUNTED if counter[k])


def _gemm_report(mm, dt, cfg, ta, tb, gather=False):
    z = np.zeros(4, dt)
    args = (z, z, z, z, z) + (0,) * 18 + (np.zeros(3, np.int64),) + (0,) * 5
    blocks = mm.blocks_per_sm(cfg, dt)
    kern, nt = mm._gemm_kernel(np.dtype(dt), cfg, ta, tb, 0, False, False, blocks, False, gather)
    resources, sass = compile_kernel(kern, args, launch_bounds=(nt, blocks))
    inner = [c for c in loops(sass) if c["FFMA"] or c["DFMA"]][:1]
    print(f"{np.dtype(dt).name} {cfg} trans_a={ta:d} trans_b={tb:d}{' gather' if gather else ''} "
          f"{blocks} blocks/SM: {resources}")
    if inner:
        print(f"    innermost FMA loop: {mix(inner[0])}")
    tile_loops = [c for c in loops(sass) if c["BAR.SYNC.DEFER_BLOCKING"] and (c["FFMA"] or c["DFMA"])][:1]
    if tile_loops:
        print(f"    K-tile loop: {mix(tile_loops[0])}")


def gemm():
    mm = importlib.import_module("fastdl.cuda.matmul")
    for dt in (np.float32, np.float64):
        for cfg, _, _ in mm.CONFIGS:
            for ta, tb in ((False, False), (True, False), (False, True), (True, True)):
                _gemm_report(mm, dt, cfg, ta, tb)


def conv():
    """The gather GEMMs under the tile configurations that the benchmark's conv (16->32, 28x28, batch
    256) picks, then every configuration."""
    mm = importlib.import_module("fastdl.cuda.matmul")
    for what, (M, N, tb) in {"forward": (32, 784, False), "grad_w": (32, 144, True),
                             "grad_x": (16, 784, False)}.items():
        print(f"{what}: picks {mm.pick_config(M, N, 256)}")
    for dt in (np.float32, np.float64):
        for cfg, _, _ in mm.CONFIGS:
            for tb in (False, True):
                _gemm_report(mm, dt, cfg, False, tb, gather=True)


def xent():
    sx = importlib.import_module("fastdl.cuda.softmax_cross_entropy")
    f32 = np.float32
    x, labels, rows, count = np.zeros(4, f32), np.zeros(4, np.int64), np.zeros(4, np.float64), np.zeros(1, np.int32)
    args = (x, labels, x, rows, count, rows, 0, 0, f32(0), f32(0), np.float64(0))
    for C in (50304, 4096):
        nt, unroll, per_sm, cached = sx._config(C, np.dtype(f32), max_shared=232448)
        for mode in (sx.BOOK, sx.STANDARD):
            kern = sx._xent_kernel(np.dtype(f32), nt, unroll, per_sm, mode, False, cached)
            resources, sass = compile_kernel(kern, args, launch_bounds=(nt, per_sm), fastmath=True)
            print(f"C={C} mode={mode} row in shared memory={cached}: {resources}")
            for c in loops(sass)[:8]:
                if c["LDG.E"] or c["STG.E"]:
                    print(f"    loop: {mix(c)}")


if __name__ == "__main__":
    {"gemm": gemm, "xent": xent, "conv": conv}[sys.argv[1] if len(sys.argv) > 1 else "gemm"]()
