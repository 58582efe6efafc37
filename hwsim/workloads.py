"""Layer descriptions (GEMM and convolution layers) and the SCALE-Sim topology importer.

A layer is a frozen dataclass. Every layer runs on the MAC array as ``groups`` independent GEMMs of shape
``gemm_shape = (m, k, n)``: ``m`` rows of activations, reduction length ``k`` and ``n`` output channels
(the lowering of ``hwsim.models.mac_array.conv2d_as_gemms``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hwsim.models.errors import HwsimError

__all__ = ["ConvLayer", "GemmLayer", "Layer", "load_scalesim_config", "load_scalesim_topology", "total_macs"]

#: Largest requantization shift a layer may ask for (the accumulator has at most 48 bits).
_MAX_SHIFT = 47


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_name(name) -> None:
    if not isinstance(name, str) or not name.strip():
        raise HwsimError(f"name={name!r} is not allowed: expected a non-empty string")


def _check_int(field: str, value, lo: int, hi: int | None = None) -> None:
    if not _is_int(value) or value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise HwsimError(f"{field}={value!r} is not allowed: expected an integer {allowed}")


def _check_relu(relu) -> None:
    if not isinstance(relu, bool):
        raise HwsimError(f"relu={relu!r} is not allowed: expected True or False")


@dataclass(frozen=True)
class GemmLayer:
    """A fully-connected layer / plain GEMM: ``[m, k] @ [k, n]``.

    Parameters
    ----------
    name : str
        Non-empty label used in reports.
    m, k, n : int
        Activation rows (e.g. the batch), reduction length and output channels, each >= 1.
    shift : int
        Requantization right shift, 0..47 (must also be below the configuration's ``acc_bits``).
    relu : bool
        Apply ReLU before requantization.
    """

    name: str
    m: int
    k: int
    n: int
    shift: int = 0
    relu: bool = False

    def __post_init__(self):
        _check_name(self.name)
        for field in ("m", "k", "n"):
            _check_int(field, getattr(self, field), 1)
        _check_int("shift", self.shift, 0, _MAX_SHIFT)
        _check_relu(self.relu)

    @property
    def groups(self) -> int:
        """Number of independent GEMMs (always 1)."""
        return 1

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        """``(m, k, n)`` of the GEMM."""
        return self.m, self.k, self.n

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer, ``m * k * n``."""
        return self.m * self.k * self.n


@dataclass(frozen=True)
class ConvLayer:
    """A 2-D convolution (cross-correlation), possibly grouped or depthwise.

    Parameters
    ----------
    name : str
        Non-empty label used in reports.
    in_h, in_w, in_c : int
        Input height, width and channels (>= 1).
    out_c : int
        Output channels (>= 1).
    kh, kw : int
        Kernel height and width (>= 1).
    stride, dilation : int
        >= 1, the same along both axes.
    padding : int or tuple of 4 ints
        Zero padding >= 0, the same on every side or ``(top, bottom, left, right)``.
    groups : int
        Divides ``in_c`` and ``out_c``; depthwise is ``groups == in_c == out_c``.
    batch : int
        Images per inference (>= 1); they are stacked into the GEMM rows.
    shift : int
        Requantization right shift, 0..47 (must also be below the configuration's ``acc_bits``).
    relu : bool
        Apply ReLU before requantization.

    The layer runs as ``groups`` GEMMs of ``gemm_shape = (batch*out_h*out_w, in_c/groups*kh*kw,
    out_c/groups)``, with ``out_h = floor((in_h + pad_top + pad_bottom - dilation*(kh-1) - 1) / stride) + 1``
    (likewise ``out_w``).
    """

    name: str
    in_h: int
    in_w: int
    in_c: int
    out_c: int
    kh: int
    kw: int
    stride: int = 1
    padding: int | tuple[int, int, int, int] = 0
    dilation: int = 1
    groups: int = 1
    batch: int = 1
    shift: int = 0
    relu: bool = False

    def __post_init__(self):
        _check_name(self.name)
        for field in ("in_h", "in_w", "in_c", "out_c", "kh", "kw", "stride", "dilation", "groups", "batch"):
            _check_int(field, getattr(self, field), 1)
        p = self.padding
        if isinstance(p, list):
            p = tuple(p)
            object.__setattr__(self, "padding", p)
        if not (_is_int(p) and p >= 0) and not (
            isinstance(p, tuple) and len(p) == 4 and all(_is_int(v) and v >= 0 for v in p)
        ):
            raise HwsimError(
                f"padding={p!r} is not allowed: expected an integer >= 0 or a tuple "
                "(top, bottom, left, right) of integers >= 0"
            )
        if self.in_c % self.groups or self.out_c % self.groups:
            raise HwsimError(
                f"groups={self.groups} is not allowed: expected a divisor of in_c={self.in_c} and "
                f"out_c={self.out_c}"
            )
        _check_int("shift", self.shift, 0, _MAX_SHIFT)
        _check_relu(self.relu)
        if self.out_h < 1 or self.out_w < 1:
            raise HwsimError(
                f"output size {self.out_h}x{self.out_w} is not allowed: expected at least 1x1 (input "
                f"{self.in_h}x{self.in_w}, kernel {self.kh}x{self.kw}, stride {self.stride}, padding "
                f"{self.padding}, dilation {self.dilation})"
            )

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """Padding as ``(top, bottom, left, right)``."""
        p = self.padding
        return (p, p, p, p) if _is_int(p) else tuple(p)

    @property
    def out_h(self) -> int:
        t, b, _, _ = self.pads
        return (self.in_h + t + b - self.dilation * (self.kh - 1) - 1) // self.stride + 1

    @property
    def out_w(self) -> int:
        _, _, l, r = self.pads
        return (self.in_w + l + r - self.dilation * (self.kw - 1) - 1) // self.stride + 1

    @property
    def gemm_shape(self) -> tuple[int, int, int]:
        """``(m, k, n)`` of each of the ``groups`` GEMMs."""
        return (self.batch * self.out_h * self.out_w, self.in_c // self.groups * self.kh * self.kw,
                self.out_c // self.groups)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the layer (padded positions included): ``groups * m * k * n``."""
        m, k, n = self.gemm_shape
        return self.groups * m * k * n

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """``(batch, in_c, in_h, in_w)``."""
        return self.batch, self.in_c, self.in_h, self.in_w

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(out_c, in_c/groups, kh, kw)``."""
        return self.out_c, self.in_c // self.groups, self.kh, self.kw

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(batch, out_c, out_h, out_w)``."""
        return self.batch, self.out_c, self.out_h, self.out_w


Layer = GemmLayer | ConvLayer


def total_macs(layers: Iterable[Layer]) -> int:
    """Sum of ``layer.macs`` over the layers."""
    return sum(layer.macs for layer in layers)


_PADDING_MODES = ("same", "none")


def load_scalesim_topology(path, padding: str = "same", batch: int = 1) -> list[Layer]:
    """Read a SCALE-Sim topology CSV into convolution layers.

    Parameters
    ----------
    path : str or os.PathLike
        A CSV with a header row (``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width,
        Channels, Num Filter, Strides,``) and one row per layer. Spaces around fields, trailing commas
        and blank lines are accepted.
    padding : {"same", "none"}
        SCALE-Sim itself never pads. ``"same"`` applies the real network's padding ``(kh-1)//2`` on top and
        bottom and ``(kw-1)//2`` left and right (ResNet-18: 7x7 -> 3, 3x3 -> 1, 1x1 -> 0, so Conv1 on
        224x224 with stride 2 gives 112x112 as in the real network); a row whose filter covers the whole
        IFMAP (a fully-connected layer written as a convolution) gets no padding. ``"none"`` pads nothing,
        like SCALE-Sim.
    batch : int
        ``batch`` of every layer.

    Returns
    -------
    list of ConvLayer
        In file order. Square filters give an integer ``padding``, others a 4-tuple. A 1x1 IFMAP with a
        1x1 filter (the FC row of ResNet-18) is a 1x1 convolution, i.e. a GEMM with ``m = batch``.

    Notes
    -----
    "IFMAP Height/Width" is the convolution's *input* size (for ResNet-18, the unpadded input of each
    layer, e.g. 224 for Conv1 and 56 for Conv3_1a), not the padded size.

    Raises
    ------
    HwsimError
        The file cannot be read, the header is missing, or a row is malformed; the message starts with
        ``<path>:<line number>:`` for row errors.
    """
    if padding not in _PADDING_MODES:
        raise HwsimError(f"padding={padding!r} is not allowed: expected one of {', '.join(_PADDING_MODES)}")
    _check_int("batch", batch, 1)
    from hwsim.scalesim import read_scalesim_topology  # the one SCALE-Sim topology reader

    layers: list[Layer] = []
    for row in read_scalesim_topology(path):
        layer = row.hwsim_layer(padding)
        layers.append(dataclasses.replace(layer, batch=batch) if isinstance(layer, ConvLayer)
                      else dataclasses.replace(layer, m=layer.m * batch))
    return layers


def load_scalesim_config(path, **overrides):
    """A :class:`~hwsim.config.MacArrayConfig` from a SCALE-Sim ``.cfg`` file (e.g. ``google.cfg``).

    Takes ArrayHeight/ArrayWidth (rows/cols), Ifmap/Filter/OfmapSramSzkB (KiB, input/weight/output
    SRAM), Dataflow and Bandwidth (SCALE-Sim words per cycle; with int8 words that is bytes per cycle).
    ``overrides`` replace any field afterwards. Missing keys or unparsable values raise HwsimError.
    """
    import configparser

    from hwsim.config import MacArrayConfig

    p = Path(path)
    parser = configparser.ConfigParser(delimiters=(":", "="), inline_comment_prefixes=("#",))
    try:
        parser.read_string(p.read_text())
    except (OSError, configparser.Error) as e:
        raise HwsimError(f"scalesim config={str(p)!r} is not readable: {str(e).splitlines()[0]}") from None
    arch = parser["architecture_presets"] if parser.has_section("architecture_presets") else None
    if arch is None:
        raise HwsimError(f"scalesim config={str(p)!r} is not allowed: no [architecture_presets] section")
    try:
        fields = {
            "rows": int(arch["ArrayHeight"]),
            "cols": int(arch["ArrayWidth"]),
            "input_sram_bytes": int(arch["IfmapSramSzkB"]) * 1024,
            "weight_sram_bytes": int(arch["FilterSramSzkB"]) * 1024,
            "output_sram_bytes": int(arch["OfmapSramSzkB"]) * 1024,
            "dataflow": arch["Dataflow"].strip().lower(),
            "dram_bytes_per_cycle": float(arch["Bandwidth"]),
        }
    except (KeyError, ValueError) as e:
        raise HwsimError(f"scalesim config={str(p)!r} is not allowed: bad or missing key {e}") from None
    fields.update(overrides)
    return MacArrayConfig(**fields)
