"""The command line's expected failures: ``fastdl: error: ...`` on stderr and exit status 2, no traceback."""


class CommandError(Exception):
    """Bad input to a command (a missing data folder, an optional package not installed, no GPU for
    ``--backend cuda``): reported as one line, exit status 2."""


def use_backend(name):
    """``fastdl.set_backend(name)``, its refusal (no GPU, no compiled extension) as a CommandError."""
    import fastdl

    try:
        fastdl.set_backend(name)
    except (RuntimeError, ImportError, ValueError) as exc:
        raise CommandError(f"--backend {name}: {exc}") from None


def require_matplotlib(flag="--plot"):
    """A CommandError before any work when ``flag`` asks for a chart and matplotlib is not installed."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise CommandError(f"{flag} needs matplotlib: pip install 'fastdl-kernels[examples]' "
                           "(or pip install matplotlib)")
