"""Deformable-convolution unit (family ``deform-unit``): config, cycle model, inventory and registry record.

The unit runs one deformable 3x3 (``kernel``) layer, full (``groups == 1``) or depthwise (``groups == C``),
after its offsets have been produced by the offset-generating conv on a MAC array
(:func:`hwsim.mac_array.predict_gemm`, run first, not overlapped). Blocks:

* **line buffer**: ``R`` input rows of the whole width and all channels, one word = ``lanes`` channels of
  one pixel, ``banks`` banks, bank of pixel ``(y, x)`` = ``(x + 2 y) mod banks`` (so 4 banks make the
  four bilinear neighbours conflict-free). For output row ``y`` it holds rows
  ``[top, top + R)``, ``top = y * stride - padding + c * dilation - (R - 1) // 2`` (centred on the kernel
  centre row, ``c = (kernel - 1) // 2``). ``R`` follows from the offset bound
  (:meth:`DeformUnitConfig.rows_for`); unbounded offsets use ``kernel + 1`` rows (or ``line_buffer_rows``)
  and a neighbour in the image but outside the window is a **miss**: a random fetch of one word from
  DRAM that takes ``miss_cycles`` and reads ``lanes * act_bits / 8`` bytes.
* **bilinear sampler**: per item (output pixel, tap, channel block of ``lanes``; items in that order) it
  reads the in-image neighbours (all four, also those of zero weight; neighbours outside the image are
  zero and not read) and interpolates ``lanes`` channels. Cycles per item
  ``a = max(1, largest number of hit neighbours in one bank) + misses * miss_cycles``.
* **MAC stage**: depthwise: ``lanes`` MACs, one item per cycle (``b = 1``); full: ``lanes x out_lanes``
  MACs, ``b = ceil(C_out / out_lanes)`` cycles per item.
* **requantizer**: ``max(lanes, out_lanes)`` lanes (power-of-two shift, :mod:`hwsim.models.deform_unit`).

Idle lanes (``gating``, docs/idle_lanes.md): the MAC stage passes ``lanes`` (depthwise) or
``lanes x out_lanes x b`` (full) MAC slots per item; the real MACs are the layer's (``C x C_out`` per output
pixel and tap, full; ``C``, depthwise), the rest are **idle slots** (``("mac", "idle")``): the lanes of the
last channel block beyond ``C`` (``C`` not a multiple of ``lanes``) and, full, the output lanes of the last
group beyond ``C_out``. A depthwise layer's MAC stage is ``lanes`` MACs (the RTL builds no others), so the
``lanes x (out_lanes - 1)`` MACs a full layer would also use are not slots of a depthwise layer. Without
gating an idle slot is priced as a MAC and the requantizer converts every lane the MAC stage delivers
(``lanes`` per block, depthwise; ``out_lanes`` per group, full); with ``operand`` / ``clock`` an idle slot is
one closed clock gate and the requantizer converts the real outputs only. The inventory prices no
MAC-stage registers apart (the ``mac`` entry), so ``operand`` and ``clock`` price alike; ``clock`` also holds
the idle lanes' accumulator registers in the RTL. The sampler likewise interpolates ``lanes`` channels per
item: ``C`` real lane interpolations per output pixel and tap (``("sampler", "interp")``) and the last block's
lanes beyond ``C`` idle (``("sampler", "idle")``, priced as an interpolation without gating, one closed clock
gate with it); ``("sampler", "sample")`` is the item's shared part (address and bilinear weights).

Timing (exact for this model): sampler and MAC advance in lock-step, the MAC working on item ``t - 1``
while the sampler fetches item ``t``; a step lasts ``max(a_t, b)``. Each output row is one pipeline run::

    comp[y] = a_0 + sum_{t >= 1} max(a_t, b) + b

The line buffer is filled from DRAM at ``dram_bytes_per_cycle`` (``ceil(bytes / bw)`` cycles for the
rows a window adds); the first window is loaded before any item (``fill[0]``), the rows output row ``y + 1``
adds are loaded while row ``y`` computes::

    cycles = fill[0] + sum_y max(comp[y], fill[y + 1]) + drain,   drain = 1 + ceil(outputs of a pixel / requant lanes)

(``fill[H_out] = 0``). Stall cycles: ``fill[0]`` + the row-fill waits + every miss's ``miss_cycles``;
``conflict_cycles`` (bank conflicts) are reported apart. Miss fetches and row fills are assumed not to
contend for DRAM (stated model simplification).

In ``hwsim simulate`` the unit runs the ``deform_conv2d`` layers of a compressed model
(:func:`run_layer`, checked by :func:`check_op`), next to a ``mac-array`` unit of the same accelerator that
runs the offset conv and every other conv / linear layer; such a unit is configured with
``offset_array: false`` (no MAC array of its own in its inventory).
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from hwsim.config import GATING_MODES, FamilyConfig, MacArrayConfig, check_choice, check_int, check_number
from hwsim.errors import HwsimError
from hwsim.families import Family, model_cosim_options
from hwsim.models import deform_unit as ref
from hwsim.models.tables import offset_bound_code
from hwsim.stats import ActionCounts
from hwsim.unit import Stats, mean_stats

__all__ = [
    "FAMILY",
    "DeformLayer",
    "DeformUnitConfig",
    "check_layer",
    "check_op",
    "check_rtl",
    "check_rtl_layer",
    "execute_layer",
    "inventory",
    "offset_conv_stats",
    "parse_preset",
    "predict",
    "predict_layer",
    "run_layer",
    "synthetic_offsets",
]

WEIGHT_FORMATS = ("int8", "int4")
OFFSET_MODES = ("free", "square")
OFFSET_WORD_BITS = 16  # offsets (and masks) are stored as 16-bit words in the offset buffer


@dataclass(frozen=True)
class DeformUnitConfig(FamilyConfig):
    """A deformable-convolution unit with its offset-generating MAC array (family ``deform-unit``).

    Parameters
    ----------
    kernel : int
        Kernel size k of the k x k deformable conv (odd); the offset tensor has 2 k k channels (free) or
        1 (square).
    offset_mode : {"free", "square"}
        ``free``: two learned offsets per tap (DCN); ``square``: one learned dilation per output pixel
        (CoDeNet's square shape).
    offset_bound : float or None
        Offsets are clamped to [-bound, bound] pixels (free) or dilations to [0, bound] (square); 8 is
        CoDeNet's bound; None (``offset_bound: null`` in a config file, or the ``-unbounded`` preset) means
        unbounded (free only), which falls back to random DRAM fetches outside the line buffer.
    square_fractional : bool
        Square mode: keep the dilation's fraction bits (otherwise it is rounded to an integer).
    frac_bits : int
        Fraction bits F of the Q-format offsets; bilinear weights are integers summing to 2**(2F).
    act_bits : int
        Signed activation width (input, output).
    weight_format : {"int8", "int4"}
        Weight format of the MAC stage and of the offset-generating MAC array.
    acc_bits : int
        Signed accumulator width; must hold one product (act_bits + weight bits + 2F (+ mask_bits) - 1).
    overflow : {"saturate", "wrap"}
        What the accumulator does after every addition that leaves its range.
    rounding : {"half_up", "half_even"}
        Rounding of the power-of-two requantization shift.
    modulation : bool
        DCN v2: multiply each sample by a mask value in [0, 1] (mask_bits fraction bits).
    mask_bits : int
        Fraction bits of the DCN v2 mask.
    lanes : int
        Channel lanes of the sampler (one line-buffer word holds this many channels of one pixel).
    out_lanes : int
        Output channels the MAC stage computes per cycle in full (non-depthwise) mode.
    banks : int
        Line-buffer banks (bank of pixel (y, x) is (x + 2y) mod banks).
    line_buffer_rows : int or None
        Rows of the line buffer; None derives them from the kernel and the offset bound.
    max_width : int
        Widest input row the line buffer holds, in pixels.
    max_channels : int
        Most input channels the line buffer holds.
    miss_cycles : int
        Cycles one random fetch of a word outside the line buffer takes (DRAM latency; an assumption).
    offset_array : bool
        The unit has its own MAC array for the offset-generating convs (``offset_rows x offset_cols``, in
        its inventory and its layer statistics); false when another unit of the accelerator (a
        ``mac-array`` listed beside it) runs them, as in ``hwsim simulate`` of a model with deformable layers.
    offset_rows, offset_cols : int
        The MAC array that runs the offset-generating (and pointwise) convs.
    dram_bytes_per_cycle : float
        DRAM bandwidth filling the line buffer, in bytes per cycle.
    clock_mhz : float
        Clock frequency in MHz.
    gating : {"clock", "operand", "none"}
        What a MAC lane (and requantizer lane) with no real work does: the lanes of the last channel block
        beyond the layer's channels, and (full) the output lanes of the last group beyond its output
        channels. The sampler's lanes beyond the layer's channels likewise. ``none``: nothing is gated; an
        idle slot is priced as a MAC, an idle sampler lane as an interpolation, and every lane is requantized.
        ``operand``: operand isolation; an idle lane's multiplier and interpolator inputs are held (priced as
        one closed clock gate, ``icg.ge``) and its requantizer lane holds its input. ``clock`` (default): ``operand``
        plus a clock gate on the idle lane's accumulator and interpolator registers. Values and cycles are the
        same under every choice (see docs/idle_lanes.md).
    """

    kernel: int = 3
    offset_mode: str = "free"
    offset_bound: float | None = 8.0
    square_fractional: bool = False
    frac_bits: int = 4
    act_bits: int = 8
    weight_format: str = "int8"
    acc_bits: int = 32
    overflow: str = "saturate"
    rounding: str = "half_up"
    modulation: bool = False
    mask_bits: int = 8
    lanes: int = 16
    out_lanes: int = 16
    banks: int = 4
    line_buffer_rows: int | None = None
    max_width: int = 128
    max_channels: int = 128
    miss_cycles: int = 20
    offset_array: bool = True
    offset_rows: int = 16
    offset_cols: int = 16
    dram_bytes_per_cycle: float = 16.0
    clock_mhz: float = 200.0
    gating: str = "clock"

    FAMILY: ClassVar[str] = "deform-unit"

    def __post_init__(self):
        check_int("kernel", self.kernel, 1, 15)
        if self.kernel % 2 == 0:
            raise HwsimError(f"kernel={self.kernel!r} is not allowed: expected an odd integer in [1, 15]")
        check_choice("offset_mode", self.offset_mode, OFFSET_MODES)
        if self.offset_bound is not None:
            check_number("offset_bound", self.offset_bound, 0.0, False, 64.0)
        elif self.offset_mode == "square":
            raise HwsimError("offset_bound=None is not allowed with offset_mode='square': expected the largest "
                             "dilation, a number in [0, 64]")
        if not isinstance(self.square_fractional, bool):
            raise HwsimError(f"square_fractional={self.square_fractional!r} is not allowed: expected true or false")
        if not isinstance(self.modulation, bool):
            raise HwsimError(f"modulation={self.modulation!r} is not allowed: expected true or false")
        if not isinstance(self.offset_array, bool):
            raise HwsimError(f"offset_array={self.offset_array!r} is not allowed: expected true or false")
        check_int("frac_bits", self.frac_bits, 0, 12)
        check_int("act_bits", self.act_bits, 2, 16)
        check_choice("weight_format", self.weight_format, WEIGHT_FORMATS)
        check_int("acc_bits", self.acc_bits, 8, 48)
        check_choice("overflow", self.overflow, ref.OVERFLOW_MODES)
        check_choice("rounding", self.rounding, ref.ROUNDING_MODES)
        check_int("mask_bits", self.mask_bits, 1, 12)
        need = ref.acc_bits_needed(self.act_bits, self.weight_bits, self.frac_bits,
                                   self.mask_bits if self.modulation else None)
        if need > self.acc_bits:
            raise HwsimError(f"frac_bits={self.frac_bits!r} is not allowed with acc_bits={self.acc_bits}: one "
                             f"product needs {need} bits (act_bits + weight bits + 2 * frac_bits"
                             f"{' + mask_bits' if self.modulation else ''})")
        check_int("lanes", self.lanes, 1, 256)
        check_int("out_lanes", self.out_lanes, 1, 256)
        check_int("banks", self.banks, 1, 64)
        if self.line_buffer_rows is not None:
            check_int("line_buffer_rows", self.line_buffer_rows, 2, 1024)
        check_int("max_width", self.max_width, 1, 1 << 14)
        check_int("max_channels", self.max_channels, 1, 1 << 14)
        check_int("miss_cycles", self.miss_cycles, 1, 1 << 16)
        check_int("offset_rows", self.offset_rows, 1, 1024)
        check_int("offset_cols", self.offset_cols, 1, 1024)
        check_number("dram_bytes_per_cycle", self.dram_bytes_per_cycle, 0.0, True, 1e6)
        check_number("clock_mhz", self.clock_mhz, 0.0, True, 100_000.0)
        check_choice("gating", self.gating, GATING_MODES)

    # ------------------------------------------------------------------ derived
    @property
    def weight_bits(self) -> int:
        return 8 if self.weight_format == "int8" else 4

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def top_name(self) -> str:
        b = "u" if self.offset_bound is None else f"{self.offset_bound:g}".replace(".", "p")
        gate = {"clock": "", "operand": "_og", "none": "_ng"}[self.gating]
        return f"deform_unit_{self.offset_mode}_b{b}_k{self.kernel}_l{self.lanes}_f{self.frac_bits}{gate}"

    @property
    def sample_bits(self) -> int:
        """Signed width of one interpolated sample (exact, scale 2**(2F)), times the mask with modulation."""
        return self.act_bits + 2 * self.frac_bits + (self.mask_bits + 1 if self.modulation else 0)

    @property
    def lb_word_bits(self) -> int:
        return self.lanes * self.act_bits

    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs of the MAC stage (``lanes x out_lanes``; a depthwise layer uses ``lanes`` of them)."""
        return self.lanes * self.out_lanes

    def rows_for(self, dilation: int = 1) -> int:
        """Line-buffer rows a layer of ``dilation`` needs (``line_buffer_rows`` if set).

        free, bound B: ``2 c dilation + 2 ceil(B) + 2``; square, bound D: ``2 ceil(c D) + 2``; unbounded:
        ``kernel + 1`` (the nominal window; ``2 c dilation + 2``).
        """
        if self.line_buffer_rows is not None:
            return self.line_buffer_rows
        c = (self.kernel - 1) // 2
        if self.offset_bound is None:
            return 2 * c * dilation + 2
        if self.offset_mode == "square":
            return 2 * math.ceil(c * self.offset_bound) + 2
        return 2 * c * dilation + 2 * math.ceil(self.offset_bound) + 2

    @property
    def line_buffer_bytes(self) -> int:
        return self.rows_for(1) * self.max_width * math.ceil(self.max_channels / self.lanes) * self.lanes \
            * self.act_bits // 8

    def variant(self, depthwise: bool) -> ref.Variant:
        """The reference variant this unit computes for a full or depthwise layer."""
        name = ("square" if self.offset_mode == "square" else "bounded" if self.offset_bound is not None
                else "free") + ("_depthwise" if depthwise else "")
        return ref.Variant(name, depthwise, self.offset_mode, self.offset_bound, self.square_fractional)

    def mac_array(self) -> MacArrayConfig:
        """The MAC array running the offset-generating and pointwise convs."""
        return MacArrayConfig(rows=self.offset_rows, cols=self.offset_cols, weight_format=self.weight_format,
                              act_bits=self.act_bits, acc_bits=32, clock_mhz=self.clock_mhz,
                              dram_bytes_per_cycle=self.dram_bytes_per_cycle)

    def describe(self) -> str:
        b = "unbounded" if self.offset_bound is None else f"bound {self.offset_bound:g}"
        return (f"deformable unit {self.kernel}x{self.kernel} ({self.offset_mode} offsets, {b}, Q.{self.frac_bits}"
                f"{', v2 mask' if self.modulation else ''}), {self.lanes} lanes x {self.out_lanes} out lanes, "
                f"{self.banks} banks, {self.rows_for(1)}-row line buffer, {self.weight_format} weights, "
                f"{ {'clock': 'clock-gated', 'operand': 'operand-isolated', 'none': 'ungated'}[self.gating]} idle "
                "lanes, "
                + (f"offsets on a {self.offset_rows}x{self.offset_cols} MAC array" if self.offset_array
                   else "offsets from another unit") + f", {self.clock_mhz:g} MHz")


