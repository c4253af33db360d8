"""Datasets: loaders return a :class:`Dataset` of NHWC float32 images in [0, 1]."""

from xaibench.data.base import Dataset

__all__ = ["Dataset"]
