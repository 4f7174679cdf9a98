"""fastdl CUDA backend vs PyTorch (cuBLAS / cuDNN) on one GPU, in one process.

    python benches/gpu_suite.py --out benches/results/gpu_h100.json [--quick]

Every workload is checked against PyTorch before it is timed, then timed with CUDA events
(median of several rounds after warm-up; the first call of each fastdl kernel compiles it).
fastdl gets PyTorch tensors (via __cuda_array_interface__, no copies) and returns Numba device
arrays. TF32 is disabled on both sides so FP32 is compared with FP32. Each workload runs in its
own try/except: one failure is recorded in the JSON and the others still run.

Workloads: SGEMM 4096^3; softmax cross-entropy 8192 x 50304 with int labels (fwd+grad, as a
fraction of the device's measured copy bandwidth); Conv2D 16->32 K=3 28x28 batch 256 fwd+bwd;
LSTM I256 H512 B128 T50 fwd+bwd; the ch5 CNN training step at batch 256 (against the cpu backend's
step on the 2-core dev machine, from benches/results/cnn_step_cpu_2core.json). Then two diagnostic
rows: the conv's time by stage (each GEMM, reductions, col2im) and SGEMM 4096^3 under each
tile configuration. Total runtime is a few minutes.
"""

import argparse
import importlib.util
import json
import os
import sys
import time
import traceback

import numpy as np

if importlib.util.find_spec("fastdl") is None:    # not installed: run from the checkout
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))     # cnn_step.py


def use_torch_allocator():
    """Route numba's device allocations through PyTorch's caching allocator (a numba EMM plugin).

    numba's own manager calls cuMemAlloc / cuMemFree for every array, and cuMemFree synchronises the
    device, so a loop that allocates outputs stalls CPU and GPU in turn. Must run before numba
    creates its CUDA context.
    """
    import ctypes
    import torch
    from numba import cuda
    from numba.cuda.cudadrv.driver import (GetIpcHandleMixin, HostOnlyCUDAMemoryManager, MemoryInfo,
                                           MemoryPointer)

    class TorchMemoryManager(GetIpcHandleMixin, HostOnlyCUDAMemoryManager):
        def initialize(self):
            pass

        def memalloc(self, size):
            ptr = torch.cuda.caching_allocator_alloc(max(int(size), 1))
            return MemoryPointer(self.context, ctypes.c_void_p(ptr), size,
                                 finalizer=lambda: torch.cuda.caching_allocator_delete(ptr))

        def get_memory_info(self):
            free, total = torch.cuda.mem_get_info()
            return MemoryInfo(free=free, total=total)

        @property
        def interface_version(self):
            return 1

    cuda.set_memory_manager(TorchMemoryManager)