_PRESET_RE = re.compile(r"^deform-unit(?:-(\d+)x(\d+))?(?:-(free|square))?(?:-b(\d+)|-(unbounded))?$")


def parse_preset(name: str) -> DeformUnitConfig | None:
    """``deform-unit[-PxQ][-free|square][-bB|-unbounded]`` (lanes P, out lanes Q, bound B, default 8) as a
    config; None otherwise."""
    m = _PRESET_RE.match(str(name))
    if not m:
        return None
    mode = m[3] or "free"
    bound = None if m[5] else float(m[4]) if m[4] else 8.0
    return DeformUnitConfig(lanes=int(m[1] or 16), out_lanes=int(m[2] or 16), offset_mode=mode, offset_bound=bound)


# ---------------------------------------------------------------------------------------------- workload
@dataclass(frozen=True)
class DeformLayer:
    """One deformable layer: input ``(c, h, w)``, ``c_out`` outputs (depthwise: ``c_out == c``).

    Counts-only prediction draws the learned offsets (or square dilations) as
    :func:`synthetic_offsets` does: normal with standard deviation ``offset_std`` pixels, seeded by
    ``seed``.
    """

    name: str
    c: int
    h: int
    w: int
    c_out: int
    depthwise: bool = False
    stride: int = 1
    padding: int = 1
    dilation: int = 1
    offset_std: float = 2.0
    seed: int = 0

    @property
    def groups(self) -> int:
        return self.c if self.depthwise else 1


