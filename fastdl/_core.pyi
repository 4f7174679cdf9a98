"""Type stub for the C++ extension fastdl._core (src/cpp/bind/).

Every array argument must be C-contiguous and of one float dtype (float32 or float64); nothing is
converted or copied silently (a wrong dtype or layout raises TypeError). Shape errors raise ValueError.
"""

from typing import List, Literal, Optional, Tuple, TypeVar, overload

import numpy as np
import numpy.typing as npt

_F = TypeVar("_F", np.float32, np.float64)
_Activation = Literal["linear", "sigmoid", "tanh", "relu"]

def matmul(a: npt.NDArray[_F], b: npt.NDArray[_F], trans_a: bool = False,
           trans_b: bool = False) -> npt.NDArray[_F]:
    """op(a) @ op(b): a is (M, K) or (K, M) when trans_a; b is (K, N) or (N, K) when trans_b -> (M, N)."""

def linear(x: npt.NDArray[_F], w: npt.NDArray[_F], b: Optional[npt.NDArray[_F]],
           activation: _Activation = "linear") -> npt.NDArray[_F]:
    """act(x @ w + b), bias and activation fused into the GEMM epilogue: x (N, in), w (in, out), b (out,)."""

def linear_backward(x: npt.NDArray[_F], w: npt.NDArray[_F], y: npt.NDArray[_F], grad_y: npt.NDArray[_F],
                    activation: _Activation = "linear", need_grad_x: bool = True
                    ) -> Tuple[Optional[npt.NDArray[_F]], npt.NDArray[_F], npt.NDArray[_F]]:
    """(grad_x (N, in), grad_w (in, out), grad_b (out,)) with dz = act'(y) * grad_y; grad_x is None when
    need_grad_x is false."""

def set_num_threads(n: int) -> None:
    """Use n threads (1 <= n <= 256) in fastdl's C++ kernels."""

def get_num_threads() -> int:
    """Threads fastdl's C++ kernels use."""

def _set_worker_delay_us(us: int) -> None:
    """Test hook: pool worker 1 sleeps this long each time it wakes for a call, before claiming work."""

def _set_spin_us(us: int) -> None:
    """Tuning hook: the longest an idle pool worker spins for the next call, in microseconds."""

def _get_spin_us() -> int:
    """The longest an idle pool worker spins before it sleeps, in microseconds."""

def gemm_kernels() -> list[str]:
    """GEMM kernels this CPU can run: 'naive', 'generic' (reference microkernel), then 'avx2', 'avx512'."""

def selected_gemm_kernel() -> str:
    """The GEMM kernel in use now: the forced one, else 'avx512', 'avx2' or 'naive'."""

def force_gemm_kernel(name: str) -> None:
    """Force a GEMM kernel by name; 'auto' restores the automatic choice."""

def cpu_features() -> dict[str, bool]:
    """CPU features that pick the GEMM kernel, e.g. {'avx2': True, 'fma': True, 'avx512f': True}."""

def dropout_forward(x: npt.NDArray[_F], key: int, threshold: int) -> Tuple[npt.NDArray[_F], npt.NDArray[np.bool_]]:
    """(y, mask): element i kept when the counter hash of (i, key) >> 8 < threshold; y = x where kept, else 0."""

def dropout_backward(grad_y: npt.NDArray[_F], mask: npt.NDArray[np.bool_]) -> npt.NDArray[_F]:
    """grad_y where mask, else 0."""

def parameter_update_float32(rule: str, params: List[npt.NDArray[np.float32]], grads: List[npt.NDArray[np.float32]],
                             states: List[npt.NDArray[np.float32]], lr: float, hyper: float, clip: float) -> None:
    """One optimizer step over every parameter, in place ('sgd', 'sgd_momentum', 'adagrad', 'regularized_sgd')."""

def parameter_update_float64(rule: str, params: List[npt.NDArray[np.float64]], grads: List[npt.NDArray[np.float64]],
                             states: List[npt.NDArray[np.float64]], lr: float, hyper: float, clip: float) -> None:
    """One optimizer step over every parameter, in place ('sgd', 'sgd_momentum', 'adagrad', 'regularized_sgd')."""
