"""The cost of one kernel launch through numba-cuda's public launch (fastdl.cuda._device.launch), by the
number of arguments: a one-thread kernel with 1 array and k - 1 scalars, the GEMM's 23 arguments included.

    python benches/launch_cost.py [--json PATH]                       # on a GPU
    NUMBA_ENABLE_CUDASIM=1 python benches/launch_cost.py              # under the simulator

Each launch is queued without a synchronisation; the mean over a block of launches is the host's cost per
launch (on a GPU a one-thread kernel finishes faster than the host queues the next). Under the simulator the
numbers are the simulator's own cost, for comparison between fastdl versions only.
"""

import argparse
import json
import platform
import time

import numpy as np

from fastdl.cuda._compat import cuda, require, simulator
from fastdl.cuda._device import launch

ARG_COUNTS = (2, 6, 12, 23)


def kernel_with(nargs):
    """A @cuda.jit kernel of one array and nargs - 1 int64 scalars that writes their sum."""
    names = [f"s{i}" for i in range(nargs - 1)]
    source = (f"def kernel(out, {', '.join(names)}):\n"
              f"    if cuda.grid(1) == 0:\n"
              f"        out[0] = {' + '.join(names) or '0'}\n")
    scope = {"cuda": cuda}
    exec(source, scope)
    return cuda.jit(scope["kernel"])


def per_launch_us(nargs, launches):
    kern = kernel_with(nargs)
    out = cuda.device_array(1, np.int64)
    args = [np.int64(i) for i in range(nargs - 1)]
    launch(kern, 1, 1, out, *args)  # compile
    cuda.synchronize()
    assert out.copy_to_host()[0] == sum(range(nargs - 1))
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(launches):
            launch(kern, 1, 1, out, *args)
        cuda.synchronize()
        best = min(best, (time.perf_counter() - start) / launches)
    return best * 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="write the rows here")
    args = parser.parse_args(argv)
    require()
    launches = 20 if simulator() else 2000
    rows = [{"arguments": n, "us_per_launch": per_launch_us(n, launches)} for n in ARG_COUNTS]
    where = "simulator" if simulator() else cuda.get_current_device().name.decode()
    for row in rows:
        print(f"{row['arguments']:3d} arguments: {row['us_per_launch']:9.1f} us per launch ({where})")
    if args.json:
        from importlib.metadata import version

        result = {"where": where, "numba-cuda": version("numba-cuda"), "python": platform.python_version(),
                  "numpy": np.__version__,
                  "date": time.strftime("%Y-%m-%d"), "rows": rows}
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