def check_layer(cfg: DeformUnitConfig, layer: DeformLayer) -> None:
    """Raise if the unit cannot run ``layer`` (too wide, too many channels, or not full/depthwise)."""
    for f in ("c", "h", "w", "c_out", "stride", "dilation"):
        check_int(f"layer {layer.name!r} {f}", getattr(layer, f), 1)
    check_int(f"layer {layer.name!r} padding", layer.padding, 0)
    if layer.depthwise and layer.c_out != layer.c:
        raise HwsimError(f"layer {layer.name!r} c_out={layer.c_out} is not allowed: a depthwise layer has "
                         f"c_out == c == {layer.c}")
    if layer.w > cfg.max_width or layer.c > cfg.max_channels:
        raise HwsimError(f"layer {layer.name!r} ({layer.c}x{layer.h}x{layer.w}) is not allowed on this unit: the "
                         f"line buffer holds rows of at most max_width={cfg.max_width} pixels and "
                         f"max_channels={cfg.max_channels} channels")
    if cfg.rows_for(layer.dilation) > max(cfg.rows_for(1), cfg.line_buffer_rows or 0):
        raise HwsimError(f"layer {layer.name!r} dilation={layer.dilation} is not allowed: it needs "
                         f"{cfg.rows_for(layer.dilation)} line-buffer rows, the unit has {cfg.rows_for(1)}")


