"""A tiny test-only accelerator family, ``accum``: one signed accumulator register behind a stream input.

It exists to show that a family is its own file plus one :class:`hwsim.families.Family` record: the CLI
(``generate``, ``cost``, ``synth``, ``families``) serves it from the registry with no change to
``hwsim/cli.py``. Every view takes the same frozen :class:`AccumConfig`:

* reference -- :func:`accumulate` (bit-exact NumPy),
* cycle model -- :func:`predict` (closed form, exact to the RTL), and the unit protocol that the one
  model-run loop (:mod:`hwsim.run`) drives: :func:`lower` a ``running_sum`` layer into one
  :class:`SumOp`, :func:`predict_op` its :class:`hwsim.unit.Stats`, :func:`run` it bit-exactly,
* inventory -- :func:`inventory` (priced by :mod:`hwsim.cost`),
* RTL -- :class:`Accumulator` and :func:`generate_verilog`.

The module is named without ``test_`` so pytest does not collect it; ``tests/test_families.py`` registers
:data:`FAMILY_RECORD` in a fixture.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from amaranth.back import verilog
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import FamilyConfig, check_choice, check_int
from hwsim.cost import Component, Inventory
from hwsim.errors import HwsimError
from hwsim.families import Family
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = [
    "FAMILY_RECORD",
    "LINT_WAIVERS",
    "OVERFLOW_MODES",
    "AccumConfig",
    "Accumulator",
    "accumulate",
    "generate_verilog",
    "inventory",
    "parse_preset",
    "predict",
]

OVERFLOW_MODES = ("saturate", "wrap")


@dataclass(frozen=True)
class AccumConfig(FamilyConfig):
    """A one-register accumulator (family ``accum``).

    Parameters
    ----------
    in_bits : int
        Signed input width (two's complement), at most ``acc_bits``.
    acc_bits : int
        Signed accumulator register width.
    overflow : {"saturate", "wrap"}
        What the register does after every addition that leaves its range.
    clock_mhz : float
        Clock frequency, for converting cycles to time.
    """

    in_bits: int = 8
    acc_bits: int = 16
    overflow: str = "saturate"
    clock_mhz: float = 500.0

    FAMILY: ClassVar[str] = "accum"

    def __post_init__(self):
        check_int("in_bits", self.in_bits, 2, 32)
        check_int("acc_bits", self.acc_bits, 2, 48)
        if self.acc_bits < self.in_bits:
            raise HwsimError(f"acc_bits={self.acc_bits} is not allowed: expected an integer >= in_bits "
                             f"({self.in_bits}), the register must hold one input")
        check_choice("overflow", self.overflow, OVERFLOW_MODES)
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, int | float) or not self.clock_mhz > 0:
            raise HwsimError(f"clock_mhz={self.clock_mhz!r} is not allowed: expected a number > 0")

    @property
    def top_name(self) -> str:
        return f"accum_{self.in_bits}_{self.acc_bits}_{self.overflow}"

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def acc_min(self) -> int:
        return -(1 << (self.acc_bits - 1))

    @property
    def acc_max(self) -> int:
        return (1 << (self.acc_bits - 1)) - 1


_PRESET_RE = re.compile(r"^accum-(\d+)-(\d+)$")


def parse_preset(name: str) -> AccumConfig | None:
    """``accum-IN-ACC`` (saturating) as a config; None for other names."""
    m = _PRESET_RE.match(str(name))
    return None if m is None else AccumConfig(in_bits=int(m[1]), acc_bits=int(m[2]))


# ---------------------------------------------------------------------------------------------- reference
def accumulate(x, cfg: AccumConfig) -> np.ndarray:
    """The register value after every input (int64, one per input), starting from a cleared register.

    Inputs are signed ``in_bits`` integers (checked). After each addition the ``acc_bits`` two's-complement
    register either saturates (clamps to ``[-2**(acc_bits-1), 2**(acc_bits-1) - 1]``) or wraps (keeps the
    low ``acc_bits`` bits). Wrapping is modular, so it is a cumulative sum reduced once; saturation depends
    on the order and runs as a loop.
    """
    x = np.asarray(x, dtype=np.int64).reshape(-1)
    lo_in, hi_in = -(1 << (cfg.in_bits - 1)), (1 << (cfg.in_bits - 1)) - 1
    if x.size and (x.min() < lo_in or x.max() > hi_in):
        raise HwsimError(f"x is not allowed: expected signed {cfg.in_bits}-bit inputs in [{lo_in}, {hi_in}], "
                         f"got values in [{x.min()}, {x.max()}]")
    if cfg.overflow == "wrap":
        low = np.cumsum(x) & np.int64((1 << cfg.acc_bits) - 1)
        return np.where(low > cfg.acc_max, low - np.int64(1 << cfg.acc_bits), low)
    out = np.empty(x.size, dtype=np.int64)
    acc = 0
    for i, v in enumerate(x.tolist()):
        acc = min(max(acc + v, cfg.acc_min), cfg.acc_max)
        out[i] = acc
    return out


# ---------------------------------------------------------------------------------------------- cycle model
def predict(cfg: AccumConfig, n: int) -> Stats:
    """Statistics of accumulating ``n`` inputs fed back to back after one ``clear`` cycle.

    ``cycles = n + 1``: the clear cycle (``i_data.ready`` is low while ``clear`` is high) and one accepted
    input per cycle; after the last of those edges ``o_acc`` holds the final sum. ``macs = n`` (one add per
    input; at most one a cycle: ``utilization(1)``). Actions: ``n`` adds of ``acc_adder``; ``n + 1`` writes
    of ``acc_reg`` (the clear writes zero into it too). No memory traffic and nothing family-specific in
    ``detail``.
    """
    check_int("n", n, 0)
    return Stats(n + 1, 0, n, ActionCounts({("acc_adder", "add"): n, ("acc_reg", "write"): n + 1}))


# ---------------------------------------------------------------------------------------------- unit protocol
@dataclass(frozen=True)
class SumOp:
    """One inference of a ``running_sum`` layer: the ``n`` inputs of one row, accumulated."""

    layer: str
    n: int


def lower(cfg: AccumConfig, layer) -> tuple[SumOp, ...]:
    """A ``running_sum`` layer (``layer.width`` inputs per row) as one :class:`SumOp`."""
    if getattr(layer, "kind", None) != "running_sum":
        raise HwsimError(f"layer {layer.name!r} (kind {layer.kind}) is not allowed on accum: expected running_sum")
    return (SumOp(layer.name, layer.width),)


def predict_op(cfg: AccumConfig, op: SumOp) -> Stats:
    return predict(cfg, op.n)


def reference(cfg: AccumConfig, layer, inputs) -> np.ndarray:
    """Each row's final register value (the spec, :func:`accumulate`)."""
    return np.array([[accumulate(row, cfg)[-1]] for row in np.asarray(inputs[0])], dtype=np.int64)


def run(cfg: AccumConfig, layer, inputs) -> tuple[np.ndarray, Stats]:
    """Value path: every row through the register, vectorized for wrapping and a loop for saturation (as the
    RTL adds one input per cycle); counts do not depend on the data."""
    x = np.asarray(inputs[0], dtype=np.int64)
    if cfg.overflow == "wrap":
        low = x.sum(axis=1) & np.int64((1 << cfg.acc_bits) - 1)
        out = np.where(low > cfg.acc_max, low - np.int64(1 << cfg.acc_bits), low)[:, None]
    else:
        out = reference(cfg, layer, [x])
    return out, predict_op(cfg, lower(cfg, layer)[0])


def inventory(cfg: AccumConfig) -> Inventory:
    """The priced components of ``cfg`` (named as in :func:`predict`'s action counts)."""
    return Inventory(f"accum {cfg.in_bits}-bit in, {cfg.acc_bits}-bit {cfg.overflow}", (
        Component("acc_adder", "adder", {"bits": cfg.acc_bits}),
        Component("acc_reg", "register", {"bits": cfg.acc_bits}),
        Component("controller", "controller", {"ge": 50}, 1, "clear/ready and saturation select, rough 50 GE"),
    ))


# ---------------------------------------------------------------------------------------------- RTL
#: Verilator lint waiver prepended to the generated file. Amaranth's backend emits signed operands of
#: unequal width (``$signed(o_acc) + $signed(i_data__payload)``, a 7-bit sum compared with a 6-bit
#: constant), which Verilog sign-extends as intended, even when the operands are widened explicitly in
#: the Amaranth source. Exactly this warning is waived, nothing else.
LINT_WAIVERS = """// Generated by hwsim (test-only accum family). Verilator waiver: Amaranth emits intentional
// mixed-width signed arithmetic.
/* verilator lint_off WIDTHEXPAND */
"""


class Accumulator(wiring.Component):
    """The accumulator top, built from one :class:`AccumConfig`.

    Ports
    -----
    clear : In, 1                     while high, the next edge writes 0 into the register; ``i_data.ready`` is low
    i_data : In stream, signed(in_bits)   one input per accepted beat (``valid & ready``); ready = ~clear
    o_acc : Out, signed(acc_bits)     the register: updated at the edge of every accepted beat
                                      (latency 1 cycle), saturating or wrapping per ``overflow``
    """

    def __init__(self, cfg: AccumConfig):
        self.cfg = cfg
        super().__init__({
            "clear": In(1),
            "i_data": In(stream.Signature(signed(cfg.in_bits))),
            "o_acc": Out(signed(cfg.acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        total = Signal(signed(cfg.acc_bits + 1))    # one more bit than the register: no overflow here
        m.d.comb += [
            total.eq(self.o_acc + self.i_data.payload),
            self.i_data.ready.eq(~self.clear),
        ]
        if cfg.overflow == "saturate":
            nxt = Mux(total > cfg.acc_max, cfg.acc_max, Mux(total < cfg.acc_min, cfg.acc_min, total))
        else:
            nxt = total[:cfg.acc_bits]
        with m.If(self.clear):
            m.d.sync += self.o_acc.eq(0)
        with m.Elif(self.i_data.valid):
            m.d.sync += self.o_acc.eq(nxt)
        return m


def generate_verilog(cfg: AccumConfig) -> tuple[str, dict]:
    """Verilog text of the top ``cfg.top_name`` and its metadata (config, ports from the signature)."""
    top = Accumulator(cfg)
    text = LINT_WAIVERS + verilog.convert(top, name=cfg.top_name, emit_src=False)
    meta = {"top": cfg.top_name, "family": cfg.family_key(), "config": cfg.to_dict(),
            "signature": top.metadata.as_json()}
    return text, meta


FAMILY_RECORD = Family(
    name="accum",
    config_cls=AccumConfig,
    description="test-only one-register accumulator (saturating or wrapping)",
    presets=("accum-8-16", "accum-4-6"),
    preset_pattern="accum-IN-ACC",
    parse_preset=parse_preset,
    workload_kinds=("running_sum",),
    reference=__name__,
    cycle_model=__name__,
    inventory=inventory,
    lower=lower,
    predict=predict_op,
    run=run,
    run_reference=reference,
    rtl=generate_verilog,
    synth_groups=(("accumulator (top-level logic)", ("top",), ("acc_adder", "acc_reg", "controller")),),
)
