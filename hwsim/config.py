"""Frozen accelerator configurations: one object drives the reference, the cycle model, the RTL and cosim.

Only the standard library is imported here, so the reference models in ``hwsim.models`` can take these
objects (by duck typing) without depending on the rest of ``hwsim``.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import types
import typing
from dataclasses import dataclass
from fractions import Fraction
from typing import ClassVar

from hwsim.models.errors import HwsimError
from hwsim.models.spec import POW2_MAX_SHIFT, WEIGHT_BITS

__all__ = [
    "ConfigField",
    "DATAFLOWS",
    "FamilyConfig",
    "MAC_DRAIN_STAGES",
    "MAC_STREAM_STAGES",
    "OVERFLOW_MODES",
    "POW2_MAX_SHIFT",
    "ROUNDING_MODES",
    "WEIGHT_BITS",
    "WEIGHT_FORMATS",
    "MacArrayConfig",
    "check_choice",
    "check_int",
    "check_number",
]

#: Weight formats (the keys of :data:`hwsim.models.spec.WEIGHT_BITS`, the one table of code widths).
WEIGHT_FORMATS = tuple(WEIGHT_BITS)
DATAFLOWS = ("ws", "os", "is")
OVERFLOW_MODES = ("saturate", "wrap")
ROUNDING_MODES = ("half_up", "half_even")
#: Pipeline registers of the MAC array's RTL, there for the clock (``hwsim.rtl.mac_array``); the cycle model
#: counts them. STREAM: a streamed operand's register after its buffer read (with its token and the column
#: partial sums) and a PE's registers on both sides of its multiplier: cycles per fold in STREAM (WS/IS)
#: or FLUSH (OS). DRAIN: the drained row's register and the requantizer's two stages: cycles per tile drain.
MAC_STREAM_STAGES = 3
MAC_DRAIN_STAGES = 3


def check_int(name: str, value, lo: int, hi: int | None = None) -> None:
    """An integer (not a bool) in [lo, hi] (hi None: no upper limit), else the one-line error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise HwsimError(f"{name}={value!r} is not allowed: expected an integer")
    if value < lo or (hi is not None and value > hi):
        allowed = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise HwsimError(f"{name}={value!r} is not allowed: expected an integer {allowed}")


def check_number(name: str, value, lo: float, lo_open: bool, hi: float) -> None:
    """A finite number in [lo, hi] (or (lo, hi] with ``lo_open``), else the one-line error naming ``name``."""
    ok = not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value) and value <= hi \
        and (value > lo if lo_open else value >= lo)
    if not ok:
        rng = f"({lo:g}, {hi:g}]" if lo_open else f"[{lo:g}, {hi:g}]"
        raise HwsimError(f"{name}={value!r} is not allowed: expected a number in {rng}")


def check_choice(name: str, value, choices) -> None:
    """One of ``choices``, else the one-line error naming ``name`` and listing them."""
    if value not in choices:
        raise HwsimError(f"{name}={value!r} is not allowed: expected one of {', '.join(choices)}")


#: remaining: the old private spellings, for hwsim/deform_unit.py, hwsim/lstm_engine.py, hwsim/rf_array.py and
#: tests/accum_family.py; delete when they import check_int / check_number / check_choice.


