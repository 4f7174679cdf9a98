"""fastdl's thread pool as a threadpoolctl controller (threadpoolctl stays optional).

With threadpoolctl installed, ``threadpoolctl.threadpool_info()`` lists fastdl's pool (user_api and
internal_api "fastdl") beside OpenBLAS and OpenMP, and ``threadpool_limits(1)`` limits it as it limits
them. threadpoolctl finds the pool the way it finds those: a loaded library whose file name starts
with ``_core`` and exports the C functions ``fastdl_get_num_threads`` / ``fastdl_set_num_threads``.
"""

import importlib
import importlib.util


def _controller_class(threadpoolctl, version):
    class FastdlController(threadpoolctl.LibController):
        user_api = "fastdl"
        internal_api = "fastdl"
        filename_prefixes = ("_core",)
        check_symbols = ("fastdl_get_num_threads", "fastdl_set_num_threads")

        def get_num_threads(self):
            return self.dynlib.fastdl_get_num_threads()

        def set_num_threads(self, num_threads):
            self.dynlib.fastdl_set_num_threads(int(num_threads))

        def get_version(self):
            return version

    return FastdlController


def register(version):
    """Register the controller (reporting fastdl ``version``) once, if threadpoolctl (with ``register``, 3.5 and later) is installed.
    Returns whether fastdl's pool is now visible to threadpoolctl."""
    global _registered
    if _registered:
        return True
    if importlib.util.find_spec("threadpoolctl") is None:
        return False
    import threadpoolctl

    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return False
    threadpoolctl.register(_controller_class(threadpoolctl, version))
    _registered = True
    try:  # threadpoolctl lists the libraries that are loaded: load the pool's now
        importlib.import_module("fastdl._core")
    except ImportError:
        pass
    return True


_registered = False
