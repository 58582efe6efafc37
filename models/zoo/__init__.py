"""Pretrained models for the examples and tests, stored as ``.npz`` package data.

``digits-mlp`` and ``digits-cnn`` are trained on scikit-learn's 8x8 digits by
``python -m hwsim.models.zoo.train_digits`` (pure NumPy, fixed seed). The fixed train / test split is
committed as ``digits.npz`` so the runtime does not need scikit-learn.

Fine-tuned variants of ``digits-cnn`` for the ``+ft`` compression specs (``digits-cnn@binary+ft.npz``, ...)
are written by ``python -m hwsim.models.zoo.finetune_digits`` (see :func:`finetuned_path`).

==============  ==========================================================  ======  ==============
model           layers                                                      MACs    test accuracy
==============  ==========================================================  ======  ==============
digits-mlp      flatten, fc 64->64, relu, fc 64->32, relu, fc 32->10        6464    97.33 % (438/450)
digits-cnn      conv3x3 1->8 p1, relu, maxpool2, conv3x3 8->16 p1, relu,    25600   97.78 % (440/450)
                flatten, fc 256->10
==============  ==========================================================  ======  ==============
"""

from __future__ import annotations

import os

import numpy as np
from hwsim.models.errors import HwsimError
from hwsim.models.graph import Model, load_model

__all__ = ["DOCUMENTED_ACCURACY", "DATA_FILE", "finetuned_path", "list_models", "load", "load_digits_split",
           "path_of"]

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_FILE = os.path.join(HERE, "digits.npz")
_MODELS = ("digits-mlp", "digits-cnn")
#: Float test-set accuracy of the committed models on the split of ``load_digits_split`` (450 images).
DOCUMENTED_ACCURACY = {"digits-mlp": 438 / 450, "digits-cnn": 440 / 450}


def list_models() -> list[str]:
    """Names of the models in the zoo."""
    return list(_MODELS)


def path_of(name: str) -> str:
    """Path of the ``.npz`` file of model ``name``."""
    if name not in _MODELS:
        raise HwsimError(f"model name {name!r} is not allowed: expected one of {', '.join(_MODELS)}")
    return os.path.join(HERE, f"{name}.npz")


def finetuned_path(name: str, spec: str) -> str | None:
    """Path of the committed fine-tuned variant of model ``name`` for ``spec`` (e.g. ``binary+ft``), or None.

    Variants are ``<name>@<spec>.npz`` with ``:`` written ``of`` (``digits-cnn@2of4+int8+ft.npz``), written by
    ``python -m hwsim.models.zoo.finetune_digits``.
    """
    path = os.path.join(HERE, f"{name}@{spec.replace(':', 'of')}.npz")
    return path if os.path.isfile(path) else None


def load(name: str) -> Model:
    """Load the zoo model ``name`` (``digits-mlp`` or ``digits-cnn``)."""
    return load_model(path_of(name))


def load_digits_split():
    """The committed digits split: ``(x_train, y_train, x_test, y_test)``.

    Images are float64 in [0, 1] (pixel / 16) shaped (N, 1, 8, 8); labels int64. 1347 training and 450
    test images (``train_test_split(test_size=0.25, random_state=0, stratify=y)``).
    """
    with np.load(DATA_FILE, allow_pickle=False) as d:
        def img(a):
            return (a.astype(np.float64) / 16.0)[:, None, :, :]

        y_tr, y_te = d["y_train"].astype(np.int64), d["y_test"].astype(np.int64)
        return img(d["x_train"]), y_tr, img(d["x_test"]), y_te
