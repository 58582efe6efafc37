"""Committed models with deformable layers (``deform_conv2d``), run by ``hwsim simulate`` on an accelerator
with a MAC array and a deformable-convolution unit.

==============  =================================================================  ======  =============
model           layers                                                             MACs    test accuracy
==============  =================================================================  ======  =============
digits-dcn      conv3x3 1->8 p1, relu, maxpool2, offsets conv3x3 8->18 p1,         46336   98.00 % (441/450)
                deformable conv3x3 8->16 p1, relu, flatten, fc 256->10
==============  =================================================================  ======  =============

``digits-dcn`` is ``digits-cnn`` with its second conv deformable (DCN v1); written by
``python -m hwsim.models.zoo.train_dcn_digits`` (pure NumPy, fixed seed, about 15 s).
"""

from __future__ import annotations

import os

from hwsim.models.errors import HwsimError
from hwsim.models.graph import Model, load_model

__all__ = ["DCN_MODELS", "DOCUMENTED_ACCURACY", "list_models", "load", "path_of"]

ZOO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "zoo")
DCN_MODELS = ("digits-dcn",)
#: Float test-set accuracy of the committed models (450 images of ``zoo.load_digits_split``).
DOCUMENTED_ACCURACY = {"digits-dcn": 441 / 450}


def list_models() -> list[str]:
    return list(DCN_MODELS)


def path_of(name: str) -> str:
    if name not in DCN_MODELS:
        raise HwsimError(f"model name {name!r} is not allowed: expected one of {', '.join(DCN_MODELS)}")
    return os.path.join(ZOO, f"{name}.npz")


def load(name: str) -> Model:
    """The committed model ``name`` (``digits-dcn``)."""
    return load_model(path_of(name))
