"""Inputs for the activation and gradient panels: a `Dataset`, and where it comes from.

A `Dataset` is read from a file the user gives (`--data`: `.npz`, `.npy`, `.csv` or a folder
of images), taken from the `data.npz` bundled beside a sample model, or built at random from
the model's input spec (always labelled "synthetic"). `conform_to_model` then checks it
against the model's inputs.

Modules: `dataset` (the type), `files` (readers of the files users bring), `synthetic`
(inputs from the model's spec), `conform` (which data, fitted to the model). Readers import
the dataset type, never the reverse.

Example:

>>> import numpy as np
>>> from insight.data import Dataset
>>> Dataset(x=np.zeros((3, 4), "float32"), y=np.array([0, 1, 1]), name="toy").describe()
'toy: 3 examples, x (4,) float32, labels 2 classes'
"""

from insight.data.conform import conform_to_model, dataset_for
from insight.data.dataset import DATA_FORMATS, IMAGE_SUFFIXES, LABEL_COLUMNS, Dataset
from insight.data.files import load_dataset
from insight.data.synthetic import synthetic_dataset

__all__ = ["Dataset", "load_dataset", "synthetic_dataset", "dataset_for", "conform_to_model",
           "DATA_FORMATS", "LABEL_COLUMNS", "IMAGE_SUFFIXES"]