@dataclass(frozen=True)
class ConfigField:
    """One field of a family config as the CLI, sweeps and ``hwsim families`` see it.

    ``type`` is int, float, str or bool; ``choices`` come from a ``{"a", "b"}`` type in the config's
    numpydoc ``Parameters`` section; ``help`` is the first sentence of the field's documentation there.
    """

    name: str
    type: type
    default: object
    optional: bool
    choices: tuple[str, ...] | None
    help: str
    aliases: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _field_docs(cls) -> dict[str, tuple[str, str]]:
    """``{field: (type text, description)}`` from the numpydoc ``Parameters`` section of ``cls``."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    m = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.M | re.S)
    out: dict[str, tuple[str, str]] = {}
    if not m:
        return out
    names, type_text, desc = None, "", []
    for line in m.group(1).splitlines() + ["END : end"]:
        head = re.match(r"^(\w[\w, ]*?) : (.*)$", line)
        if head:
            for n in names or ():
                out[n] = (type_text, " ".join(desc).strip())
            names = [n.strip() for n in head.group(1).split(",")]
            type_text, desc = head.group(2).strip(), []
        elif line.strip():
            desc.append(line.strip())
    return out


def _first_sentence(text: str) -> str:
    m = re.match(r"(.+?\.)(\s|$)", text)
    return (m.group(1) if m else text).strip()


class FamilyConfig:
    """Behaviour shared by every family's frozen config dataclass (mix in before ``@dataclass``).

    A subclass sets ``FAMILY`` (the registry name, e.g. ``"mac-array"``) and documents every field in a
    numpydoc ``Parameters`` section: the CLI flags, their types, choices and help are generated from it
    (:meth:`cli_fields`). ``CLI_ALIASES`` maps a field to extra flag spellings kept for compatibility.
    """

    FAMILY: ClassVar[str] = ""
    CLI_ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {}

    @classmethod
    def family_key(cls) -> str:
        """The family's name as a YAML/JSON key and identifier (``mac_array``)."""
        return cls.FAMILY.replace("-", "_")

    def replace(self, **changes):
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict):
        """A config from a mapping of its fields; unknown fields are rejected with the allowed ones."""
        key = cls.family_key()
        if not isinstance(data, dict):
            raise HwsimError(f"{key} config={data!r} is not allowed: expected a mapping of fields")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise HwsimError(
                f"{key} config field {unknown[0]!r} is not allowed: expected one of {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def cli_fields(cls) -> list[ConfigField]:
        """Every dataclass field with its type, default, choices and help (from the docstring)."""
        docs = _field_docs(cls)
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            t = hints[f.name]
            args = typing.get_args(t) if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union \
                else ()
            optional = type(None) in args
            base = next((a for a in args if a is not type(None)), t) if args else t
            if base not in (int, float, str, bool):
                raise HwsimError(f"{cls.__name__}.{f.name}: type {t} is not allowed for a config field: "
                                 "expected int, float, str or bool (optionally | None)")
            type_text, desc = docs.get(f.name, ("", ""))
            choices = tuple(re.findall(r'"([^"]+)"', type_text)) if type_text.startswith("{") else None
            default = f.default if f.default is not dataclasses.MISSING else None
            out.append(ConfigField(f.name, base, default, optional, choices or None, _first_sentence(desc),
                                   tuple(cls.CLI_ALIASES.get(f.name, ()))))
        return out


#: What idle PE slots and lanes do (:attr:`MacArrayConfig.gating`).
GATING_MODES = ("clock", "operand", "none")


@dataclass(frozen=True)
class MacArrayConfig(FamilyConfig):
    """A quantized systolic MAC array (family ``mac_array``).

    Parameters
    ----------
    rows, cols : int
        PE array rows and columns. In WS the reduction (K) maps onto rows and output channels (N)
        onto columns; in OS output rows (M) map onto rows and output channels (N) onto columns.
    dataflow : {"ws", "os", "is"}
        Weight-, output- or input-stationary (IS is WS on the transposed GEMM), in the model and the RTL.
    weight_format : {"int8", "int4", "int2", "ternary", "binary", "pow2"}
        Weight format of the PEs. ``ternary`` weights are in {-1, 0, +1} (2-bit two's complement
        code) and select add / skip / subtract instead of multiplying. ``binary`` weights and
        activations are in {-1, +1}, coded as one bit (1 -> +1, 0 -> -1), and multiply by XNOR.
        ``pow2`` weights are a sign bit and a 3-bit exponent code e: 0 means zero, e >= 1 means
        2**(e-1) (so |w| <= 64); the multiply is a shift.
    act_bits : int or None
        Signed activation width (two's complement), also the width outputs are clamped to. ``None`` means
        8, or 1 for ``binary`` (which requires 1).
    acc_bits : int
        Signed accumulator width; must hold one product. Accumulation is sequential over K.
    overflow : {"saturate", "wrap"}
        What the accumulator does after every addition that leaves its range.
    rounding : {"half_up", "half_even"}
        Rounding of the power-of-two requantization shift: ``half_up`` rounds ties towards +infinity
        (``(x + 2**(s-1)) >> s``), ``half_even`` rounds ties to the even neighbour.
    input_sram_bytes, weight_sram_bytes, output_sram_bytes : int
        On-chip buffer capacities in bytes. Input and weight buffers are double-buffered, so one tile
        must fit in half of each.
    sram_banks, sram_word_bits : int
        SRAM organisation. Access counts are reported in words of ``sram_word_bits``.
    dram_bytes_per_cycle : float
        Bandwidth of the array's stream port, which the RTL and the cycle model time exactly: one stream
        beat of B bits every ceil(B / (8 * bw)) cycles. With a global buffer the port reads the global
        buffer (the im2col expansion happens on chip there); without one (``global_buffer_bytes=0``) it
        is the DRAM itself, im2col copies and all.
    global_buffer_bytes : int
        On-chip global buffer between DRAM and the array (:mod:`hwsim.memory`): DRAM holds raw tensors,
        layer outputs stay on chip when they fit, DRAM time follows the DRAM part's timing
        (:mod:`hwsim.dram`, the cost model's ``--dram``). 0 = none (every layer streams from and to DRAM
        at ``dram_bytes_per_cycle``, the old model). Default 64 KiB.
    clock_mhz : float
        Clock frequency, for converting cycles to time.
    dim_bits : int
        Width of the RTL's layer-shape registers (M, K, N); layers must have dimensions < 2**dim_bits.
    sparsity : str
        Structured weight sparsity of the PEs: "dense" (default) or "N:M" such as "2:4" or "1:4" (WS only).
        An N:M array stores only the N kept weights of every M consecutive reduction steps of a weight
        column plus a log2(M)-bit index each (compressed weight rows in DRAM and SRAM), each PE selects
        the activation its index names (an M:1 multiplexer), and a fold covers ``rows * M / N`` reduction
        steps, so an N:M layer takes N/M of the dense folds along K. Requires M a power of two in [2, 16],
        1 <= N < M, rows a multiple of N and a weight format with a zero (not binary). A layer that
        follows the pattern (at most N non-zero weights per group; a trailing group of L < M steps at most
        min(N, L)) runs sparse; one that does not runs in dense mode (each run of N consecutive reduction
        steps is one group of M with M - N zero steps inserted, so it takes the dense array's reduction
        steps plus index metadata and M/N-wide activation beats), unless it is declared N:M (an N:M
        ``--compress`` spec), which must then follow the pattern.
    skip_zero_tiles : bool
        Skip every fold whose weight block is entirely zero (ws; not binary).
        The controller reads a bitmap of one bit per weight block (the fold's reduction steps x ``cols``
        output channels; counted as DRAM read bytes) and skips every fold whose block is zero: no weight
        or activation beats, no compute pass, one wait cycle. The first executed fold of an output tile
        starts from zero partial sums, the tile drains after its last k-fold as usual, and a tile with no
        executed fold drains zero accumulators (``requant(bias)``). Default off (dense baselines unchanged).
    requantizer : {"shift", "f32"}
        The requantizers built: ``shift`` (the power-of-two requantizer, rounding ``rounding``) or ``f32``
        (also ONNX Runtime's float32 requantizer, ``round_half_even(f32(f32(acc) * scale)) + zero_point``,
        and the zero-point correction adders, for quantized ONNX models with float scales and zero points).
        Layers that need the float32 requantizer run on either (values and cycles are the same); with
        ``shift`` its components are listed with count 0, so their actions are priced but not their area.
    gating : {"clock", "operand", "none"}
        What a PE, requantizer lane and output-buffer lane that holds no real work does (the padding rows
        and columns of an edge tile: 64 output channels on 256 columns leave 192 columns idle). ``none``:
        nothing is gated; an idle PE slot multiplies and adds whatever its registers hold, priced as a MAC,
        and every output lane is requantized and written. ``operand``: operand isolation; a PE's multiplier
        operand registers (and its stationary weight register) load only for a real MAC, so an idle slot's
        multiplier and adder hold still (priced as the gate's clock toggle, ``icg.ge``); requantizer lanes
        of idle columns hold their input, output-buffer writes and reads have lane enables, and the input
        and weight buffers write and read only the SRAM words holding a beat's real lanes. ``clock``
        (default): ``operand`` plus a clock gate on each PE's pipeline registers, closed while the PE's
        column (OS: its row or column) holds no real output. Values and cycles are the same under every
        choice; only the action counts and the area of the gating cells differ (see docs/idle_lanes.md).
    weight_zero_points : bool
        Build the row-sum unit for weights with zero points (asymmetric weights, e.g. ONNX Runtime's uint8
        weights): each output row's activation sum ``sum_k a[m, k]`` is accumulated over the K folds as the
        activations stream, and each float32 requantizer lane subtracts ``row_zp[n] * rowsum[m]`` after the
        bias (see docs/mac_array_rtl.md). No extra cycle. Requires ``requantizer='f32'``, a dense array,
        no zero-tile skipping and int8/int4/int2 weights. Default off (the RTL is that of before the field).
    """

    rows: int = 8
    cols: int = 8
    dataflow: str = "ws"
    weight_format: str = "int8"
    act_bits: int | None = None
    acc_bits: int = 32
    overflow: str = "saturate"
    rounding: str = "half_up"
    input_sram_bytes: int = 64 * 1024
    weight_sram_bytes: int = 64 * 1024
    output_sram_bytes: int = 64 * 1024
    sram_banks: int = 8
    sram_word_bits: int = 64
    dram_bytes_per_cycle: float = 16.0
    global_buffer_bytes: int = 64 * 1024
    clock_mhz: float = 500.0
    dim_bits: int = 16
    sparsity: str = "dense"
    skip_zero_tiles: bool = False
    requantizer: str = "shift"
    gating: str = "clock"
    weight_zero_points: bool = False

    FAMILY: ClassVar[str] = "mac-array"
    #: Flag spellings of the first CLI, kept beside the generated ``--weight-format`` etc.
    CLI_ALIASES: ClassVar[dict[str, tuple[str, ...]]] = {
        "weight_format": ("--weights",), "input_sram_bytes": ("--input-sram",),
        "weight_sram_bytes": ("--weight-sram",), "output_sram_bytes": ("--output-sram",),
        "dram_bytes_per_cycle": ("--dram-bw",),
    }

    def __post_init__(self):
        check_int("rows", self.rows, 1, 1024)
        check_int("cols", self.cols, 1, 1024)
        check_choice("dataflow", self.dataflow, DATAFLOWS)
        check_choice("weight_format", self.weight_format, WEIGHT_FORMATS)
        if self.act_bits is None:
            object.__setattr__(self, "act_bits", 1 if self.weight_format == "binary" else 8)
        if self.weight_format == "binary":
            if self.act_bits != 1:
                raise HwsimError(
                    f"act_bits={self.act_bits!r} is not allowed with weight_format='binary': "
                    "binary layers take +-1 activations, act_bits must be 1"
                )
        else:
            check_int("act_bits", self.act_bits, 2, 16)
        check_int("acc_bits", self.acc_bits, 2, 48)
        if self.acc_bits < self.product_bits:
            raise HwsimError(
                f"acc_bits={self.acc_bits} is not allowed: the accumulator must hold one product of "
                f"{self.product_bits} bits ({self.weight_format} x {self.act_bits}-bit activations)"
            )
        check_choice("overflow", self.overflow, OVERFLOW_MODES)
        check_choice("rounding", self.rounding, ROUNDING_MODES)
        check_choice("requantizer", self.requantizer, ("shift", "f32"))
        check_choice("gating", self.gating, GATING_MODES)
        for name in ("input_sram_bytes", "weight_sram_bytes", "output_sram_bytes"):
            check_int(name, getattr(self, name), 1)
        check_int("sram_banks", self.sram_banks, 1, 1024)
        check_int("sram_word_bits", self.sram_word_bits, 8, 4096)
        check_int("global_buffer_bytes", self.global_buffer_bytes, 0, 1 << 30)
        if self.sram_word_bits % 8:
            raise HwsimError(f"sram_word_bits={self.sram_word_bits} is not allowed: expected a multiple of 8")
        bw = self.dram_bytes_per_cycle
        if isinstance(bw, bool) or not isinstance(bw, int | float | Fraction) or not (bw > 0) or bw > 1 << 20:
            raise HwsimError(f"dram_bytes_per_cycle={bw!r} is not allowed: expected a number in (0, 1048576]")
        clk = self.clock_mhz
        if isinstance(clk, bool) or not isinstance(clk, int | float) or not (0 < clk <= 100_000):
            raise HwsimError(f"clock_mhz={clk!r} is not allowed: expected a number in (0, 100000]")
        check_int("dim_bits", self.dim_bits, 4, 24)
        self._check_sparsity()
        if not isinstance(self.skip_zero_tiles, bool):
            raise HwsimError(f"skip_zero_tiles={self.skip_zero_tiles!r} is not allowed: expected true or false")
        if self.skip_zero_tiles and self.dataflow != "ws":
            raise HwsimError(f"skip_zero_tiles=True is not allowed with dataflow={self.dataflow!r}: zero-tile "
                             "skipping exists for the ws dataflow only")
        if self.skip_zero_tiles and self.weight_format == "binary":
            raise HwsimError("skip_zero_tiles=True is not allowed with weight_format='binary': binary weights have "
                             "no zero; expected a format with 0 (int8, int4, int2, ternary, pow2)")
        self._check_weight_zero_points()
        # One tile must fit the double-buffered SRAMs.
        if self.dataflow in ("ws", "is"):
            need = 2 * self.rows * self.weight_beat_bits
            if need > 8 * self.weight_sram_bytes:
                raise HwsimError(
                    f"weight_sram_bytes={self.weight_sram_bytes} is too small: two {self.rows}x{self.cols} "
                    f"weight tiles of {self.weight_bits}-bit codes need {math.ceil(need / 8)} bytes"
                )
            if self.m_tile < 1:
                raise HwsimError(
                    f"input_sram_bytes={self.input_sram_bytes} / output_sram_bytes={self.output_sram_bytes} "
                    f"are too small: one tile needs {math.ceil(2 * self.act_beat_bits / 8)} input "
                    f"bytes and {math.ceil(self.cols * self.acc_bits / 8)} output bytes per row"
                )
        else:
            if self.k_chunk < 1:
                raise HwsimError(
                    f"input_sram_bytes={self.input_sram_bytes} / weight_sram_bytes={self.weight_sram_bytes} "
                    f"are too small: one K step needs {math.ceil(2 * self.rows * self.act_bits / 8)} input "
                    f"bytes and {math.ceil(2 * self.cols * self.weight_bits / 8)} weight bytes"
                )

    def _check_weight_zero_points(self) -> None:
        wzp = self.weight_zero_points
        if not isinstance(wzp, bool):
            raise HwsimError(f"weight_zero_points={wzp!r} is not allowed: expected true or false")
        if not wzp:
            return
        for name, value, allowed, why in (
                ("requantizer", self.requantizer, ("f32",), "the row term is a float32 lane's correction"),
                ("sparsity", self.sparsity, ("dense",), "the row sums need every activation of a row"),
                ("skip_zero_tiles", self.skip_zero_tiles, (False,), "a skipped fold loads no activations"),
                ("weight_format", self.weight_format, ("int8", "int4", "int2"), "integer weights have zero points")):
            if value not in allowed:
                raise HwsimError(f"weight_zero_points=True is not allowed with {name}={value!r}: expected "
                                 f"{' or '.join(repr(a) for a in allowed)} ({why})")

    def to_dict(self) -> dict:
        """The fields as a mapping; ``weight_zero_points`` only when True, so the metadata of the default RTL
        (and the co-simulation build keys derived from it) are those of before the field existed."""
        d = super().to_dict()
        if not d["weight_zero_points"]:
            del d["weight_zero_points"]
        return d

    @property
    def row_sum_bits(self) -> int:
        """Width of a row sum ``sum_k a[m, k]`` (signed): holds K < 2**dim_bits activations of ``act_bits``."""
        return self.act_bits + self.dim_bits

    def _check_sparsity(self) -> None:
        sp = self.sparsity
        if sp == "dense":
            return
        m = re.fullmatch(r"(\d+):(\d+)", sp) if isinstance(sp, str) else None
        allowed = '"dense" or "N:M" with M a power of two in [2, 16] and 1 <= N < M (e.g. "2:4", "1:4")'
        if not m:
            raise HwsimError(f"sparsity={sp!r} is not allowed: expected {allowed}")
        n, mm = int(m[1]), int(m[2])
        if not (2 <= mm <= 16 and mm & (mm - 1) == 0 and 1 <= n < mm):
            raise HwsimError(f"sparsity={sp!r} is not allowed: expected {allowed}")
        if self.dataflow != "ws":
            raise HwsimError(f"sparsity={sp!r} is not allowed with dataflow={self.dataflow!r}: N:M sparse PEs "
                             "exist for the ws dataflow only")
        if self.rows % n:
            raise HwsimError(f"sparsity={sp!r} is not allowed with rows={self.rows}: rows must be a multiple of "
                             f"N={n} (each group of M reduction steps occupies N PE rows)")
        if self.weight_format == "binary":
            raise HwsimError(f"sparsity={sp!r} is not allowed with weight_format='binary': binary weights have no "
                             "zero to prune; expected a format with 0 (int8, int4, int2, ternary, pow2)")

    # ------------------------------------------------------------------ sparsity
    @property
    def sparse(self) -> bool:
        """True for an N:M sparse array."""
        return self.sparsity != "dense"

    @property
    def sparse_nm(self) -> tuple[int, int]:
        """(N, M) of the sparsity pattern; (1, 1) for a dense array."""
        if not self.sparse:
            return 1, 1
        n, m = self.sparsity.split(":")
        return int(n), int(m)

    @property
    def index_bits(self) -> int:
        """Bits of one kept weight's index within its group of M (0 for a dense array)."""
        return (self.sparse_nm[1] - 1).bit_length()

    @property
    def ws_k_step(self) -> int:
        """WS/IS: reduction steps a fold covers, ``rows * M / N`` (``rows`` for a dense array)."""
        n, m = self.sparse_nm
        return self.rows * m // n

    # ------------------------------------------------------------------ derived widths
    @property
    def weight_bits(self) -> int:
        """Width of one weight code in bits."""
        return WEIGHT_BITS[self.weight_format]

    @property
    def pe_reg_write_bits(self) -> int:
        """Bits written by one ``pe_reg_write`` (one PE's pipeline register update in one cycle): the operands
        that move (or are rewritten) under the dataflow. ws = act_bits + acc_bits (activation hop right, psum
        hop down), os = act_bits + weight_bits + acc_bits (activation and weight hops, stationary accumulator
        rewritten), is = weight_bits + acc_bits. A ``pe_weight_load`` writes weight_bits."""
        return {
            "ws": self.act_bits + self.acc_bits,
            "os": self.act_bits + self.weight_bits + self.acc_bits,
            "is": self.weight_bits + self.acc_bits,
        }[self.dataflow]

    @property
    def out_bits(self) -> int:
        """Width of one requantized output (equal to ``act_bits``)."""
        return self.act_bits

    @property
    def product_bits(self) -> int:
        """Signed width that holds any single product."""
        a = self.act_bits
        return {
            "int8": a + 8,
            "int4": a + 4,
            "int2": a + 2,
            "ternary": a + 1,
            "binary": 2,
            "pow2": a + POW2_MAX_SHIFT + 1,
        }[self.weight_format]

    @property
    def max_dim(self) -> int:
        """Largest M, K or N a layer may have on the RTL."""
        return (1 << self.dim_bits) - 1

    # ------------------------------------------------------------------ tiling
    @property
    def m_tile(self) -> int:
        """WS/IS: rows of the activation matrix per tile (limited by input and output SRAM)."""
        by_in = (8 * self.input_sram_bytes) // (2 * self.act_beat_bits)
        by_out = (8 * self.output_sram_bytes) // (self.cols * self.acc_bits)
        return min(by_in, by_out, self.max_dim)

    @property
    def is_m_tile(self) -> int:
        """IS: weight columns (output channels) streamed per tile (weights play the role of WS activations;
        limited by the weight and output SRAMs); may be < 1 for SRAMs too small for IS."""
        by_w = (8 * self.weight_sram_bytes) // (2 * self.rows * self.weight_bits)
        by_out = (8 * self.output_sram_bytes) // (self.cols * self.acc_bits)
        return min(by_w, by_out, self.max_dim)

    @property
    def k_chunk(self) -> int:
        """OS: reduction steps per chunk (limited by the double-buffered input and weight SRAMs)."""
        by_in = (8 * self.input_sram_bytes) // (2 * self.rows * self.act_bits)
        by_w = (8 * self.weight_sram_bytes) // (2 * self.cols * self.weight_bits)
        return min(by_in, by_w, self.max_dim)

    @property
    def fold_steps(self) -> tuple[int, int]:
        """``(m_step, k_step)`` of one fold: the one dataflow-to-tiling map (cycle models, RTL and cosim use it).

        ws: ``(m_tile, ws_k_step)``, activation rows streamed per tile and reduction steps per fold; is:
        ``(is_m_tile, rows)``, the weights streamed in the role of WS activations (M and N swap roles); os:
        ``(rows, k_chunk)``. Raises for an IS config whose SRAMs hold no IS tile.
        """
        if self.dataflow == "ws":
            return self.m_tile, self.ws_k_step
        if self.dataflow == "is":
            if self.is_m_tile < 1:
                raise HwsimError(f"weight_sram_bytes={self.weight_sram_bytes} is too small for one IS tile")
            return self.is_m_tile, self.rows
        return self.rows, self.k_chunk

    # ------------------------------------------------------------------ DRAM streams
    @property
    def weight_beat_bits(self) -> int:
        """Width of one weight-stream beat: one row of ``cols`` weight codes (N:M: each code with its
        ``index_bits`` index above it)."""
        return self.cols * (self.weight_bits + self.index_bits)

    @property
    def act_beat_bits(self) -> int:
        """Width of one activation-stream beat: ``rows`` activations (N:M WS: ``rows * M / N``, every
        reduction step of the fold)."""
        return self.ws_k_step * self.act_bits

    @property
    def out_beat_bits(self) -> int:
        """Width of one output-stream beat: ``cols`` requantized outputs."""
        return self.cols * self.out_bits

    def beat_period(self, beat_bits: int) -> int:
        """Cycles between two DRAM beats of ``beat_bits`` bits at the configured bandwidth."""
        bw = Fraction(str(self.dram_bytes_per_cycle)) if isinstance(self.dram_bytes_per_cycle, float) \
            else Fraction(self.dram_bytes_per_cycle)
        return max(1, math.ceil(Fraction(beat_bits, 8) / bw))

    @property
    def weight_beat_period(self) -> int:
        return self.beat_period(self.weight_beat_bits)

    @property
    def act_beat_period(self) -> int:
        return self.beat_period(self.act_beat_bits)

    @property
    def fold_beat_periods(self) -> tuple[int, int]:
        """(period of a stationary-operand beat, period of a streamed-operand beat) of a fold: IS streams the
        weights and holds the activations stationary, WS and OS the other way round."""
        if self.dataflow == "is":
            return self.beat_period(self.cols * self.act_bits), self.beat_period(self.rows * self.weight_bits)
        return self.weight_beat_period, self.act_beat_period

    # ------------------------------------------------------------------ misc
    @property
    def peak_macs_per_cycle(self) -> int:
        """MACs the array can do per cycle (the utilization denominator)."""
        return self.rows * self.cols

    def describe(self) -> str:
        """One line for reports."""
        sp = f"{self.sparsity} sparse " if self.sparse else ""
        skip = ", zero-tile skipping" if self.skip_zero_tiles else ""
        gate = {"clock": "clock-gated", "operand": "operand-isolated", "none": "ungated"}[self.gating]
        return (f"{self.rows}x{self.cols} {self.dataflow.upper()} ({sp}{self.weight_format} PEs, "
                f"{self.acc_bits}-bit acc{skip}, {gate} idle lanes, {self.clock_mhz:g} MHz, "
                + (f"{self.global_buffer_bytes / 1024:g} KiB global buffer, port {self.dram_bytes_per_cycle:g} B/cycle)"
                   if self.global_buffer_bytes else f"DRAM {self.dram_bytes_per_cycle:g} B/cycle)"))

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def top_name(self) -> str:
        """Verilog module name of the generated top level."""
        sp = "_{}of{}".format(*self.sparse_nm) if self.sparse else ""
        f32 = "_f32" if self.requantizer == "f32" else ""
        gate = {"clock": "", "operand": "_og", "none": "_ng"}[self.gating]
        wzp = "_wzp" if self.weight_zero_points else ""
        return f"mac_array_{self.dataflow}_{self.weight_format}_{self.rows}x{self.cols}{sp}{f32}{wzp}{gate}"
