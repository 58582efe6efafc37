"""The memory system around a unit: raw tensors in DRAM, a global on-chip buffer, a whole-model plan.

DRAM holds raw tensors (NHWC or NCHW, ``layout``), never im2col copies: the im2col expansion happens on
chip, between the global buffer and the unit (an address generator reading feature-map rows; the unit's
own cycle model and RTL see the expanded stream at their port). A global buffer of ``buffer_bytes`` sits
between DRAM and the unit. :func:`plan` walks the layers in order and decides, greedily:

* **where each layer's output lives**: on chip when, from the layer that writes it to the last layer that
  reads it, it fits beside the tensors already kept and every layer's minimum working set (else it is
  written to DRAM once and read back by each consumer: *spill* traffic);
* **how a layer streams what is not on chip** (its loop order), the cheaper of
  - *weights outer*: the weights in chunks that fit the free space beside one input band; the input (if in
    DRAM) is read once per chunk;
  - *input outer*: the input in bands of output rows (each band's input rows with its halo: a band of b
    output rows needs ``(b - 1) * stride + kh`` input rows, re-read at band edges); all weights are read
    once per band unless they fit beside one band.
  Weights that fit beside everything else are read once (*weights resident*).

DRAM bytes of a layer = weight reads + input reads (halo counted) + output writes; the **compulsory**
traffic of a network is each weight read once, the network's input read once and its output written once;
each layer's report names what causes the rest. The producer of a layer's input is the latest earlier
layer whose output has the same channels and an integer multiple of its height and width (a pool between
them runs on the producer's output path, so the stored tensor is the pooled one) or the same number of
elements (a flatten); a layer with no producer reads the network input. Not modelled: residual adds (a
block input kept alive until its add), layer fusion (Stream-style depth-first schedules would cut the
spill traffic further by keeping only bands of intermediate tensors), several consumers reading at once.

Timing: each layer's DRAM runs (contiguous byte ranges per tensor and pass) go through
:func:`hwsim.dram.transfer_ns`; with the transfers double-buffered against compute, a layer takes
``max(compute cycles, DRAM cycles)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from hwsim.dram import DramSpec, transfer_ns
from hwsim.errors import HwsimError
from hwsim.stats import text_table

__all__ = ["LAYOUTS", "LayerPlan", "LayerTensors", "MemoryPlan", "format_plan", "global_buffer_component",
           "model_tensors", "plan"]

LAYOUTS = ("nhwc", "nchw")


@dataclass(frozen=True)
class LayerTensors:
    """The tensors of one conv / GEMM layer as they sit in memory (bytes per element: ``in_bytes``,
    ``out_bytes``; ``weight_bytes`` all of its weights, metadata included). A GEMM of ``m x k`` by
    ``k x n`` is a 1x1 conv over an ``m x 1`` image of ``k`` channels."""

    name: str
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    kh: int = 1
    stride: int = 1
    pad_top: int = 0
    weight_bytes: int = 0
    in_bytes: int = 1
    out_bytes: int = 1

    @property
    def input_bytes(self) -> int:
        return self.in_h * self.in_w * self.in_c * self.in_bytes

    @property
    def output_bytes(self) -> int:
        return self.out_h * self.out_w * self.out_c * self.out_bytes

    @property
    def row_bytes(self) -> int:
        return self.in_w * self.in_c * self.in_bytes

    def band_rows(self, b: int) -> int:
        """Input rows (inside the image) a band of ``b`` output rows starting at row 0 needs, at most."""
        return min(self.in_h, (b - 1) * self.stride + self.kh)

    def input_rows_read(self, b: int) -> int:
        """Input rows read over all bands of ``b`` output rows (halo rows re-read at each band edge),
        padding rows excluded: closed form over the ``ceil(out_h / b)`` bands. With ``stride <= kh`` a
        band's windows touch, so it reads one interval of rows; with ``stride > kh`` the windows are apart
        and each output row reads its own ``kh`` rows (rows between windows are never read)."""
        if self.stride > self.kh:
            lo = np.arange(self.out_h) * self.stride - self.pad_top
            return int((np.minimum(lo + self.kh, self.in_h) - np.maximum(lo, 0)).clip(min=0).sum())
        n = -(-self.out_h // b)
        starts = np.arange(n) * b
        ends = np.minimum(starts + b, self.out_h)  # exclusive
        lo = starts * self.stride - self.pad_top
        hi = (ends - 1) * self.stride - self.pad_top + self.kh  # exclusive
        return int((np.minimum(hi, self.in_h) - np.maximum(lo, 0)).clip(min=0).sum())

    @classmethod
    def of_workload(cls, layer, weight_bits: int = 8, act_bits: int = 8, out_bits: int = 8):
        """The tensors of a :mod:`hwsim.workloads` conv or GEMM row."""
        if hasattr(layer, "in_h"):
            return cls(layer.name, layer.in_h, layer.in_w, layer.in_c, layer.out_h, layer.out_w, layer.out_c,
                       layer.kh, layer.stride, layer.pads[0],
                       math.ceil(layer.kh * layer.kw * layer.in_c // layer.groups * layer.out_c * weight_bits / 8),
                       math.ceil(act_bits / 8), math.ceil(out_bits / 8))
        m, k, n = layer.gemm_shape
        return cls(layer.name, m, 1, k, m, 1, n, 1, 1, 0, math.ceil(k * n * weight_bits / 8),
                   math.ceil(act_bits / 8), math.ceil(out_bits / 8))

    @classmethod
    def of_qlayer(cls, la, in_shape: tuple, in_bits: int):
        """The tensors of a compressed model's conv2d / linear layer whose input has shape ``in_shape``
        ((C, H, W) or (features,)) and ``in_bits``-bit values. Weights sit in DRAM as their codes; a layer
        declared N:M (``meta['sparsity']``) as its kept codes with a log2(M)-bit index each, ``N * (K // M)
        + min(N, K % M)`` per output channel of reduction length K."""
        from hwsim.models.spec import WEIGHT_BITS

        bits = WEIGHT_BITS[la.weight_format]
        nm = la.meta.get("sparsity") if hasattr(la, "meta") else None
        if nm:
            n, m = (int(v) for v in nm.split(":"))
            oc, k = la.weight.shape[0], la.weight.size // la.weight.shape[0]
            kept = n * (k // m) + min(n, k % m)
            wbytes = math.ceil(oc * kept * (bits + (m - 1).bit_length()) / 8)
        else:
            wbytes = math.ceil(la.weight.size * bits / 8)
        ib, ob = math.ceil(in_bits / 8), math.ceil(la.out_bits / 8)
        if la.kind == "conv2d":
            c, h, w = in_shape
            oc, oh, ow = la.out_shape
            pad = la.padding if isinstance(la.padding, int) else la.padding[0]
            return cls(la.name, h, w, c, oh, ow, oc, int(la.weight.shape[2]), la.stride, pad, wbytes, ib, ob)
        return cls(la.name, 1, 1, int(np.prod(in_shape)), 1, 1, int(np.prod(la.out_shape)), 1, 1, 0, wbytes, ib, ob)


@dataclass(frozen=True)
class LayerPlan:
    """Where one layer's tensors live and the DRAM bytes and time they cost."""

    name: str
    input_from: str  # "dram (network input)", "on chip (<producer>)", "dram (spilled by <producer>)"
    output_to: str  # "on chip" or "dram"
    schedule: str
    weight_read_bytes: int
    input_read_bytes: int
    output_write_bytes: int
    compulsory_bytes: int
    causes: tuple[str, ...]
    dram_ns: float
    dram_cycles: int
    #: the layer's weights when they stay on chip for a whole batch (:func:`plan` with ``batch > 1``): read
    #: once per batch, by its first inference, not counted in ``weight_read_bytes`` (the other inferences')
    pinned_weight_bytes: int = 0
    #: the DRAM time of the batch's first inference (which also reads the pinned weights)
    first_dram_ns: float = 0.0
    first_dram_cycles: int = 0
    #: the weights' share of ``compulsory_bytes`` (read once per batch, whatever the batch)
    compulsory_weight_bytes: int = 0

    @property
    def dram_bytes(self) -> int:
        """DRAM bytes of one inference (with a batch: each but the first, which adds the pinned weights)."""
        return self.weight_read_bytes + self.input_read_bytes + self.output_write_bytes


@dataclass
class MemoryPlan:
    """The plan of :func:`plan`. ``dram_bytes`` and ``compulsory_bytes`` are those of one batch of ``batch``
    inferences (batch 1: one inference); the layers' figures are per inference."""

    buffer_bytes: int
    layout: str
    dram: str
    clock_mhz: float
    layers: list[LayerPlan] = field(default_factory=list)
    batch: int = 1

    @property
    def pinned(self) -> list[LayerPlan]:
        """The layers whose weights stay on chip for the whole batch."""
        return [lp for lp in self.layers if lp.pinned_weight_bytes]

    @property
    def dram_bytes(self) -> int:
        return self.batch * sum(lp.dram_bytes for lp in self.layers) + sum(lp.pinned_weight_bytes
                                                                             for lp in self.layers)

    @property
    def compulsory_bytes(self) -> int:
        """Each weight read once per batch, each inference's network input read once and output written once."""
        return sum(self.batch * lp.compulsory_bytes - (self.batch - 1) * lp.compulsory_weight_bytes
                   for lp in self.layers)

    @property
    def ratio(self) -> float:
        return self.dram_bytes / self.compulsory_bytes if self.compulsory_bytes else float("nan")


def _producers(layers: list[LayerTensors]) -> tuple[list[int | None], list[list[int]]]:
    """(the producer of each layer's input, the add operands it also reads): the producer is the latest
    earlier layer whose output matches (same channels and an integer multiple of the height and width, or
    the same elements); an earlier layer that nobody reads, followed by a layer with the same output shape,
    is a projection shortcut's partner in a residual add, read with that layer's output by its consumer."""
    n = len(layers)
    prod: list[int | None] = []
    for j, la in enumerate(layers):
        found = None
        for i in range(j - 1, -1, -1):
            p = layers[i]
            same = (p.out_c == la.in_c and p.out_h % la.in_h == 0 and p.out_w % la.in_w == 0
                    and p.out_h // la.in_h == p.out_w // la.in_w)
            if same or p.out_h * p.out_w * p.out_c == la.in_h * la.in_w * la.in_c:
                found = i
                break
        prod.append(found)
    extra: list[list[int]] = [[] for _ in range(n)]
    reader = {}  # producer -> its first reader
    for j, p in enumerate(prod):
        if p is not None:
            reader.setdefault(p, j)
    by_shape: dict[tuple, list[int]] = {}
    for k, la in enumerate(layers):
        by_shape.setdefault((la.out_h, la.out_w, la.out_c), []).append(k)
    for i in range(n - 1):
        if i in reader:
            continue
        partner = next((k for k in by_shape[layers[i].out_h, layers[i].out_w, layers[i].out_c]
                        if k > i and k in reader), None)
        if partner is not None:
            extra[reader[partner]].append(i)
    return prod, extra


def model_tensors(compiled, names) -> tuple[list[LayerTensors], tuple[list, list, list]]:
    """The tensors of the unit layers ``names`` (conv2d / linear, in execution order) of a compressed model,
    and their ``links`` for :func:`plan`: each one's producer and add operands from the graph (a layer's
    input is traced back through the host layers, pools, flattens, adds, which run on the producer's output
    path, to the unit layers that wrote it; None: no layer of ``names``), where the input comes from another
    unit's layer (through DRAM) that layer's name, and whether another unit reads the layer's output (then
    it is written to DRAM whether or not it also stays on chip)."""
    from hwsim.models.compressed import UNIT_KINDS

    by = {la.name: la for la in compiled.layers}
    index = {n: i for i, n in enumerate(names)}

    def sources(name) -> list:
        la = by[name]
        if name in index:
            return [index[name]]
        if la.kind == "input":
            return []
        if la.kind in UNIT_KINDS:  # another unit's output, through DRAM
            return [name]
        return [i for src in la.inputs for i in sources(src)]

    tensors, prod, extra, origin = [], [], [], []
    for n in names:
        la = by[n]
        src = by[la.inputs[0]]
        tensors.append(LayerTensors.of_qlayer(la, tuple(src.out_shape), src.out_bits))
        found = sources(la.inputs[0])
        mine = [i for i in found if isinstance(i, int)]
        prod.append(mine[-1] if mine else None)
        extra.append(mine[:-1])
        origin.append(next((i for i in found if isinstance(i, str)), None))
    exported = [False] * len(names)  # read by another unit's layer: written to DRAM for it
    for la in compiled.layers:
        if la.kind in UNIT_KINDS and la.name not in index:
            for src in la.inputs:
                for i in sources(src):
                    if isinstance(i, int):
                        exported[i] = True
    return tensors, (prod, extra, origin, exported)


def global_buffer_component(nbytes: int, word_bits: int = 64):
    """The inventory component of a global buffer (an SRAM priced per ``word_bits`` word) for a family whose
    config has ``global_buffer_bytes``; its actions are ``("global_buffer", "read" / "write")``."""
    from hwsim.cost import Component

    return Component("global_buffer", "sram", {"bytes": nbytes, "word_bits": word_bits}, 1,
                     f"global buffer, {nbytes / 1024:g} KiB: raw tensors from DRAM, layer outputs kept on chip, "
                     "the im2col stream to the unit's port (hwsim.memory)")


def _min_working_set(la: LayerTensors, in_res: bool) -> int:
    """The least a layer needs in the buffer beside its resident tensors: one output channel's weights,
    one band of one output row (its input rows, unless the input is resident) and one output row."""
    one_w = math.ceil(la.weight_bytes / la.out_c)
    return one_w + (0 if in_res else la.band_rows(1) * la.row_bytes) + la.out_w * la.out_c * la.out_bytes


def _stream(la: LayerTensors, space: int, in_res: bool) -> tuple[str, int, int, list[str]]:
    """(schedule, weight read bytes, input read bytes, causes) of the cheaper loop order in ``space`` bytes."""
    W, rb = la.weight_bytes, la.row_bytes
    if in_res:
        return "input on chip, weights streamed once", W, 0, []
    one_band = la.band_rows(1) * rb
    if W + one_band <= space:  # weights resident; the input streamed once in bands that fit
        b = _largest_band(la, space - W)
        rows = la.input_rows_read(b)
        causes = [f"halo: {rows - _rows_needed(la):,} input rows re-read at band edges"] if rows > _rows_needed(la) \
            else []
        return f"weights resident, input in {-(-la.out_h // b)} band(s)", W, rows * rb, causes
    # weights outer: chunks of whole output channels beside one one-row band
    per_oc = math.ceil(W / la.out_c)
    oc_per_chunk = max(1, (space - one_band) // per_oc)
    chunks = -(-la.out_c // oc_per_chunk)
    a_in = chunks * la.input_rows_read(la.out_h)
    cost_a = W + a_in * rb
    # input outer: bands that fit beside one output channel's weights; all weights once per band
    b = _largest_band(la, space - per_oc)
    bands = -(-la.out_h // b)
    b_in = la.input_rows_read(b)
    cost_b = bands * W + b_in * rb
    if cost_a <= cost_b:
        return (f"weights outer ({chunks} chunks)", W, a_in * rb,
                [f"input read {chunks}x: weights {W:,} B do not fit beside a band"])
    causes = [f"weights read {bands}x: input in {bands} bands"]
    if b_in > _rows_needed(la):
        causes.append(f"halo: {b_in - _rows_needed(la):,} input rows re-read at band edges")
    return f"input outer ({bands} bands)", bands * W, b_in * rb, causes


def _rows_needed(la: LayerTensors) -> int:
    return la.input_rows_read(la.out_h)


def _largest_band(la: LayerTensors, space: int) -> int:
    """The most output rows whose input band fits ``space`` bytes (at least 1)."""
    if la.row_bytes == 0:
        return la.out_h
    rows = max(space, 0) // la.row_bytes
    b = (rows - la.kh) // la.stride + 1 if rows >= la.kh else 1
    return int(min(max(b, 1), la.out_h))


def _runs(layout: str, base: int, nbytes: int, channels: int) -> tuple[list[int], list[int]]:
    """DRAM runs of moving ``nbytes`` of a tensor: NHWC rows are contiguous (one run); NCHW holds one plane
    per channel (one run per channel, the bytes split evenly)."""
    if nbytes <= 0:
        return [], []
    if layout == "nhwc" or channels <= 1:
        return [base], [nbytes]
    per = -(-nbytes // channels)
    sizes = [min(per, nbytes - c * per) for c in range(channels) if nbytes - c * per > 0]
    return [base + c * per for c in range(len(sizes))], sizes


def plan(layers: list[LayerTensors], buffer_bytes: int, dram: DramSpec | None, clock_mhz: float,
         layout: str = "nhwc", fixed_bytes_per_cycle: float | None = None, dram_name: str = "",
         links: tuple | None = None, size_field: str = "--buffer-kib", batch: int = 1) -> MemoryPlan:
    """The greedy whole-model memory plan of ``layers`` (in execution order) with a global buffer of
    ``buffer_bytes``; DRAM time by ``dram`` (None: ``fixed_bytes_per_cycle``). ``links`` = (producer of each
    layer, add operands of each layer[, the other unit's layer an input comes from, whether another unit reads
    the output]) when the graph is known (:func:`model_tensors`); else they are found by matching shapes.

    ``batch`` inferences run one after another, each through every layer. A layer's weights may then stay on
    chip for the whole batch (*pinned*): read from DRAM once, by the first inference, at the price of their
    bytes of buffer during every layer. Greedily, smallest weights first, a layer is pinned when the batch's
    DRAM bytes with it pinned (the other layers re-planned in the buffer that is left) are fewer than
    without."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise HwsimError(f"--batch={batch!r} is not allowed: expected a whole number of inferences >= 1")
    best = _plan(layers, buffer_bytes, dram, clock_mhz, layout, fixed_bytes_per_cycle, dram_name, links,
                 size_field, frozenset())
    best.batch = batch
    if batch > 1:
        for i in sorted(range(len(layers)), key=lambda i: (layers[i].weight_bytes, i)):
            if not layers[i].weight_bytes:
                continue
            try:
                cand = _plan(layers, buffer_bytes, dram, clock_mhz, layout, fixed_bytes_per_cycle, dram_name,
                             links, size_field, frozenset(k for k, lp in enumerate(best.layers)
                                                          if lp.pinned_weight_bytes) | {i})
            except HwsimError:  # the pinned weights leave too little buffer for some layer
                continue
            cand.batch = batch
            if cand.dram_bytes < best.dram_bytes:
                best = cand
    return best


def _plan(layers: list[LayerTensors], buffer_bytes: int, dram: DramSpec | None, clock_mhz: float,
          layout: str, fixed_bytes_per_cycle: float | None, dram_name: str, links: tuple | None,
          size_field: str, pinned: frozenset) -> MemoryPlan:
    """One inference's plan of :func:`plan` with the weights of the layers ``pinned`` (indices) kept on chip
    throughout, in the buffer's first bytes."""
    if layout not in LAYOUTS:
        raise HwsimError(f"--layout={layout!r} is not allowed: expected one of {', '.join(LAYOUTS)}")
    if not isinstance(buffer_bytes, int) or isinstance(buffer_bytes, bool) or buffer_bytes < 1:
        raise HwsimError(f"--buffer-kib={buffer_bytes!r} is not allowed: expected a positive size")
    if dram is None and not (fixed_bytes_per_cycle and fixed_bytes_per_cycle > 0):
        raise HwsimError("--dram=fixed is not allowed without a bandwidth: expected bytes per cycle > 0")
    n = len(layers)
    prod, extra = _producers(layers) if links is None else links[:2]
    origin = links[2] if links is not None and len(links) > 2 else [None] * len(layers)
    exported = links[3] if links is not None and len(links) > 3 else [False] * len(layers)
    consumers: list[list[int]] = [[] for _ in range(n)]
    for j, p in enumerate(prod):
        for i in ([p] if p is not None else []) + extra[j]:
            consumers[i].append(j)
    stored = [max((layers[j].input_bytes for j in consumers[i]), default=layers[i].output_bytes) for i in range(n)]
    last = [max(consumers[i], default=i) for i in range(n)]
    # occupancy[t]: bytes of tensors kept on chip while layer t runs (produced before t, read at or after t)
    occupancy = np.zeros(n + 1, dtype=np.int64)
    kept = [False] * n
    # a pinned layer's weights sit in the reserve: its own working set needs no weight bytes
    eff = [dataclasses.replace(la, weight_bytes=0) if j in pinned else la for j, la in enumerate(layers)]
    avail = buffer_bytes - sum(layers[j].weight_bytes for j in pinned)
    mws = [_min_working_set(la, False) for la in eff]
    out = MemoryPlan(buffer_bytes, layout, dram_name or (dram.name if dram else "fixed"), clock_mhz)
    for j, la in enumerate(layers):
        p = prod[j]
        in_res = p is not None and kept[p]
        # keep the output if it fits from this layer to its last consumer
        if consumers[j]:
            span = range(j, last[j] + 1)
            need = max(int(occupancy[t]) + stored[j] + mws[t] for t in span)
            if need <= avail:
                kept[j] = True
                occupancy[j + 1:last[j] + 1] += stored[j]
        space = avail - int(occupancy[j]) - (stored[j] if kept[j] else 0)
        if space < _min_working_set(eff[j], in_res) - (la.out_w * la.out_c * la.out_bytes if kept[j] else 0):
            least = buffer_bytes - space + _min_working_set(eff[j], in_res)
            size, want = ((f"{buffer_bytes / 1024:g}", f"{least / 1024:.1f} KiB") if size_field == "--buffer-kib"
                          else (str(buffer_bytes), f"{least} bytes"))
            raise HwsimError(f"{size_field}={size} is not allowed for layer {la.name!r}: expected at least {want} "
                             "(its resident tensors and one band of rows)")
        schedule, w_rd, in_rd, causes = _stream(eff[j], space, in_res)
        if j in pinned:
            schedule = "weights pinned for the batch" + schedule.removeprefix("weights resident").removeprefix(
                ", weights streamed once").replace("input on chip", ", input on chip")
        if p is None:
            src = "dram (network input)" if origin[j] is None else f"dram (from {origin[j]}, another unit)"
        elif in_res:
            src = f"on chip ({layers[p].name})"
        else:
            src = f"dram (spilled by {layers[p].name})"
            causes = [f"input {layers[p].name} spilled: {stored[p]:,} B written and read back", *causes]
        for i in extra[j]:  # the residual add's other operand
            src += f" + {layers[i].name}" + ("" if kept[i] else " (dram)")
            if not kept[i]:
                in_rd += stored[i]
                causes = [*causes, f"add operand {layers[i].name} spilled: {stored[i]:,} B written and read back"]
        if kept[j]:
            dst, o_wr = "on chip", 0
        elif consumers[j]:
            dst, o_wr = "dram", stored[j]
            causes = [f"output spilled: {stored[j]:,} B do not fit on chip until {layers[last[j]].name}", *causes]
        else:
            dst, o_wr = "dram", la.output_bytes
        compulsory = la.weight_bytes + (la.input_bytes if p is None else 0) + (0 if consumers[j] else la.output_bytes)
        if exported[j] and consumers[j]:  # another unit reads it too: written to DRAM for that unit
            dst = "on chip + dram" if kept[j] else dst
            o_wr = max(o_wr, la.output_bytes)
            compulsory += la.output_bytes
        # DRAM runs: weights (contiguous, once per pass), input rows, output rows
        w_passes = w_rd // la.weight_bytes if la.weight_bytes else 0
        addr, size = ([0] * w_passes, [la.weight_bytes] * w_passes)
        a2, s2 = _runs(layout, 1 << 40, in_rd, la.in_c)
        a3, s3 = _runs(layout, 2 << 40, o_wr, la.out_c)
        pin = la.weight_bytes if j in pinned else 0
        ns, cyc = _dram_time(dram, clock_mhz, fixed_bytes_per_cycle, addr + a2 + a3, size + s2 + s3)
        ns1, cyc1 = _dram_time(dram, clock_mhz, fixed_bytes_per_cycle, [0] + addr + a2 + a3,
                               [pin] + size + s2 + s3) if pin else (ns, cyc)
        out.layers.append(LayerPlan(la.name, src, dst, schedule, w_rd, in_rd, o_wr, compulsory, tuple(causes),
                                    ns, cyc, pin, ns1, cyc1, la.weight_bytes))
    return out


def _dram_time(dram: DramSpec | None, clock_mhz: float, fixed_bytes_per_cycle: float | None, addr: list[int],
               size: list[int]) -> tuple[float, int]:
    """(ns, cycles at ``clock_mhz``) of the DRAM runs ``addr``/``size``: the part's timing, or a fixed
    number of bytes per cycle."""
    if dram is not None:
        ns = transfer_ns(dram, addr, size)
        return ns, math.ceil(ns * clock_mhz / 1000 - 1e-9)
    cyc = math.ceil(sum(size) / fixed_bytes_per_cycle)
    return cyc * 1000 / clock_mhz, cyc


def format_plan(mp: MemoryPlan, compute_cycles: dict[str, int] | None = None) -> list[str]:
    """The memory-system table: per layer, where its tensors live, DRAM bytes and what causes the bytes
    beyond the compulsory ones, DRAM time and (with ``compute_cycles``) which of the two bounds the layer."""
    lines = [f"Memory system: {mp.buffer_bytes / 1024:g} KiB global buffer, DRAM {mp.dram}, raw tensors "
             f"({mp.layout.upper()}), im2col on chip; DRAM cycles at {mp.clock_mhz:g} MHz"]
    if mp.batch > 1:
        pinned = mp.pinned
        lines.append(f"Batch of {mp.batch:,} inferences, one after another: "
                     + (f"weights pinned on chip for the batch ({sum(lp.pinned_weight_bytes for lp in pinned):,} B, "
                        f"read once by the first inference): {', '.join(lp.name for lp in pinned)}" if pinned else
                        "no layer's weights fit on chip for the whole batch (each inference reads them)")
                     + "; the table is one inference after the first")
    lines.append("")
    cols = [("layer", 8, "<"), ("input from", 10, "<"), ("output", 7, "<"), ("weights B", 9, ">"),
            ("input B", 9, ">"), ("output B", 9, ">"), ("DRAM B", 9, ">"), ("DRAM cyc", 8, ">")]
    if compute_cycles:
        cols += [("unit cyc", 8, ">"), ("bound", 7, "<")]
    rows = []
    for lp in mp.layers:
        w = f"{lp.weight_read_bytes:,}" + (f" (+{lp.pinned_weight_bytes:,} once)" if lp.pinned_weight_bytes else "")
        row = [lp.name, lp.input_from, lp.output_to, w, f"{lp.input_read_bytes:,}",
               f"{lp.output_write_bytes:,}", f"{lp.dram_bytes:,}", f"{lp.dram_cycles:,}"]
        if compute_cycles:
            c = compute_cycles.get(lp.name, 0)
            row += [f"{c:,}", "DRAM" if lp.dram_cycles > c else "unit"]
        rows.append(row + ["; ".join(lp.causes) or "-"])
    lines += text_table(cols + [("beyond compulsory", 17, "<")], rows)
    if mp.batch > 1:
        per = mp.dram_bytes / mp.batch
        lines += ["", f"DRAM traffic per batch of {mp.batch:,} {mp.dram_bytes:,} B ({per:,.1f} B per "
                      f"inference); compulsory {mp.compulsory_bytes:,} B (each weight read once per batch, each "
                      f"inference's input read once and output written once); ratio {mp.ratio:.3f}"]
    else:
        lines += ["", f"DRAM traffic {mp.dram_bytes:,} B; compulsory {mp.compulsory_bytes:,} B (each weight read "
                      f"once, the network input read once, its output written once); ratio {mp.ratio:.3f}"]
    return lines
