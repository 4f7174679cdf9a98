"""fastdl: compiled deep-learning kernels behind the from-scratch API of *Deep Learning from Scratch*.

Swap ``lincoln`` for ``fastdl`` in a training loop; pick the kernel backend with
``fastdl.set_backend('numpy' | 'cpu' | 'cuda' | 'auto')`` or ``FASTDL_BACKEND``.
"""

__version__ = "0.1.0"

from fastdl import kernels
from fastdl.cli.show_config import show_config
from fastdl.backend import get_backend, set_backend, use_backend
from fastdl.config import get_num_threads, set_num_threads, threads
from fastdl.cpu import threadpoolctl_controller as _threadpool

__all__ = ["kernels", "show_config", "get_backend", "set_backend", "use_backend", "get_num_threads",
           "set_num_threads", "threads", "__version__"]

_threadpool.register(__version__)  # fastdl's pool in threadpoolctl's view, when threadpoolctl is installed

# Short aliases, on top of the book's module paths (never instead of them).
from fastdl.layers import Conv2D, Dense  # noqa: E402
from fastdl.rnn import LSTM  # noqa: E402

__all__ += ["Dense", "Conv2D", "LSTM"]
