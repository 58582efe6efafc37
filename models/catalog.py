"""Every model a command can name: the committed zoo models of each kind, a model ``.npz`` or an ``.onnx``
file, behind one :func:`load` (the spine never needs to know which zoo a name comes from)."""

from __future__ import annotations

from pathlib import Path

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

        return load_model(p)
    if p.suffix == ".onnx":
        from hwsim.models.onnx_import import load_onnx

        imp = load_onnx(p)
        imp.model.meta["onnx_import"] = imp
        return imp.model
    raise HwsimError(f"model={model!r} is not allowed: expected one of {', '.join(list_models())} "
                     "or a model .npz or .onnx file")