def _timer(torch, fn, warmup=3, rounds=10):
    """Median milliseconds of fn() between two CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(rounds):
        start = torch.cuda.Event(enable_timing=True)
        stop = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return float(np.median(times))


def _np(torch, d):
    """Device array (Numba or torch) -> NumPy."""
    if hasattr(d, "copy_to_host"):
        return d.copy_to_host()
    return d.detach().cpu().numpy()


def _relerr(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def bench_sgemm(torch, fk, quick):
    n = 1024 if quick else 4096
    g = torch.Generator(device="cuda").manual_seed(0)
    a = torch.randn(n, n, device="cuda", generator=g)
    b = torch.randn(n, n, device="cuda", generator=g)
    c = fk.matmul(a, b)
    err = _relerr(_np(torch, c), _np(torch, a @ b))
    assert err < 1e-4, f"sgemm mismatch {err}"
    t_f = _timer(torch, lambda: fk.matmul(a, b))
    t_t = _timer(torch, lambda: torch.mm(a, b))
    flops = 2.0 * n ** 3
    return {"name": f"sgemm {n}^3 fp32", "fastdl_ms": t_f, "torch_ms": t_t, "ratio": t_t / t_f,
            "fastdl_tflops": flops / t_f / 1e9, "torch_tflops": flops / t_t / 1e9,
            "goal": ">= 0.70 of cuBLAS", "max_rel_err": err}


def bench_softmax_cross_entropy(torch, fk, quick):
    B, C = (1024, 50304) if quick else (8192, 50304)
    g = torch.Generator(device="cuda").manual_seed(0)
    logits = torch.randn(B, C, device="cuda", generator=g) * 3
    labels = torch.randint(0, C, (B,), device="cuda", generator=g)
    loss, grad = fk.softmax_cross_entropy(logits, labels)
    p = torch.softmax(logits, dim=1)
    onehot = torch.nn.functional.one_hot(labels, C).to(p.dtype)
    ref_grad = (p.clamp(1e-9, 1 - 1e-9) - onehot) / B
    err = _relerr(_np(torch, grad), _np(torch, ref_grad))
    assert err < 1e-4, f"softmax-ce grad mismatch {err}"
    p64 = p[:64].double().clamp(1e-9, 1 - 1e-9)
    oh64 = onehot[:64].double()
    l64 = float((-oh64 * p64.log() - (1 - oh64) * (1 - p64).log()).sum() / 64)
    l_chk, _ = fk.softmax_cross_entropy(logits[:64].contiguous(), labels[:64].contiguous())
    assert abs(l_chk - l64) <= 1e-4 * abs(l64), f"softmax-ce loss mismatch {l_chk} vs {l64}"
    t_f = _timer(torch, lambda: fk.softmax_cross_entropy(logits, labels))
    t_copy = _timer(torch, lambda: logits.clone())
    lt = logits.detach().clone().requires_grad_(True)

    def torch_ce():
        out = torch.nn.functional.cross_entropy(lt, labels)
        return torch.autograd.grad(out, lt)

    t_t = _timer(torch, torch_ce)
    nbytes = 2.0 * B * C * 4  # read logits + write grad (labels are negligible)
    gbs_f, gbs_copy = nbytes / t_f / 1e6, nbytes / t_copy / 1e6
    return {"name": f"softmax-CE {B}x{C} fp32 int labels (fwd+grad)", "fastdl_ms": t_f,
            "torch_ms": t_t, "ratio": t_t / t_f, "copy_ms": t_copy, "fastdl_GBps": gbs_f,
            "copy_GBps": gbs_copy, "fraction_of_copy_bw": gbs_f / gbs_copy,
            "torch_note": "torch.nn.functional.cross_entropy fwd+bwd (standard CE, no loss .item())",
            "goal": ">= 0.80 of copy bandwidth", "max_rel_err": err}


def bench_conv(torch, fk, quick):
    B, Ci, Co, H, K = (64 if quick else 256), 16, 32, 28, 3
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, Ci, H, H, device="cuda", generator=g)
    w = torch.randn(Ci, Co, K, K, device="cuda", generator=g) * 0.1    # fastdl layout (C_in, C_out, K, K)
    gy = torch.randn(B, Co, H, H, device="cuda", generator=g)
    wt = w.transpose(0, 1).contiguous().requires_grad_(True)           # torch layout (C_out, C_in, K, K)
    xt = x.clone().requires_grad_(True)

    def torch_step():
        y = torch.nn.functional.conv2d(xt, wt, padding=K // 2)
        return torch.autograd.grad(y, (xt, wt), gy)

    def fastdl_step():
        y = fk.conv2d(x, w, stride=1, padding="same")
        return y, fk.conv2d_backward(x, w, gy, stride=1, padding="same")

    y, (gx, gw) = fastdl_step()
    yt = torch.nn.functional.conv2d(x, wt.detach(), padding=K // 2)
    gxt, gwt = torch_step()
    errs = [_relerr(_np(torch, y), _np(torch, yt)), _relerr(_np(torch, gx), _np(torch, gxt)),
            _relerr(_np(torch, gw), _np(torch, gwt.transpose(0, 1)))]
    assert max(errs) < 1e-4, f"conv mismatch {errs}"
    t_f = _timer(torch, fastdl_step)
    t_t = _timer(torch, torch_step)
    flops = 3 * 2.0 * B * Co * H * H * Ci * K * K
    return {"name": f"conv2d {Ci}->{Co} K{K} {H}x{H} batch {B} fp32 fwd+bwd", "fastdl_ms": t_f,
            "torch_ms": t_t, "ratio": t_t / t_f, "fastdl_tflops": flops / t_f / 1e9,
            "torch_tflops": flops / t_t / 1e9, "goal": ">= 0.5x cuDNN", "max_rel_err": max(errs)}


def bench_lstm(torch, fk, quick):
    I, Hd, B, T = 256, 512, 128, (10 if quick else 50)
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(B, T, I, device="cuda", generator=g)
    h0 = torch.zeros(B, Hd, device="cuda")
    c0 = torch.zeros(B, Hd, device="cuda")
    w = torch.randn(I + Hd, 4 * Hd, device="cuda", generator=g) * 0.05  # fastdl: rows [x; h], gates f,i,g,o
    b = torch.randn(4 * Hd, device="cuda", generator=g) * 0.05
    gh = torch.randn(B, T, Hd, device="cuda", generator=g)

    lstm = torch.nn.LSTM(I, Hd, batch_first=True).cuda()
    perm = torch.cat([torch.arange(Hd, 2 * Hd), torch.arange(0, Hd),           # torch gates i,f,g,o
                      torch.arange(2 * Hd, 3 * Hd), torch.arange(3 * Hd, 4 * Hd)]).cuda()
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w[:I].t()[perm])
        lstm.weight_hh_l0.copy_(w[I:].t()[perm])
        lstm.bias_ih_l0.copy_(b[perm])
        lstm.bias_hh_l0.zero_()
    xt = x.clone().requires_grad_(True)
    params = [xt] + list(lstm.parameters())

    def torch_step():
        out, _ = lstm(xt, (h0[None], c0[None]))
        return torch.autograd.grad(out, params, gh)

    def fastdl_step():
        hs, c_last, cache = fk.lstm_forward(x, h0, c0, w, b)
        return hs, fk.lstm_backward(gh, cache)

    hs, grads = fastdl_step()
    out_t, _ = lstm(xt, (h0[None], c0[None]))
    tg = torch.autograd.grad(out_t, params, gh)
    gw_torch_ih = _np(torch, tg[1])                   # (4H, I) in torch gate order
    inv = torch.argsort(perm).cpu().numpy()
    errs = [_relerr(_np(torch, hs), _np(torch, out_t)), _relerr(_np(torch, grads[0]), _np(torch, tg[0])),
            _relerr(_np(torch, grads[3])[:I], gw_torch_ih[inv].T)]
    assert max(errs) < 1e-3, f"lstm mismatch {errs}"
    t_f = _timer(torch, fastdl_step, warmup=2, rounds=5)
    t_t = _timer(torch, torch_step, warmup=2, rounds=5)
    flops = 3 * 2.0 * B * T * (I + Hd) * 4 * Hd
    return {"name": f"LSTM I{I} H{Hd} B{B} T{T} fp32 fwd+bwd", "fastdl_ms": t_f, "torch_ms": t_t,
            "ratio": t_t / t_f, "fastdl_tflops": flops / t_f / 1e9, "torch_tflops": flops / t_t / 1e9,
            "goal": ">= 0.5x cuDNN", "max_rel_err": max(errs)}


def bench_conv_stages(torch, fk, quick):
    """Where the fastdl conv fwd+bwd of bench_conv spends its time: fastdl.cuda.conv's own GEMM and 1-D
    kernel launches, each bracketed by CUDA events while the real conv2d / conv2d_backward run (medians
    over rounds), for the next optimisation."""
    import importlib
    conv = importlib.import_module("fastdl.cuda.conv")

    B, Ci, Co, H, K = (64 if quick else 256), 16, 32, 28, 3
    x = torch.randn(B, Ci, H, H, device="cuda")
    w = torch.randn(Ci, Co, K, K, device="cuda") * 0.1
    gy = torch.randn(B, Co, H, H, device="cuda")

    def step():
        return fk.conv2d(x, w), fk.conv2d_backward(x, w, gy)

    step()                                                    # compile everything first
    calls = []

    def timed(fn, label):
        def run(*args, **kwargs):
            start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn(*args, **kwargs)
            stop.record()
            calls.append((label(*args, **kwargs), start, stop))
        return run

    gemm_label = lambda A, B_, C, M, N, K_, *a, trans_a=False, trans_b=False, batch=1, gather=None, **kw: (
        f"GEMM {M}x{N}x{K_}{' A^T' if trans_a else ''}{' B^T' if trans_b else ''} x{batch}"
        f"{' implicit im2col' if gather is not None else ''}")
    kernel_label = lambda kernel, n, *a, **kw: f"{kernel.py_func.__qualname__.split('.')[0]} ({n} elements)"
    originals = conv.gemm, conv._launch_1d
    conv.gemm, conv._launch_1d = timed(conv.gemm, gemm_label), timed(conv._launch_1d, kernel_label)
    rounds = []
    try:
        for _ in range(10):
            calls.clear()
            step()
            torch.cuda.synchronize()
            rounds.append([(label, start.elapsed_time(stop)) for label, start, stop in calls])
    finally:
        conv.gemm, conv._launch_1d = originals
    stages = {f"{k}: {label}": float(np.median([r[k][1] for r in rounds])) for k, (label, _) in enumerate(rounds[0])}
    return {"name": f"conv2d {Ci}->{Co} K{K} {H}x{H} batch {B} fp32 fwd+bwd, by launch", "stages_ms": stages,
            "sum_of_stages_ms": sum(stages.values()), "fastdl_ms": _timer(torch, step)}


def bench_sgemm_configs(torch, fk, quick):
    """SGEMM 4096^3 with each tile configuration forced, to check the one pick_config chooses."""
    import importlib
    matmul = importlib.import_module("fastdl.cuda.matmul")
    from fastdl.cuda._device import as_device, empty, flat

    n = 1024 if quick else 4096
    a, b = as_device(torch.randn(n, n, device="cuda")), as_device(torch.randn(n, n, device="cuda"))
    c = empty((n, n), a.dtype)
    out = {}
    for cfg, _, _ in matmul.CONFIGS:
        def run(cfg=cfg):
            matmul.gemm(flat(a), flat(b), flat(c), n, n, n, n, n, n, cfg=cfg)
        run()
        out[str(cfg)] = 2.0 * n ** 3 / _timer(torch, run) / 1e9
    return {"name": f"sgemm {n}^3 fp32 by tile configuration (TFLOP/s)", "tflops": out,
            "picked": str(matmul.pick_config(n, n))}


CPU_STEP_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "cnn_step_cpu_2core.json")


def bench_cnn_step(torch, fk, quick):
    """The book's ch5 CNN training step at batch 256 on cuda, against the cpu backend's step on the 2-core
    dev machine (benches/results/cnn_step_cpu_2core.json, written there by benches/cnn_step.py)."""
    from cnn_step import BATCH, cnn_step_ms

    gpu_ms, _ = cnn_step_ms("cuda", rounds=5 if quick else 20, sync=torch.cuda.synchronize)
    try:                                  # for reference only: the GPU host's own CPU
        host_cpu_ms = cnn_step_ms("cpu", rounds=3 if quick else 5)[0]
    except Exception as exc:              # e.g. fastdl run from a checkout without its compiled _core
        host_cpu_ms = repr(exc)
    with open(CPU_STEP_JSON) as f:
        dev_machine = json.load(f)
    dev_cpu_ms = next(r["median_ms"] for r in dev_machine["rows"] if r["backend"] == "cpu")
    return {"name": f"ch5 CNN training step batch {BATCH} (train_batch + optim.step, host batch)",
            "fastdl_ms": gpu_ms, "cpu_backend_ms_dev_machine": dev_cpu_ms,
            "cpu_backend_dev_machine_date": dev_machine.get("date") or dev_machine["machine"]["date"],
            "ratio": dev_cpu_ms / gpu_ms, "cpu_backend_ms_this_host": host_cpu_ms,
            "goal": ">= 10x the cpu backend on the 2-core dev machine"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="path of the JSON report")
    ap.add_argument("--quick", action="store_true", help="smaller shapes (a smoke test)")
    ap.add_argument("--allocator", choices=("torch", "numba"), default="torch",
                    help="numba device allocations through PyTorch's caching allocator (default) or numba's own")
    args = ap.parse_args()

    t0 = time.time()
    from fastdl.cli.bench import machine_info

    report = {"machine": machine_info(), "rows": [], "errors": []}
    import torch
    import fastdl.cuda as fk
    from fastdl.cuda import _compat

    if not torch.cuda.is_available():
        sys.exit(f"gpu_suite: needs a CUDA GPU that PyTorch can see (torch {torch.__version__}: "
                 "torch.cuda.is_available() is False)")
    report["allocator"] = args.allocator
    if args.allocator == "torch":
        torch.cuda.init()
        use_torch_allocator()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    fk.require()
    dev = _compat.cuda.get_current_device()
    props = torch.cuda.get_device_properties(0)
    versions = {"numpy": np.__version__, "torch": torch.__version__, "cuda_runtime(torch)": torch.version.cuda,
                "cudnn": torch.backends.cudnn.version(), "numba": _compat.numba.__version__}
    for mod in ("numba_cuda", "cupy"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            pass
    try:
        versions["driver"] = ".".join(map(str, _compat.cuda.cudadrv.driver.driver.get_version()))
    except Exception:
        pass
    report.update(device=props.name, sm_count=props.multi_processor_count,
                  compute_capability=list(dev.compute_capability), versions=versions)
    print(f"device {props.name}, {versions}", flush=True)

    for fn in (bench_sgemm, bench_softmax_cross_entropy, bench_conv, bench_lstm, bench_cnn_step, bench_conv_stages,
               bench_sgemm_configs):
        t1 = time.time()
        try:
            row = fn(torch, fk, args.quick)
            row["seconds"] = round(time.time() - t1, 1)
            report["rows"].append(row)
            print(json.dumps(row), flush=True)
        except Exception as exc:
            report["errors"].append({"workload": fn.__name__, "error": repr(exc),
                                     "traceback": traceback.format_exc()})
            print(f"{fn.__name__} FAILED: {exc!r}", flush=True)
        torch.cuda.empty_cache()
    report["total_seconds"] = round(time.time() - t0, 1)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out} in {report['total_seconds']} s")


if __name__ == "__main__":
    main()
