"""The optional tqdm progress bar shared by the trainers."""


def progress_bar(total, enabled, desc, unit):
    """A tqdm bar of ``total`` steps, or None when progress is off or tqdm is not installed."""
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc, unit=unit)