def synthetic_offsets(cfg: DeformUnitConfig, layer: DeformLayer) -> np.ndarray:
    """Learned-offset stand-in in Q format: free: ``N(0, std)`` pixels per (dy, dx) of every tap; square:
    ``1 + |N(0, std)|`` dilations. Shape ``(2 k k, H_out, W_out)`` or ``(1, H_out, W_out)``."""
    k = cfg.kernel
    ho, wo = ref.output_size(layer.h, layer.w, k, k, layer.stride, layer.padding, layer.dilation)
    rng = np.random.default_rng(layer.seed)
    if cfg.offset_mode == "square":
        raw = 1.0 + np.abs(rng.normal(0.0, layer.offset_std, size=(1, ho, wo)))
    else:
        raw = rng.normal(0.0, layer.offset_std, size=(2 * k * k, ho, wo))
    return ref.quantize_offsets(raw, cfg.frac_bits)


# ---------------------------------------------------------------------------------------------- cycle model
def _sampler_cycles(cfg: DeformUnitConfig, layer: DeformLayer, offsets_q: np.ndarray, rows: int):
    """Sampler cycles per (tap, output row, output column), and the layer's totals of line-buffer hits, misses
    and conflict cycles (per channel block).

    Neighbour ``(dy, dx)`` of ``(y0, x0)`` is in bank ``(x0 + 2 y0 + dx + 2 dy) mod banks``: two neighbours
    share a bank iff ``(dx + 2 dy) - (dx' + 2 dy')`` is a multiple of ``banks``, wherever the item samples. The
    most hit neighbours in one bank is then the largest hit count of those classes (1 at most with 4 banks or
    more: no conflicts). Rows decide the window and the image's rows, columns the image's columns."""
    k, F = cfg.kernel, cfg.frac_bits
    ho, wo = ref.output_size(layer.h, layer.w, k, k, layer.stride, layer.padding, layer.dilation)
    py, px = ref.sample_positions_fixed(offsets_q, k, k, ho, wo, F, layer.stride, layer.padding, layer.dilation)
    y0, x0 = py[0] >> F, px[0] >> F  # (taps, ho, wo)
    top = (np.arange(ho) * layer.stride - layer.padding + (k - 1) // 2 * layer.dilation
           - (rows - 1) // 2)[None, :, None]
    col_in = [(x0 >= -dx) & (x0 < layer.w - dx) for dx in (0, 1)]
    hit, misses = {}, np.zeros(y0.shape, dtype=np.int64)
    for dy in (0, 1):
        row_in = (y0 >= -dy) & (y0 < layer.h - dy)
        row_win = (y0 >= top - dy) & (y0 < top + rows - dy)
        row_hit, row_miss = row_in & row_win, row_in & ~row_win
        for dx in (0, 1):
            hit[dy, dx] = row_hit & col_in[dx]
            misses += row_miss & col_in[dx]
    classes: dict[int, list] = {}
    for (dy, dx), h in hit.items():
        classes.setdefault((dx + 2 * dy) % cfg.banks, []).append(h)
    if all(len(c) == 1 for c in classes.values()):
        a_hit = np.ones(y0.shape, dtype=np.int64)
    else:
        counts = [sum(h.astype(np.int64) for h in c) for c in classes.values()]
        a_hit = np.maximum(functools.reduce(np.maximum, counts), 1)
    hits = sum(int(np.count_nonzero(h)) for h in hit.values())
    return a_hit + misses * cfg.miss_cycles, hits, int(misses.sum()), int((a_hit - 1).sum()), (ho, wo)


def _fill_rows(layer: DeformLayer, ho: int, rows: int, k: int) -> np.ndarray:
    """Rows the window of each output row adds to the previous one (row 0: its whole window), in the image."""
    top = np.arange(ho) * layer.stride - layer.padding + (k - 1) // 2 * layer.dilation - (rows - 1) // 2
    lo, hi = np.clip(top, 0, layer.h), np.clip(top + rows, 0, layer.h)
    prev_hi = np.concatenate([[0], hi[:-1]])
    new = np.maximum(hi - np.maximum(lo, prev_hi), 0)
    return new


def offset_conv_stats(cfg: DeformUnitConfig, layer: DeformLayer):
    """The offset-generating k x k conv (``2 k k`` channels free, 1 square, + ``k k`` masks with modulation)
    on the MAC array: ``predict_gemm(m = H_out W_out, k = C k k, n = channels)``."""
    from hwsim.mac_array import predict_gemm

    k = cfg.kernel
    ho, wo = ref.output_size(layer.h, layer.w, k, k, layer.stride, layer.padding, layer.dilation)
    n = ref.offset_channels(k, k, 1, cfg.offset_mode) + (k * k if cfg.modulation else 0)
    return predict_gemm(cfg.mac_array(), ho * wo, layer.c * k * k, n, name=f"{layer.name}.offsets")


def predict_layer(cfg: DeformUnitConfig, layer: DeformLayer, offsets_q=None, with_offset_conv: bool | None = None
                  ) -> Stats:
    """Exact cycles, stalls, traffic and action counts of ``layer`` with the raw learned offsets ``offsets_q``
    (Q format, before the variant's clamp; :func:`synthetic_offsets` when None). The offset conv on the
    unit's own MAC array is included when ``with_offset_conv`` (default: ``cfg.offset_array``).

    ``cycles`` = ``detail['offset_cycles']`` (MAC array) + ``detail['unit_cycles']``; ``stall_cycles`` =
    ``detail['fill_stall_cycles']`` + ``detail['miss_stall_cycles']``; ``macs`` the useful multiply-accumulates
    of the deformable conv; SRAM traffic the unit's line buffer and offset buffer (not the offset conv's); DRAM
    traffic both. ``detail`` also holds the layer's ``name``, ``conflict_cycles`` (bank conflicts, apart from
    the stalls), ``items``, ``misses``, the ``idle_slots`` of the MAC stage and of the offset conv's array, and
    per layer (not sums when Stats are added) ``line_buffer_rows``, ``sampler_cycles``, ``mac_cycles_per_item``,
    ``blocks``, ``h_out`` and ``w_out``."""
    check_layer(cfg, layer)
    if with_offset_conv is None:
        with_offset_conv = cfg.offset_array
    elif with_offset_conv and not cfg.offset_array:
        raise HwsimError("with_offset_conv=True is not allowed with offset_array=False: the unit has no MAC array "
                         "for the offset conv")
    k, F = cfg.kernel, cfg.frac_bits
    raw = synthetic_offsets(cfg, layer) if offsets_q is None else np.asarray(offsets_q, dtype=np.int64)
    off = ref.variant_offsets(cfg.variant(layer.depthwise), raw, k, k, layer.dilation, frac_bits=F)
    if off.shape[0] != 2 * k * k:
        raise HwsimError(f"offset channels={off.shape[0]} is not allowed: the unit takes one offset group "
                         f"(2 * {k} * {k} channels, or 1 square dilation map)")
    rows = cfg.rows_for(layer.dilation)
    a, hits, misses, conflicts, (ho, wo) = _sampler_cycles(cfg, layer, off, rows)
    nb = math.ceil(layer.c / cfg.lanes)
    b = 1 if layer.depthwise else math.ceil(layer.c_out / cfg.out_lanes)
    # items per output row: (column, tap, block), every block of a (column, tap) with the same a; the first
    # item is (column 0, tap 0, block 0): comp = a_0 + sum over the other items of max(a, b) + b
    a0 = a[0, :, 0]
    comp = a0 + nb * np.maximum(a, b).sum(axis=(0, 2)) - np.maximum(a0, b) + b
    row_bytes = layer.w * nb * cfg.lanes * cfg.act_bits // 8
    new_rows = _fill_rows(layer, ho, rows, k)
    fill = np.array([math.ceil(r * row_bytes / cfg.dram_bytes_per_cycle) for r in new_rows.tolist()],
                    dtype=np.int64)
    later = np.concatenate([fill[1:], [0]])
    drain = 1 + (1 if layer.depthwise else math.ceil(layer.c_out / cfg.out_lanes))
    unit_cycles = int(fill[0] + np.maximum(comp, later).sum() + drain)
    fill_stall = int(fill[0] + np.maximum(later - comp, 0).sum())
    n_miss = misses * nb
    miss_stall = n_miss * cfg.miss_cycles
    items = ho * wo * k * k * nb
    useful = layer.c_out * ho * wo * (layer.c // layer.groups) * k * k
    # MAC slots each item passes (depthwise: the lanes; full: lanes x out_lanes for each of b groups); the
    # slots without a real MAC are idle (the last block's lanes beyond C, the last group's beyond C_out).
    mac_lanes = cfg.lanes if layer.depthwise else cfg.lanes * cfg.out_lanes * b
    idle_slots = items * mac_lanes - useful
    # Requantizations: every lane the MAC stage delivers without gating, the real outputs with it.
    rq_lanes = (nb * cfg.lanes if layer.depthwise else b * cfg.out_lanes) if cfg.gating == "none" else layer.c_out
    word_bytes = cfg.lanes * cfg.act_bits // 8
    wbytes = math.ceil(layer.c_out * (layer.c // layer.groups) * k * k * cfg.weight_bits / 8)
    dram_r = int(new_rows.sum()) * row_bytes + n_miss * word_bytes + wbytes
    dram_w = layer.c_out * ho * wo * cfg.act_bits // 8
    n_off = ref.offset_channels(k, k, 1, cfg.offset_mode) + (k * k if cfg.modulation else 0)
    acts = {
        ("line_buffer", "write"): int(new_rows.sum()) * layer.w * nb,
        ("line_buffer", "read"): hits * nb,
        ("sampler", "sample"): items,
        ("sampler", "interp"): ho * wo * k * k * layer.c,
        ("mac", "mac"): useful,
        ("offset_buffer", "read"): ho * wo * n_off,
        ("offset_buffer", "write"): ho * wo * n_off,
        ("requant", "convert"): rq_lanes * ho * wo,
        ("dram", "read"): dram_r,
        ("dram", "write"): dram_w,
    }
    if idle_slots:
        acts[("mac", "idle")] = idle_slots
    # the sampler interpolates every lane of an item: the layer's C channels per (pixel, tap) are real, the
    # last block's lanes beyond C idle (nb lanes - C per (pixel, tap))
    if nb * cfg.lanes > layer.c:
        acts[("sampler", "idle")] = ho * wo * k * k * (nb * cfg.lanes - layer.c)
    if cfg.modulation:
        acts[("mask_mult", "mult")] = items * cfg.lanes
    actions = ActionCounts(acts)
    off_cycles = 0
    if with_offset_conv:
        oc = offset_conv_stats(cfg, layer)
        off_cycles = oc.cycles
        actions = actions + rename_mac_actions(oc.actions)
        dram_r += oc.dram_read_bytes
        dram_w += oc.dram_write_bytes
    return Stats(
        off_cycles + unit_cycles, fill_stall + miss_stall, useful, actions,
        sram_read_bytes=acts[("line_buffer", "read")] * word_bytes
        + acts[("offset_buffer", "read")] * OFFSET_WORD_BITS // 8,
        sram_write_bytes=acts[("line_buffer", "write")] * word_bytes
        + acts[("offset_buffer", "write")] * OFFSET_WORD_BITS // 8,
        dram_read_bytes=dram_r, dram_write_bytes=dram_w,
        detail={"name": layer.name, "unit_cycles": unit_cycles, "offset_cycles": off_cycles,
                "fill_stall_cycles": fill_stall, "miss_stall_cycles": miss_stall, "conflict_cycles": conflicts * nb,
                "items": items, "misses": n_miss,
                "idle_slots": actions.get("mac", "idle") + actions.get("oc_pe_mac", "idle"),
                "line_buffer_rows": rows, "sampler_cycles": int(a.sum()) * nb, "mac_cycles_per_item": b,
                "blocks": nb, "h_out": ho, "w_out": wo})


def rename_mac_actions(mac_actions) -> ActionCounts:
    """MAC-array action pairs under this inventory's ``oc_`` names (its DRAM is the shared ``dram``)."""
    out = {}
    for (comp, act), n in mac_actions.pairs().counts.items():
        out[("dram" if comp == "dram" else f"oc_{comp}", act)] = n
    return ActionCounts(out)


def predict(cfg: DeformUnitConfig, op) -> Stats:
    """Unit protocol: a :class:`DeformLayer` (offset conv on the MAC array + the deformable unit; offsets
    drawn by :func:`synthetic_offsets`)."""
    if not isinstance(op, DeformLayer):
        raise HwsimError(f"op={type(op).__name__} is not allowed: expected a hwsim.deform_unit.DeformLayer")
    return predict_layer(cfg, op)


def execute_layer(cfg: DeformUnitConfig, x, offsets_q, weight, shift: int, bias=None, relu: bool = False,
                  mask_q=None, stride: int = 1, padding: int = 1, dilation: int = 1, name: str = "deform"):
    """Value path: the bit-exact outputs of one layer (the reference on the variant's offsets) and its
    statistics (:func:`predict_layer` on the same offsets, without the offset conv)."""
    x = np.asarray(x)
    weight = np.asarray(weight)
    c, h, w = x.shape
    co = weight.shape[0]
    depthwise = weight.shape[1] == 1 and co == c and c > 1
    layer = DeformLayer(name, c, h, w, co, depthwise, stride, padding, dilation)
    check_layer(cfg, layer)
    k = cfg.kernel
    if weight.shape[2:] != (k, k):
        raise HwsimError(f"weight shape={weight.shape} is not allowed: expected a {k}x{k} kernel")
    off = ref.variant_offsets(cfg.variant(depthwise), offsets_q, k, k, dilation, frac_bits=cfg.frac_bits)
    values = ref.deform_conv2d_fixed(
        x, off, weight, frac_bits=cfg.frac_bits, shift=shift, bias=bias, stride=stride, padding=padding,
        dilation=dilation, groups=layer.groups, mask_q=mask_q if cfg.modulation else None, mask_bits=cfg.mask_bits,
        act_bits=cfg.act_bits, weight_bits=cfg.weight_bits, acc_bits=cfg.acc_bits, overflow=cfg.overflow,
        rounding=cfg.rounding, relu=relu)
    return values, predict_layer(cfg, layer, offsets_q, with_offset_conv=False)


# ---------------------------------------------------------------------------------------------- simulate
def _layer_of(q) -> DeformLayer:
    """The :class:`DeformLayer` of a compressed ``deform_conv2d`` layer (input shape from ``meta["in_shape"]``)."""
    c, h, w = (int(v) for v in q.meta["in_shape"])
    return DeformLayer(q.name, c, h, w, int(q.weight.shape[0]), q.groups > 1, q.stride, q.padding, q.dilation)


def check_op(cfg: DeformUnitConfig, op) -> None:
    """Registry entry: raise if the unit cannot run ``op``, a :class:`DeformLayer` or a compressed model's
    ``deform_conv2d`` layer (:class:`hwsim.models.compressed.QLayer` with ``meta["in_shape"]``).

    A compressed layer must match the unit's arithmetic: kernel, free offsets in one offset group with the
    unit's ``frac_bits``, activation width, weights no wider than the unit's, no DCN v2 mask, full or
    depthwise, and the unit's offset clamp must act on the offset codes exactly as the layer's own bound.
    """
    if isinstance(op, DeformLayer):
        check_layer(cfg, op)
        return
    if getattr(op, "kind", None) != "deform_conv2d":
        raise HwsimError(f"op={type(op).__name__} is not allowed: expected a DeformLayer or a deform_conv2d layer")
    from hwsim.models.spec import WEIGHT_BITS

    name = op.name
    o, cg, kh, kw = op.weight.shape
    c = cg * op.groups
    f = int(op.meta["frac_bits"])
    where = f"layer {name!r} is not allowed on {FAMILY.name}"
    if (kh, kw) != (cfg.kernel, cfg.kernel):
        raise HwsimError(f"{where}: its {kh}x{kw} kernel does not match kernel={cfg.kernel}")
    if op.groups not in (1, c) or (op.groups > 1 and o != c):
        raise HwsimError(f"{where}: groups={op.groups} (expected 1, full, or {c}, depthwise)")
    if cfg.offset_mode != "free":
        raise HwsimError(f"{where}: offset_mode={cfg.offset_mode!r} (the layer has free (dy, dx) offsets per tap; "
                         "expected 'free')")
    if f != cfg.frac_bits:
        raise HwsimError(f"{where}: its offsets are Q.{f}, the unit has frac_bits={cfg.frac_bits}")
    if op.act_bits != cfg.act_bits:
        raise HwsimError(f"{where}: its activations are {op.act_bits}-bit, the unit has act_bits={cfg.act_bits}")
    if WEIGHT_BITS[op.weight_format] > cfg.weight_bits:
        raise HwsimError(f"{where}: its {op.weight_format} weights are wider than weight_format="
                         f"{cfg.weight_format!r}")
    if cfg.modulation:
        raise HwsimError(f"{where}: modulation=True (the layer has no DCN v2 mask; expected false)")
    # offset codes are act_bits wide: [-R, R - 1] with R = 2**(act_bits - 1); a clamp at b >= R is a no-op
    r = 1 << (op.act_bits - 1)
    unit_b = offset_bound_code(cfg.offset_bound, f)
    layer_b = op.offset_bound_q()
    if min(r, r if unit_b is None else unit_b) != min(r, r if layer_b is None else layer_b):
        lb = op.meta.get("offset_bound")
        raise HwsimError(f"{where}: offset_bound={cfg.offset_bound!r} clamps its offsets differently from the "
                         + ("layer, which has no bound" if lb is None else f"layer's bound of {lb!r} pixels")
                         + f" (offsets are {op.act_bits}-bit Q.{f} codes)")
    check_layer(cfg, _layer_of(op))


def run_layer(cfg: DeformUnitConfig, q, inputs) -> tuple[np.ndarray, list[Stats]]:
    """Registry entry: a compressed model's ``deform_conv2d`` layer ``q`` on a batch, image by image
    (:func:`execute_layer`: bit-exact values and the statistics of each image; the offsets come from
    another unit, so no offset conv here). ``inputs`` = [feature map (N, C, H, W), offsets (N, 2kk, Ho, Wo)]."""
    x, off = (np.asarray(a, dtype=np.int64) for a in inputs)
    outs, stats = [], []
    for xi, oi in zip(x, off, strict=True):
        v, st = execute_layer(cfg, xi, oi, q.weight, int(q.shift[0]), q.bias, q.relu, stride=q.stride,
                              padding=q.padding, dilation=q.dilation, name=q.name)
        outs.append(v)
        stats.append(st)
    return np.stack(outs), stats


# ---------------------------------------------------------------------------------------------- RTL scope
def check_rtl(cfg: DeformUnitConfig) -> None:
    """Raise if ``cfg`` is outside the RTL's scope (:mod:`hwsim.rtl.deform_unit`): kernel 3, a bound, the
    derived line buffer, no DCN v2 mask, power-of-two banks, 1 to 8 whole input words per cycle from DRAM."""
    word = cfg.lanes * cfg.act_bits
    rules = (
        ("kernel", cfg.kernel, cfg.kernel == 3, "3 (the RTL is the 3x3 pipeline)"),
        ("offset_bound", cfg.offset_bound, cfg.offset_bound is not None
         and cfg.offset_bound * (1 << cfg.frac_bits) < 1 << 15, "a bound (< 2**(15 - frac_bits)) for the RTL"),
        ("line_buffer_rows", cfg.line_buffer_rows, cfg.line_buffer_rows is None,
         "None (derived from the bound) for the RTL"),
        ("modulation", cfg.modulation, not cfg.modulation, "false (the RTL has no DCN v2 mask)"),
        ("banks", cfg.banks, cfg.banks & (cfg.banks - 1) == 0, "a power of two for the RTL"),
        ("dram_bytes_per_cycle", cfg.dram_bytes_per_cycle, word % 8 == 0
         and any(cfg.dram_bytes_per_cycle == k * word // 8 for k in range(1, 9)),
         f"1 to 8 times lanes * act_bits / 8 = {word / 8:g} (whole input words per cycle) for the RTL"),
    )
    for name, value, ok, expected in rules:
        if not ok:
            raise HwsimError(f"{name}={value!r} has no RTL: expected {expected}")


def check_rtl_layer(cfg: DeformUnitConfig, layer: DeformLayer) -> None:
    """Raise if the RTL cannot run ``layer``: depthwise or full, any number of channel blocks (``c`` and
    ``c_out`` up to ``max_channels``; the lanes beyond ``c`` of the last block and, full, the output lanes
    beyond ``c_out`` of the last group idle), stride 1, padding 1, dilation 1, sides below 4096."""
    check_layer(cfg, layer)
    what = ("stride", layer.stride, 1), ("padding", layer.padding, 1), ("dilation", layer.dilation, 1)
    for name, value, want in what:
        if value != want:
            raise HwsimError(f"layer {layer.name!r} {name}={value} is not allowed on the RTL: expected {want} "
                             "(the RTL runs stride 1, padding 1, dilation 1)")
    if layer.c_out > cfg.max_channels:
        raise HwsimError(f"layer {layer.name!r} c_out={layer.c_out} is not allowed on the RTL: expected at most "
                         f"max_channels={cfg.max_channels} (its accumulators)")
    if max(layer.h, layer.w) >= 1 << 12:
        raise HwsimError(f"layer {layer.name!r} ({layer.h}x{layer.w}) is not allowed on the RTL: expected sides "
                         "below 4096")


# ---------------------------------------------------------------------------------------------- cost
def _cost_entries():
    from hwsim.cost import HWSIM_ASSUMPTION, HWSIM_DERIVED, CostEntry

    return [
        CostEntry("bilinear_sampler.composition", 1.0, "x", HWSIM_DERIVED, 45, 0.9, 1,
                  "one `sample` (one tap: its address and weights) = 4 (F+1)x(F+1) weight multipliers shared by the "
                  "lanes + 2 (16+F)-bit address adders; one `interp` (one lane's interpolation) = 4 act_bits x (2F+1) "
                  "multipliers and 3 (act_bits+2F+2)-bit adders; an `idle` lane (past the layer's channels) is an "
                  "`interp` ungated, one closed clock gate (icg.energy) with `gating`; priced from the "
                  "multiplier/adder entries (Horowitz ISSCC 2014); area the same parts plus a 4-way bank crossbar of "
                  "(lanes*act_bits) MUX2 x 2 levels, and one clock-gating cell per lane with `gating`"),
        CostEntry("deform_unit.miss_cycles", 20.0, "x", HWSIM_ASSUMPTION, 45, 0.9, 1,
                  "default latency of one random DRAM word fetch outside the line buffer, in cycles at 200 MHz "
                  "(100 ns, a typical LPDDR4 random-access latency; config field miss_cycles)"),
    ]


def _register_classes() -> None:
    from hwsim.cost import COMPONENT_CLASSES, ComponentClass, register_component_class

    if "bilinear_sampler" in COMPONENT_CLASSES:
        return

    def shared(m, a, kind):  # one tap: the 4 bilinear weights and 2 address adders, shared by the lanes
        f = a["frac_bits"]
        mult = m.mult_energy_pj if kind == "e" else m.mult_area_um2
        add = m.add_energy_pj if kind == "e" else m.add_area_um2
        return 4 * mult(f + 1, f + 1) + 2 * add(16 + f)

    def lane(m, a, kind):  # one lane's interpolation: 4 products of a neighbour and its weight, 3 adds
        f, act = a["frac_bits"], a["act_bits"]
        mult = m.mult_energy_pj if kind == "e" else m.mult_area_um2
        add = m.add_energy_pj if kind == "e" else m.add_area_um2
        return 4 * mult(act, 2 * f + 1) + 3 * add(act + 2 * f + 2)

    def idle(m, a):
        return lane(m, a, "e") if a["gating"] == "none" else m.entry("icg.energy").value  # node-scaled by entry()

    def area(m, a):
        mux = m.entry("mux2.area").value
        gates = 0.0 if a["gating"] == "none" else a["lanes"] * m.entry("icg.area").value
        return shared(m, a, "a") + a["lanes"] * lane(m, a, "a") + 2 * a["lanes"] * a["act_bits"] * mux + gates

    def explain(m, a):
        return [] if a["gating"] == "none" else [m.entry("icg.ge"), m.entry("icg.energy"), m.entry("icg.area")]

    register_component_class(
        ComponentClass("bilinear_sampler", "bilinear sampler of `lanes` channels: address generation, 4 weights "
                       "of F fraction bits, 4-neighbour interpolation per lane; `sample` = one tap's address and "
                       "weights, `interp` = one lane's interpolation, `idle` = a lane past the layer's channels "
                       "(`gating`: 'none' an interpolation, 'operand'/'clock' a closed clock gate, whose area each "
                       "lane adds)",
                       ("lanes", "act_bits", "frac_bits", "gating"),
                       {"sample": ("tap", lambda m, a: shared(m, a, "e")),
                        "interp": ("lane", lambda m, a: lane(m, a, "e")), "idle": ("lane", idle)},
                       area, explain, defaults={"gating": "none"}),
        _cost_entries(), section="Component classes of deform-unit")


def inventory(cfg: DeformUnitConfig):
    """The priced components of the unit and of its offset-conv MAC array (``oc_*``)."""
    from hwsim.cost import Component, Inventory
    from hwsim.mac_array import inventory as mac_inventory

    _register_classes()
    lanes_q = cfg.lanes * cfg.out_lanes
    rows = cfg.rows_for(1)
    comps = [
        Component("line_buffer", "sram", {"bytes": cfg.line_buffer_bytes, "word_bits": cfg.lb_word_bits}, 1,
                  f"{rows} rows x {cfg.max_width} px x {cfg.max_channels} ch in {cfg.banks} banks"),
        Component("sampler", "bilinear_sampler", {"lanes": cfg.lanes, "act_bits": cfg.act_bits,
                                                  "frac_bits": cfg.frac_bits, "gating": cfg.gating}),
        Component("mac", "mac", {"weight_format": cfg.weight_format, "act_bits": cfg.sample_bits,
                                 "acc_bits": cfg.acc_bits, "gating": cfg.gating}, lanes_q,
                  f"lanes x out_lanes MACs (weight x {cfg.sample_bits}-bit sample)"),
        Component("offset_buffer", "sram", {"bytes": max(64, 2 * cfg.max_width * (2 * cfg.kernel ** 2 + cfg.kernel
                                                                                   ** 2) * OFFSET_WORD_BITS // 8),
                                            "word_bits": OFFSET_WORD_BITS}, 1,
                  "two rows of offsets (and masks) from the MAC array"),
        Component("requant", "requantizer", {"acc_bits": cfg.acc_bits, "out_bits": cfg.act_bits},
                  max(cfg.lanes, cfg.out_lanes)),
        Component("dram", "dram", {}),
        Component("controller", "controller", {"ge": 5000}, 1, "address/FSM control, rough 5k GE estimate"),
    ]
    if cfg.modulation:
        comps.insert(3, Component("mask_mult", "multiplier", {"a_bits": cfg.act_bits + 2 * cfg.frac_bits,
                                                              "b_bits": cfg.mask_bits + 1}, cfg.lanes,
                                  "DCN v2 modulation of each sample"))
    for c in mac_inventory(cfg.mac_array()).components if cfg.offset_array else ():
        if c.name != "dram":
            comps.append(Component(f"oc_{c.name}", c.cls, c.attrs, c.count, f"offset-conv MAC array: {c.note}"
                                   if c.note else "offset-conv MAC array"))
    return Inventory(f"deform_unit {cfg.offset_mode} {cfg.lanes}x{cfg.out_lanes}", tuple(comps))


# ---------------------------------------------------------------------------------------------- unit protocol
def lower(cfg: DeformUnitConfig, layer) -> tuple:
    """Unit protocol: a compressed ``deform_conv2d`` layer (checked by :func:`check_op`) as one
    :class:`DeformLayer` op (its counts with :func:`synthetic_offsets`; the learned offsets come with
    :func:`run`)."""
    check_op(cfg, layer)
    return (_layer_of(layer),)


def run(cfg: DeformUnitConfig, layer, inputs) -> tuple[np.ndarray, Stats]:
    """Unit protocol: :func:`run_layer`, with the per-inference mean of its per-image statistics
    (:func:`hwsim.unit.mean_stats`: the counts depend on the offsets)."""
    import dataclasses

    values, stats = run_layer(cfg, layer, inputs)
    mean = mean_stats(stats)
    # idle slots depend on the shape only: the same in every image (the report's 'idle' column)
    idle = stats[0].detail["idle_slots"] if stats else 0
    return values, dataclasses.replace(mean, detail={**mean.detail, "idle_slots": idle})


def reference(cfg: DeformUnitConfig, layer, inputs) -> np.ndarray:
    """Unit protocol: the layer through the fixed-point DCN spec with this unit's arithmetic."""
    return layer.forward_int(inputs, cfg=cfg)


def shape_ops(cfg: DeformUnitConfig, rows) -> list[tuple]:
    """Registry entry: shape-only ``deform_conv2d`` rows (a sweep's ``workload.layers`` with
    ``kind: deform_conv2d`` and the :class:`DeformLayer` fields ``c, h, w, c_out`` and optionally
    ``depthwise, stride, padding, dilation, offset_std, seed``) as checked :class:`DeformLayer` ops."""
    import dataclasses as dc

    allowed = [f.name for f in dc.fields(DeformLayer) if f.name != "name"]
    out = []
    for row in rows:
        fields = row.as_dict() if hasattr(row, "as_dict") else {}
        bad = sorted(set(fields) - set(allowed))
        if getattr(row, "kind", None) != "deform_conv2d" or bad:
            what = f"field {bad[0]!r}" if bad else f"kind {getattr(row, 'kind', None)!r}"
            raise HwsimError(f"layer {row.name!r} {what} is not allowed on deform-unit: expected kind deform_conv2d "
                             f"with fields {', '.join(allowed)}")
        try:
            op = DeformLayer(row.name, **fields)
        except TypeError as e:
            raise HwsimError(f"layer {row.name!r} is not allowed on deform-unit: {e} (fields: "
                             f"{', '.join(allowed)})") from None
        check_layer(cfg, op)
        out.append((op, 1))
    return out


def describe_layer(cfg: DeformUnitConfig, layer, ops) -> tuple[str, str]:
    o, cg, kh, kw = layer.weight.shape
    _, ho, wo = layer.out_shape
    return f"{ho * wo}x{cg * kh * kw}x{o} dcn", layer.weight_format


FAMILY = Family(
    name="deform-unit",
    config_cls=DeformUnitConfig,
    description="deformable-convolution unit: line buffer, banked bilinear sampler, MAC stage; offsets from a "
                "MAC array; CoDeNet's bounded / square / depthwise variants",
    presets=("deform-unit", "deform-unit-16x16-square-b8", "deform-unit-unbounded", "deform-unit-8x8-free-b4"),
    preset_pattern="deform-unit[-PxQ][-free|square][-bB|-unbounded]",
    parse_preset=parse_preset,
    workload_kinds=("deform_conv2d",),
    reference="hwsim.models.deform_unit",
    cycle_model="hwsim.deform_unit",
    inventory=inventory,
    lower=lower,
    predict=predict,
    run=run,
    run_reference=reference,
    describe_layer=describe_layer,
    shape_ops=shape_ops,
    rtl="hwsim.rtl.deform_unit:generate_verilog",
    rtl_check=check_rtl,
    cosim="hwsim.cosim.deform_unit_regression:run_regression",
    cosim_run="hwsim.cosim.deform_unit_model:cosim_run",
    synth_groups=(
        ("bilinear sampler", ("sampler",), ("sampler",)),
        ("unit top (line buffer control, MAC lanes, requantizer, counters)", ("top",),
         ("mac", "requant", "controller")),
    ),
    studies=(("codenet-variants", "hwsim.deform_unit_study:run",
              "CoDeNet-like deformable layers at 512x512: co-designed (bounded + square) vs original full / "
              "depthwise DCN at equal on-chip buffer area, against line-buffer rows and miss latency (CoDeNet's "
              "1.36x / 9.76x)"),),
    cli_options=model_cosim_options("co-simulate a whole compressed zoo model (a DCN: its deformable layers on "
                                    "the unit's RTL, the other layers on a MAC array's; --accel names both units) "
                                    "instead of random runs"),
)
