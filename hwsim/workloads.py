"""Layer descriptions (GEMM and convolution layers) and the SCALE-Sim topology importer.

A layer is a frozen dataclass. Every layer runs on the MAC array as ``groups`` independent GEMMs of shape
``gemm_shape = (m, k, n)``: ``m`` rows of activations, reduction length ``k`` and ``n`` output channels
(the lowering of ``hwsim.models.mac_array.conv2d_as_gemms``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hwsim.models.errors import HwsimError

__all__ = ["ConvLayer", "GemmLayer", "Layer", "ScaleSimLayer", "load_scalesim_config", "load_scalesim_topology",
           "read_scalesim_topology", "read_text_file", "total_macs"]

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


# ------------------------------------------------------------------------------------------ SCALE-Sim topology
_CONV_COLUMNS = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width", "Channels",
                 "Num Filter", "Strides")
_GEMM_COLUMNS = ("Layer name", "M", "N", "K")


def read_text_file(path, what: str) -> tuple[Path, str]:
    """``(path, text)`` of a UTF-8 input file (a BOM is dropped); an unreadable one is one HwsimError naming
    ``what``."""
    p = Path(path)
    try:
        return p, p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        raise HwsimError(f"{what}={str(p)!r} is not allowed: cannot read it ({reason})") from None


@dataclass(frozen=True)
class ScaleSimLayer:
    """One row of a SCALE-Sim topology, with SCALE-Sim's own lowering.

    A GEMM row ``name, M, N, K`` is stored the way SCALE-Sim stores it: IFMAP ``M x K``, a ``1 x K`` filter,
    one channel, ``N`` filters, stride 1.

    Parameters
    ----------
    name : str
        Layer name as written.
    ifmap_h, ifmap_w, filt_h, filt_w, channels, num_filt, stride : int
        The row's columns.
    line : int
        Line number in the file (for messages).
    kind : {"conv", "gemm"}
        The topology format the row came from.
    depthwise : bool
        The name contains ``DP``: SCALE-Sim runs it as ``channels`` separate one-channel layers.
    """

    name: str
    ifmap_h: int
    ifmap_w: int
    filt_h: int
    filt_w: int
    channels: int
    num_filt: int
    stride: int
    line: int = 0
    kind: str = "conv"
    depthwise: bool = False

    @property
    def ofmap_h(self) -> int:
        """SCALE-Sim's output height, ``ceil((ifmap_h - filt_h + stride) / stride)`` (rounds up; no padding)."""
        return -(-(self.ifmap_h - self.filt_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        """SCALE-Sim's output width, ``ceil((ifmap_w - filt_w + stride) / stride)``."""
        return -(-(self.ifmap_w - self.filt_w + self.stride) // self.stride)

    @property
    def mnk(self) -> tuple[int, int, int]:
        """SCALE-Sim's ``(M, N, K)`` of one (per-channel, for ``DP`` rows) layer: ofmap pixels, filters,
        window ``filt_h * filt_w * channels``."""
        c = 1 if self.depthwise else self.channels
        return self.ofmap_h * self.ofmap_w, self.num_filt, self.filt_h * self.filt_w * c

    @property
    def repeats(self) -> int:
        """How many layers SCALE-Sim runs for this row (``channels`` for ``DP`` rows, else 1)."""
        return self.channels if self.depthwise else 1

    def hwsim_layer(self, padding: str = "same"):
        """The row as an hwsim layer: a :class:`GemmLayer` for GEMM rows, else a :class:`ConvLayer`.

        ``padding="same"`` pads ``(k-1)//2`` per side as the real networks do (no padding when the filter
        covers the whole IFMAP); ``"none"`` pads nothing, like SCALE-Sim. ``DP`` rows become one grouped
        convolution (``groups = channels``, ``num_filt`` outputs per channel).
        """
        if self.kind == "gemm":
            m, n, k = self.mnk
            return GemmLayer(name=self.name, m=m, k=k, n=n)
        if padding == "none" or (self.filt_h == self.ifmap_h and self.filt_w == self.ifmap_w):
            pad = 0
        else:
            ph, pw = (self.filt_h - 1) // 2, (self.filt_w - 1) // 2
            pad = ph if ph == pw else (ph, ph, pw, pw)
        groups = self.channels if self.depthwise else 1
        return ConvLayer(name=self.name, in_h=self.ifmap_h, in_w=self.ifmap_w, in_c=self.channels,
                         out_c=self.num_filt * groups, kh=self.filt_h, kw=self.filt_w, stride=self.stride,
                         padding=pad, groups=groups)


def read_scalesim_topology(path) -> list[ScaleSimLayer]:
    """Read a SCALE-Sim topology CSV: conv rows or GEMM rows, told apart by the header.

    Conv header: ``Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter,
    Strides,`` (an optional 9th column, SCALE-Sim's ``N:M`` sparsity ratio, is accepted and ignored, as
    SCALE-Sim does with sparsity support off). GEMM header: ``Layer name, M, N, K,`` (SCALE-Sim's
    ``-i gemm`` input). Spaces around fields, trailing commas and blank lines are accepted.

    Raises
    ------
    HwsimError
        ``<path>:<line>: ...`` naming the column and value of a malformed row.
    """
    p, text = read_text_file(path, "--topology")
    rows: list[ScaleSimLayer] = []
    columns = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        while fields and fields[-1] == "":
            fields.pop()
        where = f"{p}:{lineno}"
        if columns is None:
            head = [f.lower() for f in fields]
            if head[:1] == ["layer name"] and head[1:] in (["m", "n", "k"], ["m", "n", "k", "sparsity"]):
                columns = _GEMM_COLUMNS
            elif head[:1] == ["layer name"] and len(fields) >= len(_CONV_COLUMNS):
                columns = _CONV_COLUMNS
            else:
                raise HwsimError(f"{where}: header {line.strip()!r} is not allowed: expected a SCALE-Sim conv "
                                 f"header ({', '.join(_CONV_COLUMNS)}) or GEMM header ({', '.join(_GEMM_COLUMNS)})")
            continue
        n = len(columns)
        if len(fields) == n + 1 and re.fullmatch(r"\d+\s*:\s*\d+", fields[-1]):
            fields.pop()  # sparsity ratio N:M
        if len(fields) != n:
            raise HwsimError(f"{where}: {len(fields)} fields are not allowed: expected {n} ({', '.join(columns)})")
        if not fields[0]:
            raise HwsimError(f"{where}: an empty layer name is not allowed: expected a name in the first column")
        values = []
        for column, raw in zip(columns[1:], fields[1:], strict=True):
            if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
                raise HwsimError(f"{where}: {column}={raw!r} is not allowed: expected an integer >= 1")
            values.append(int(raw))
        if columns is _GEMM_COLUMNS:
            m, nn, k = values
            row = ScaleSimLayer(fields[0], m, k, 1, k, 1, nn, 1, line=lineno, kind="gemm")
        else:
            ih, iw, fh, fw, c, nf, s = values
            if fh > ih or fw > iw:
                raise HwsimError(f"{where}: filter {fh}x{fw} is not allowed: expected at most the IFMAP "
                                 f"{ih}x{iw} (SCALE-Sim does not pad)")
            row = ScaleSimLayer(fields[0], ih, iw, fh, fw, c, nf, s, line=lineno, depthwise="DP" in fields[0])
        rows.append(row)
    if columns is None:
        raise HwsimError(f"{p}: an empty file is not allowed: expected a SCALE-Sim topology header and rows")
    if not rows:
        raise HwsimError(f"{p}: a topology without layers is not allowed: expected at least one row")
    return rows


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
