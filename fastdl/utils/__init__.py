"""Helpers mirroring ``lincoln.utils`` (``from fastdl.utils import np_utils`` or
``from fastdl.utils.np_utils import permute_data``)."""

from fastdl.utils import np_utils

__all__ = ["np_utils"]
