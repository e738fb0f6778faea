"""Data sets for training-based estimation: digits (embedded), .npz files, image folders, torchvision."""

from nasforge.data.datasets import Dataset, load_dataset

__all__ = ["Dataset", "load_dataset"]
