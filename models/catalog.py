"""Every model a command can name: the committed zoo models of each kind, a model ``.npz`` or an ``.onnx``
file, behind one :func:`load` (the spine never needs to know which zoo a name comes from)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hwsim.models.errors import HwsimError

__all__ = ["list_models", "load", "path_of"]


def _zoos():
    from hwsim.models import deform_models, lstm_models, zoo

    return ((zoo.list_models, zoo.load, zoo.path_of), (lstm_models.list_models, lstm_models.load_graph,
                                                       lstm_models.path_of),
            (deform_models.list_models, deform_models.load, deform_models.path_of))


def list_models() -> list[str]:
    """The names of every committed model, zoo by zoo."""
    return [n for names, _, _ in _zoos() for n in names()]


def path_of(name: str) -> str:
    """The ``.npz`` file of the committed model ``name``."""
    for names, _, path in _zoos():
        if name in names():
            return path(name)
    raise HwsimError(f"model={name!r} is not allowed: expected one of {', '.join(list_models())}")


def load(model: str):
    """The float :class:`hwsim.models.graph.Model` named ``model``: a committed model's name, a model
    ``.npz`` or an ``.onnx`` file (its quantization annotations kept in ``meta["onnx_import"]`` for
    ``compress="onnx"``); one-line error otherwise."""
    for names, load_fn, _ in _zoos():
        if model in names():
            return load_fn(model)
    p = Path(model)
    if p.suffix == ".npz" and p.is_file():
        from hwsim.models.graph import load_model

        return check_finite(load_model(p), model)
    if p.suffix == ".onnx":
        from hwsim.models.onnx_import import load_onnx

        imp = load_onnx(p)
        imp.model.meta["onnx_import"] = imp
        return check_finite(imp.model, model)
    raise HwsimError(f"model={model!r} is not allowed: expected one of {', '.join(list_models())} "
                     "or a model .npz or .onnx file")


def check_finite(fmodel, source: str = "model"):
    """``fmodel`` if every layer's weight and bias is finite; else a one-line error naming the layer
    (a NaN or infinite weight would otherwise surface later as a misleading scale or shift error)."""
    for la in fmodel.layers:
        for what in ("weight", "bias"):
            arr = getattr(la, what, None)
            if arr is not None and np.issubdtype(np.asarray(arr).dtype, np.floating):
                bad = int(np.count_nonzero(~np.isfinite(arr)))
                if bad:
                    raise HwsimError(f"model file {source!r} layer {la.name!r} {what} with {bad} non-finite value(s) "
                                     "(NaN/inf) is not allowed: expected finite numbers")
    return fmodel


def check_classes(fmodel, classes: int, source: str = "model") -> None:
    """One-line error unless ``fmodel`` maps one digits image to ``classes`` scores (the labels it is
    scored against); checked on one zero image before any work."""
    from hwsim.models import zoo

    x = np.zeros((1, *zoo.load_digits_split()[2].shape[1:]), dtype=np.float32)
    try:
        out = np.asarray(fmodel.forward_float(x))
    except HwsimError:
        raise
    except Exception as e:  # noqa: BLE001 - a model whose graph cannot take a digits image
        raise HwsimError(f"model={source!r} is not allowed: it cannot run a digits image of shape {x.shape[1:]} "
                         f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if out.ndim != 2 or out.shape[1] != classes:
        raise HwsimError(f"model={source!r} with output shape {tuple(out.shape[1:])} is not allowed: expected "
                         f"{classes} class scores (the digits labels it is scored against)")
