"""Energy and area cost model of every hwsim family, after Accelergy: inventory x actions x tables.

An accelerator's :class:`Inventory` lists named :class:`Component` s, each of a :class:`ComponentClass`
(adder, multiplier, mac, shifter, mux, register, sram, dram, requantizer, controller; a family registers more
with :func:`register_component_class`, with the table entries they are priced from) with attributes
(bits, bytes, ...) and an instance count. A family's cycle model counts ``(component, action)`` pairs
(:class:`hwsim.stats.ActionCounts`). :meth:`CostModel.energy` prices the counts with each class's energy
per action; :meth:`CostModel.area` sums each component's area times its count. The sections below are
the shared tables and the formulas of the built-in classes.

Every number used for pricing lives in a versioned table of :class:`CostEntry` records that carry a value,
a unit, a full citation, the technology node, the supply voltage and the bit width it refers to. Derived
numbers (gate energies, per-format MACs, the requantizer) are built only from table entries, and
:meth:`CostModel.explain_mac` / :meth:`CostModel.explain_requant` list the entries a price was built from.

Reference point
---------------
45 nm, 0.9 V, calibrated to M. Horowitz, ISSCC 2014 (see ``HOROWITZ_2014``). Other nodes are reached with
energy and area factors from Stillmaker & Baas, Integration 2017 (``STILLMAKER_BAAS_2017``); see
``NODES`` and the ``scale.*`` entries.

Formulas (all at 45 nm; multiply energies by the node's energy factor and areas by its area factor)
-----------------------------------------------------------------------------------------------
* Adder of b bits: the straight line through Horowitz's 8-bit and 32-bit points,
  ``X(b) = X8 * (32 - b) / 24 + X32 * (b - 8) / 24`` (X = energy or area). The anchors are reproduced
  exactly; e.g. add(16) = 0.0533 pJ and 69.7 um^2.
* Multiplier of m x n bits: priced by its partial-product count P = m * n (an array multiplier has
  m*n AND gates and about m*n adder cells). For P <= 64 it is proportional to the 8x8 anchor,
  ``X8 * P / 64``; for P >= 64 it is the straight line in P through the 8x8 and 32x32 anchors,
  ``X8 * (1024 - P) / 960 + X32 * (P - 64) / 960``, which for a square b x b multiplier is
  ``a * b**2 + c`` (energy: a = 2.9/960 pJ, c = 0.2 - 64 a = 0.00667 pJ). Above 32x32 the same line is
  extrapolated. Both anchors are exact; mult(16)/mult(8) = (0.2*0.8 + 3.1*0.2)/0.2 = 3.9 in energy.
* SRAM access of 64 bits in a buffer of S bytes: linear in log2(S) through Horowitz's 8 KB / 32 KB / 1 MB
  points (10 / 20 / 100 pJ); below 8 KB the 8-32 KB slope (5 pJ per doubling) and above 1 MB the
  32 KB-1 MB slope (16 pJ per doubling) are extrapolated. The low-end line reaches 0 at 2 KB, so it is
  floored at the energy of writing 64 flip-flops (entry ``sram.floor_energy``, 0.241 pJ): such small
  buffers are built as flip-flop/latch arrays. An access of W bits costs W/64 of the 64-bit figure
  (``cfg.sram_word_bits``). Writes are priced like reads (no cited figure for a difference). The energy
  uses the whole buffer size: Horowitz's figures are for complete (internally banked) arrays, so
  ``cfg.sram_banks`` is not priced separately.
* Gates: one NAND2-equivalent (GE) has the NanGate 45 nm NAND2_X1 area; its energy per operation is
  derived from Horowitz's int8 adder, ``E_GE = E(int8 add) * A(NAND2) / A(int8 add)`` (assumes derived
  logic switches with the same activity per unit area as that adder). XNOR2 and MUX2 are 3 GE
  (12-transistor static CMOS cells vs the 4-transistor NAND2), a DFF is 4.522/0.798 = 5.67 GE (NanGate
  DFF_X1 / NAND2_X1 areas). A register bit write costs one DFF's worth of GE energy (registers are
  assumed clock-gated, so idle cycles cost nothing).
* DRAM: bytes * 8 * (pJ/bit of the selected DRAM); reads and writes alike; not node-scaled (it is a
  DRAM device + interface figure, not logic of the accelerator's node).
* Leakage is not modelled (reported as 0 with a note).

Per-format MAC (act_bits = a, acc_bits = acc; see :meth:`CostModel.explain_mac`)
-------------------------------------------------------------------------------
* int8 / int4 / int2: multiplier(a x w_bits) + adder(acc).
* ternary: negate = adder(a) + a MUX2 (select x or -x; the zero weight gates the accumulator enable)
  + adder(acc).
* binary: a XNOR2 + popcount/counter adder of 2 bits (the +-1 product) + adder(acc).
* pow2: negate = adder(a) + a MUX2, barrel shifter of ceil(log2(POW2_MAX_SHIFT + 1)) = 3 stages of
  (a + POW2_MAX_SHIFT) MUX2 (every stage sized at the full shifted width, an upper bound), + adder(acc).

Requantizer (one per column): rounding adder(acc) + barrel shifter of ceil(log2(acc)) stages of acc MUX2
+ two clamp comparators priced as adders(acc) + output clamp select of 2 * out_bits MUX2.

Multiplexer (class ``mux``, ``inputs``:1 of ``bits``; e.g. the activation select of an N:M sparse PE): a
binary tree of (inputs - 1) MUX2 per bit, each MUX2 = ``mux2.ge`` = 3 GE, so area = (inputs - 1) * bits *
3 * nand2.area (4:1 of 8 bits: 24 MUX2 = 72 GE = 57.46 um^2) and one select = (inputs - 1) * bits *
mux2.energy (the whole tree assumed to toggle: an upper bound).

Register writes (class ``register``): a write updates ``write_bits`` (default ``bits``) flip-flops, each a
``register.bit`` energy; a family sets ``write_bits`` when one update writes only part of a register.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from hwsim.config import WEIGHT_FORMATS
from hwsim.errors import HwsimError
from hwsim.models.spec import POW2_MAX_SHIFT, WEIGHT_BITS

__all__ = [
    "DRAM_TYPES",
    "NODES",
    "REF_NODE_NM",
    "REF_VOLTAGE_V",
    "TABLE_VERSION",
    "COMPONENT_CLASSES",
    "AreaReport",
    "Component",
    "ComponentClass",
    "CostEntry",
    "CostModel",
    "EnergyReport",
    "Inventory",
    "add_area_um2",
    "add_energy_pj",
    "base_entries",
    "explain_mac",
    "format_inventory",
    "format_tables",
    "mac_area_um2",
    "mac_energy_pj",
    "mult_area_um2",
    "mult_energy_pj",
    "register_component_class",
    "sram_access_energy_pj",
    "tables_as_dict",
]

#: Version of the tables below; bump it whenever a value, formula or citation changes.
TABLE_VERSION = "1.0.0"
REF_NODE_NM = 45
REF_VOLTAGE_V = 0.9

# ---------------------------------------------------------------------------------------------- sources
HOROWITZ_2014 = (
    'M. Horowitz, "1.1 Computing\'s Energy Problem (and what we can do about it)", IEEE International '
    "Solid-State Circuits Conference (ISSCC 2014), Digest of Technical Papers, pp. 10-14, "
    "doi:10.1109/ISSCC.2014.6757323 (tables of rough energy and area costs, 45 nm, 0.9 V)"
)
STILLMAKER_BAAS_2017 = (
    'A. Stillmaker and B. Baas, "Scaling equations for the accurate prediction of CMOS device performance '
    'from 180 nm to 7 nm", Integration, the VLSI Journal, vol. 58, pp. 74-81, 2017, '
    "doi:10.1016/j.vlsi.2017.02.002"
)
OCONNOR_2017 = (
    "M. O'Connor, N. Chatterjee, D. Lee, J. Wilson, A. Agrawal, S. W. Keckler and W. J. Dally, "
    '"Fine-Grained DRAM: Energy-Efficient DRAM for Extreme Bandwidth Systems", 50th IEEE/ACM '
    "International Symposium on Microarchitecture (MICRO-50), 2017"
)
NANGATE_45 = (
    "NanGate FreePDK45 Open Cell Library (NangateOpenCellLibrary, typical corner, 1.1 V, 25 C): "
    "NAND2_X1 = 0.798 um^2 (0.57 x 1.4 um), DFF_X1 = 4.522 um^2 (3.23 x 1.4 um)"
)
MISTRY_2007 = (
    'K. Mistry et al., "A 45nm Logic Technology with High-k+Metal Gate Transistors, Strained Silicon, '
    '9 Cu Interconnect Layers, 193nm Dry Patterning, and 100% Pb-free Packaging", IEEE International '
    "Electron Devices Meeting (IEDM 2007), pp. 247-250 (0.346 um^2 6T SRAM cell)"
)
HWSIM_ASSUMPTION = "hwsim assumption (no primary source; stated in the note)"
HWSIM_DERIVED = "hwsim derivation from the entries named in the note"


@dataclass(frozen=True)
class CostEntry:
    """One priced quantity: value in ``unit`` at ``node_nm`` / ``voltage_v`` for an operand of ``bits``.

    ``unit`` is one of pJ, pJ/bit, um^2, um^2/bit, GE (NAND2 equivalents) or x (a dimensionless factor).
    ``bits`` is the operand width the figure refers to; 1 for per-bit and per-gate figures and for
    dimensionless factors.
    """

    name: str
    value: float
    unit: str
    source: str
    node_nm: int
    voltage_v: float
    bits: int
    note: str = ""

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _entry(name, value, unit, source, bits, note="", node_nm=REF_NODE_NM, voltage_v=REF_VOLTAGE_V):
    return CostEntry(name, value, unit, source, node_nm, voltage_v, bits, note)


# ------------------------------------------------------------------------------------ primary entries
_H_NOTE = "Horowitz ISSCC 2014 table value (45 nm, 0.9 V)"
_ARITH = [
    _entry("int8_add.energy", 0.03, "pJ", HOROWITZ_2014, 8, _H_NOTE),
    _entry("int32_add.energy", 0.1, "pJ", HOROWITZ_2014, 32, _H_NOTE),
    _entry("int8_mult.energy", 0.2, "pJ", HOROWITZ_2014, 8, _H_NOTE + "; 8x8-bit multiply"),
    _entry("int32_mult.energy", 3.1, "pJ", HOROWITZ_2014, 32, _H_NOTE + "; 32x32-bit multiply"),
    _entry("fp16_add.energy", 0.4, "pJ", HOROWITZ_2014, 16, _H_NOTE + "; informational, not used"),
    _entry("fp32_add.energy", 0.9, "pJ", HOROWITZ_2014, 32, _H_NOTE + "; informational, not used"),
    _entry("fp16_mult.energy", 1.1, "pJ", HOROWITZ_2014, 16, _H_NOTE + "; informational, not used"),
    _entry("fp32_mult.energy", 3.7, "pJ", HOROWITZ_2014, 32, _H_NOTE + "; informational, not used"),
    _entry("int8_add.area", 36.0, "um^2", HOROWITZ_2014, 8, _H_NOTE),
    _entry("int32_add.area", 137.0, "um^2", HOROWITZ_2014, 32, _H_NOTE),
    _entry("int8_mult.area", 282.0, "um^2", HOROWITZ_2014, 8, _H_NOTE),
    _entry("int32_mult.area", 3495.0, "um^2", HOROWITZ_2014, 32, _H_NOTE),
]

_SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
_MEMORY = [
    _entry("sram.8KB.access64.energy", 10.0, "pJ", HOROWITZ_2014, 64,
           _H_NOTE + "; 64-bit cache access, 8 KB; used for reads and writes alike"),
    _entry("sram.32KB.access64.energy", 20.0, "pJ", HOROWITZ_2014, 64,
           _H_NOTE + "; 64-bit cache access, 32 KB; used for reads and writes alike"),
    _entry("sram.1MB.access64.energy", 100.0, "pJ", HOROWITZ_2014, 64,
           _H_NOTE + "; 64-bit cache access, 1 MB; used for reads and writes alike"),
    _entry("sram.bitcell.area", 0.346, "um^2/bit", MISTRY_2007, 1,
           "Intel 45 nm 6T SRAM cell; area does not depend on voltage (model reference voltage shown)"),
    _entry("sram.array_overhead", 2.0, "x", HWSIM_ASSUMPTION, 1,
           "SRAM macro area = bits * bitcell area * 2.0, i.e. 50% array efficiency (decoders, sense "
           "amplifiers, I/O, redundancy); compiled 45 nm macros are typically 40-70% efficient"),
]

_DRAM = [
    _entry("dram.lpddr4.energy_per_bit", 8.0, "pJ/bit", HWSIM_ASSUMPTION, 1,
           "default: 8 pJ/bit for an LPDDR4 channel (core + I/O); no single primary source verified, "
           "chosen between HBM2 (3.9 pJ/bit, O'Connor et al. 2017) and DDR3-class (20.3 pJ/bit, "
           "Horowitz 2014); LPDDR4 VDD2 = 1.1 V (JEDEC JESD209-4); not node-scaled",
           voltage_v=1.1),
    _entry("dram.ddr3.energy_per_bit", 1300.0 / 64.0, "pJ/bit", HOROWITZ_2014, 1,
           "Horowitz lists DRAM at 1.3-2.6 nJ per 64-bit access; we use the low end, 1.3 nJ / 64 b = "
           "20.3 pJ/bit (high end 40.6 pJ/bit) and treat it as DDR3-class (VDD 1.5 V, JEDEC JESD79-3); "
           "not node-scaled",
           voltage_v=1.5),
    _entry("dram.hbm2.energy_per_bit", 3.9, "pJ/bit", OCONNOR_2017, 1,
           "approximate HBM2 access energy (~3.9 pJ/bit, activation + data movement + I/O) reported by "
           "O'Connor et al.; HBM2 VDD 1.2 V (JEDEC JESD235A); not node-scaled",
           voltage_v=1.2),
]
DRAM_TYPES = ("lpddr4", "ddr3", "hbm2")

_GATES = [
    _entry("nand2.area", 0.798, "um^2", NANGATE_45, 1,
           "area of one NAND2 equivalent (GE) = NanGate NAND2_X1", voltage_v=1.1),
    _entry("dff.ge", 4.522 / 0.798, "GE", NANGATE_45, 1,
           "D flip-flop = DFF_X1 / NAND2_X1 area = 5.67 GE (register bit)", voltage_v=1.1),
    _entry("xnor2.ge", 3.0, "GE", HWSIM_ASSUMPTION, 1,
           "XNOR2 = 3 GE: 12-transistor static CMOS XNOR2 (incl. input inverters) / 4-transistor NAND2"),
    _entry("mux2.ge", 3.0, "GE", HWSIM_ASSUMPTION, 1,
           "MUX2 = 3 GE: AOI22 + output inverter + select inverter = 12 transistors / 4-transistor NAND2"),
    _entry("icg.ge", 5.0, "GE", HWSIM_ASSUMPTION, 1,
           "integrated clock-gating cell (a latch on the enable and an AND2 on the clock) = 5 GE: a latch is "
           "a little under a DFF's 5.67 GE minus one stage, plus the AND2; not taken from a cell library"),
    _entry("controller.ge", 10000.0, "GE", HWSIM_ASSUMPTION, 1,
           "rough estimate for the controller: tiling FSM, SRAM/DRAM address generators, layer-shape "
           "registers and counters, ~10k NAND2 equivalents"),
]

# --------------------------------------------------------------------------------- node scaling table
#: Stillmaker & Baas HP (high-performance PTM / PTM-MG) energy fits E(V) = a V^2 + b V + c.
_SB_ENERGY_FIT = {
    45: (1.018, -0.3107, 0.1539),
    32: (0.8367, -0.4341, 0.1701),
    20: (0.373, -0.1582, 0.04104),
    16: (0.2958, -0.1241, 0.03024),
    14: (0.2363, -0.09675, 0.02239),
    10: (0.2068, -0.09311, 0.02375),
    7: (0.1776, -0.09097, 0.02447),
}
#: Area factors relative to 45 nm from Stillmaker & Baas's area scaling table (45 nm row).
_SB_AREA_FROM_45 = {45: 1.0, 32: 0.46, 20: 0.21, 16: 0.19, 14: 0.17, 10: 0.1, 7: 0.059}
#: Supply voltage at each node: 0.9 V at 45 nm (Horowitz); the PTM / PTM-MG nominal VDD elsewhere.
_NODE_VDD = {45: 0.9, 32: 0.9, 28: 0.9, 22: 0.9, 20: 0.9, 16: 0.85, 14: 0.8, 10: 0.75, 7: 0.7}
#: Nodes without their own Stillmaker & Baas entry: linear interpolation in feature size.
_INTERPOLATED = {28: (32, 20), 22: (32, 20)}
NODES = (45, 32, 28, 22, 20, 16, 14, 10, 7)


def _sb_energy(node: int) -> float:
    a, b, c = _SB_ENERGY_FIT[node]
    v = _NODE_VDD[node]
    return a * v * v + b * v + c


def _node_factors() -> dict[int, tuple[float, float]]:
    out = {}
    for n in (45, 32, 20, 16, 14, 10, 7):
        e = 1.0 if n == REF_NODE_NM else _sb_energy(n) / _sb_energy(REF_NODE_NM)
        out[n] = (e, _SB_AREA_FROM_45[n])
    for n, (hi, lo) in _INTERPOLATED.items():
        t = (hi - n) / (hi - lo)
        out[n] = tuple(out[hi][i] + t * (out[lo][i] - out[hi][i]) for i in range(2))
    return out


_FACTORS = _node_factors()


def _scale_entries() -> list[CostEntry]:
    out = []
    for n in NODES:
        ef, af = _FACTORS[n]
        v = _NODE_VDD[n]
        if n == REF_NODE_NM:
            src = HOROWITZ_2014
            enote = anote = "reference node of the tables (factor 1)"
        elif n in _INTERPOLATED:
            hi, lo = _INTERPOLATED[n]
            src = STILLMAKER_BAAS_2017
            enote = anote = (f"interpolated linearly in feature size between the Stillmaker & Baas {hi} nm "
                             f"and {lo} nm factors; {n} nm is not a published S&B node")
        else:
            src = STILLMAKER_BAAS_2017
            a, b, c = _SB_ENERGY_FIT[n]
            a0, b0, c0 = _SB_ENERGY_FIT[REF_NODE_NM]
            enote = (f"E_{n}({v} V) / E_45(0.9 V) with S&B HP energy fits E(V) = aV^2+bV+c: "
                     f"{n} nm ({a}, {b}, {c}), 45 nm ({a0}, {b0}, {c0}); {v} V is the nominal VDD of the "
                     f"PTM model S&B used at {n} nm")
            anote = f"S&B area scaling factor from 45 nm to {n} nm"
        out.append(_entry(f"scale.energy.{n}nm", ef, "x", src, 1, enote, node_nm=n, voltage_v=v))
        out.append(_entry(f"scale.area.{n}nm", af, "x", src, 1, anote, node_nm=n, voltage_v=v))
    return out


_PRIMARY = {e.name: e for e in _ARITH + _MEMORY + _DRAM + _GATES}


def _v(name: str) -> float:
    return _PRIMARY[name].value


# ------------------------------------------------------------------------------------ derived entries
_E_GE = _v("int8_add.energy") * _v("nand2.area") / _v("int8_add.area")
_E_REG_BIT = _v("dff.ge") * _E_GE
_A_REG_BIT = _v("dff.ge") * _v("nand2.area")
_SRAM_FLOOR = 64 * _E_REG_BIT
_A_SRAM_BIT = _v("sram.bitcell.area") * _v("sram.array_overhead")
_DERIVED = [
    _entry("gate.energy_per_ge", _E_GE, "pJ", HWSIM_DERIVED, 1,
           "energy of one NAND2 equivalent per operation = int8_add.energy * nand2.area / int8_add.area "
           "(derived logic assumed to switch like Horowitz's 8-bit adder per unit area)"),
    _entry("dff.energy_per_bit", _E_REG_BIT, "pJ/bit", HWSIM_DERIVED, 1,
           "register bit write = dff.ge * gate.energy_per_ge (clock-gated registers: writes only)"),
    _entry("dff.area_per_bit", _A_REG_BIT, "um^2/bit", HWSIM_DERIVED, 1, "dff.ge * nand2.area"),
    _entry("xnor2.energy", _v("xnor2.ge") * _E_GE, "pJ", HWSIM_DERIVED, 1, "xnor2.ge * gate.energy_per_ge"),
    _entry("xnor2.area", _v("xnor2.ge") * _v("nand2.area"), "um^2", HWSIM_DERIVED, 1,
           "xnor2.ge * nand2.area"),
    _entry("mux2.energy", _v("mux2.ge") * _E_GE, "pJ", HWSIM_DERIVED, 1, "mux2.ge * gate.energy_per_ge"),
    _entry("mux2.area", _v("mux2.ge") * _v("nand2.area"), "um^2", HWSIM_DERIVED, 1, "mux2.ge * nand2.area"),
    _entry("icg.energy", _v("icg.ge") * _E_GE, "pJ", HWSIM_DERIVED, 1,
           "one cycle of a closed clock gate = icg.ge * gate.energy_per_ge (its latch and AND2 see the clock; the "
           "registers behind it do not switch; leakage is not modelled)"),
    _entry("icg.area", _v("icg.ge") * _v("nand2.area"), "um^2", HWSIM_DERIVED, 1, "icg.ge * nand2.area"),
    _entry("sram.area_per_bit", _A_SRAM_BIT, "um^2/bit", HWSIM_DERIVED, 1,
           "sram.bitcell.area * sram.array_overhead"),
    _entry("sram.floor_energy", _SRAM_FLOOR, "pJ", HWSIM_DERIVED, 64,
           "floor of the 64-bit SRAM access energy = 64 * dff.energy_per_bit; the 8-32 KB slope "
           "extrapolated below 8 KB would reach 0 at 2 KB"),
    _entry("leakage", 0.0, "pJ", HWSIM_ASSUMPTION, 1, "leakage energy is not modelled (reported as 0)"),
]

_SECTIONS = [
    ("Arithmetic (Horowitz ISSCC 2014)", _ARITH),
    ("On-chip memory", _MEMORY),
    ("DRAM (per bit; --dram lpddr4 | ddr3 | hbm2)", _DRAM),
    ("Gates, registers, controller", _GATES),
    ("Derived from the entries above", _DERIVED),
    ("Node scaling factors relative to 45 nm / 0.9 V", _scale_entries()),
]
_BASE: dict[str, CostEntry] = {e.name: e for _, group in _SECTIONS for e in group}
_DERIVED_V = {e.name: e.value for e in _DERIVED}
_NO_NODE_SCALE = {e.name for e in _DRAM}


def base_entries() -> dict[str, CostEntry]:
    """Every table entry at the reference node (45 nm, 0.9 V), by name."""
    return dict(_BASE)


# ------------------------------------------------------------------------------------ checks
def _check_int(name: str, value, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise HwsimError(f"{name}={value!r} is not allowed: expected an integer >= {lo}")
    return value


def _check_format(weight_format) -> str:
    if weight_format not in WEIGHT_FORMATS:
        raise HwsimError(f"weight_format={weight_format!r} is not allowed: expected one of "
                         f"{', '.join(WEIGHT_FORMATS)}")
    return weight_format


# ------------------------------------------------------------------------------------ 45 nm primitives
def _line(x: float, x0: float, y0: float, x1: float, y1: float) -> float:
    """The straight line through (x0, y0) and (x1, y1) at x, written so that both points are exact."""
    return y0 * ((x1 - x) / (x1 - x0)) + y1 * ((x - x0) / (x1 - x0))


def _adder45(bits: int, kind: str) -> float:
    return _line(bits, 8, _v(f"int8_add.{kind}"), 32, _v(f"int32_add.{kind}"))


def _mult45(a_bits: int, b_bits: int, kind: str) -> float:
    p = a_bits * b_bits
    x8 = _v(f"int8_mult.{kind}")
    if p <= 64:
        return x8 if p == 64 else x8 * (p / 64)
    return _line(p, 64, x8, 1024, _v(f"int32_mult.{kind}"))


def _sram64_45(size_bytes: int) -> float:
    x = math.log2(size_bytes)
    (s0, e0), (s1, e1), (s2, e2) = ((math.log2(s), e) for s, e in _SRAM_POINTS)
    e = _line(x, s0, e0, s1, e1) if x <= s1 else _line(x, s1, e1, s2, e2)
    return max(e, _SRAM_FLOOR)


@dataclass(frozen=True)
class _Part:
    name: str
    count: int
    unit_energy_pj: float
    unit_area_um2: float
    source: str
    bits: int
    note: str


def _adder_part(name: str, bits: int, count: int = 1, what: str = "adder") -> _Part:
    return _Part(name, count, _adder45(bits, "energy"), _adder45(bits, "area"), HOROWITZ_2014, bits,
                 f"{count} x {bits}-bit {what}: adder line through int8_add and int32_add "
                 "(X8*(32-b)/24 + X32*(b-8)/24)")


def _gate_part(name: str, gate: str, count: int, bits: int, what: str) -> _Part:
    return _Part(name, count, _DERIVED_V[f"{gate}.energy"], _DERIVED_V[f"{gate}.area"], HWSIM_DERIVED + "; "
                 + NANGATE_45 + "; " + HOROWITZ_2014, bits,
                 f"{count} x {gate.upper()} ({what}); {gate}.energy / {gate}.area per gate")


def _mac_parts(weight_format: str, act_bits: int, acc_bits: int) -> list[_Part]:
    _check_format(weight_format)
    a = _check_int("act_bits", act_bits)
    acc = _check_int("acc_bits", acc_bits)
    acc_part = _adder_part("accumulator", acc, what="accumulator adder")
    if weight_format in ("int8", "int4", "int2"):
        w = WEIGHT_BITS[weight_format]
        p = a * w
        rule = ("X(int8_mult) * P/64" if p <= 64 else
                "line through int8_mult (P=64) and int32_mult (P=1024): X8*(1024-P)/960 + X32*(P-64)/960")
        mult = _Part("multiplier", 1, _mult45(a, w, "energy"), _mult45(a, w, "area"), HOROWITZ_2014,
                     max(a, w), f"{a}x{w}-bit multiplier, P = {p} partial products, {rule}")
        return [mult, acc_part]
    if weight_format == "ternary":
        return [_adder_part("negate", a, what="negate (two's complement) adder"),
                _gate_part("sign_select", "mux2", a, a, "select x or -x"), acc_part]
    if weight_format == "binary":
        return [_gate_part("xnor", "xnor2", a, a, "XNOR multiply of +-1 codes"),
                _adder_part("popcount", 2, what="popcount/counter adder forming the +-1 product"),
                acc_part]
    # pow2: sign handling, then a logarithmic barrel shifter over the shift range 0..POW2_MAX_SHIFT.
    stages = math.ceil(math.log2(POW2_MAX_SHIFT + 1))
    width = a + POW2_MAX_SHIFT
    return [_adder_part("negate", a, what="negate (two's complement) adder"),
            _gate_part("sign_select", "mux2", a, a, "select x or -x"),
            _gate_part("shifter", "mux2", stages * width, width,
                       f"barrel shifter: {stages} stages x {width} bits "
                       f"(act_bits + max shift {POW2_MAX_SHIFT})"),
            acc_part]


def _requant_parts(acc_bits: int, out_bits: int) -> list[_Part]:
    acc = _check_int("acc_bits", acc_bits)
    out = _check_int("out_bits", out_bits)
    stages = max(1, math.ceil(math.log2(acc)))
    return [_adder_part("round", acc, what="rounding adder"),
            _gate_part("shifter", "mux2", stages * acc, acc, f"barrel shifter: {stages} stages x {acc} bits"),
            _adder_part("clamp_compare", acc, count=2, what="clamp comparator (priced as an adder)"),
            _gate_part("clamp_select", "mux2", 2 * out, out, f"clamp select: 2 levels x {out} bits")]



def _parts_pj(m, parts: list[_Part]) -> float:
    return math.fsum(p.count * p.unit_energy_pj for p in parts) * m.energy_scale


def _parts_um2(m, parts: list[_Part]) -> float:
    return math.fsum(p.count * p.unit_area_um2 for p in parts) * m.area_scale


def f32_requant_parts(acc_bits: int, out_bits: int) -> list[_Part]:
    """The float32 (ONNX Runtime) requantizer lane as parts priced from the existing table entries.

    hwsim assumption (no published figure for this block): the lane is what ``rtl/f32_requantizer.py``
    builds: a leading-one detector and a normalising barrel shifter over ``acc_bits`` (int -> float32,
    rounding adder on the 24-bit significand), a 24 x 24-bit significand multiplier (priced on the
    Horowitz int32 multiplier line at P = 576 partial products), a 24-bit rounding adder for the product,
    a right barrel shifter to the integer (half-to-even rounding adder), the zero-point adder and the
    clamp. Energies are per conversion (every part toggles once).
    """
    acc = _check_int("acc_bits", acc_bits)
    out = _check_int("out_bits", out_bits)
    stages = max(1, math.ceil(math.log2(acc)))
    return [_gate_part("lod", "mux2", acc, acc, f"leading-one detector over {acc} bits (~1 MUX2 per bit)"),
            _gate_part("normalize", "mux2", stages * acc, acc, f"normalising barrel shifter: {stages} x {acc} bits"),
            _adder_part("round_to_f32", 24, what="significand rounding adder (int -> float32)"),
            _Part("significand_mult", 1, _mult45(24, 24, "energy"), _mult45(24, 24, "area"), HOROWITZ_2014, 24,
                  "24x24-bit significand multiplier, P = 576 on the int8_mult..int32_mult line"),
            _adder_part("round_product", 24, what="product rounding adder (float32 * float32)"),
            _gate_part("denormalize", "mux2", 6 * 32, 32, "right barrel shifter to the integer: 6 x 32 bits"),
            _adder_part("round_half_even", 32, what="half-to-even rounding adder"),
            _adder_part("zero_point", out + 2, what="zero-point adder"),
            _adder_part("clamp_compare", out + 2, count=2, what="clamp comparator (priced as an adder)"),
            _gate_part("clamp_select", "mux2", 2 * out, out, f"clamp select: 2 levels x {out} bits")]

# ------------------------------------------------------------------------------------ inventory
@dataclass(frozen=True)
class Component:
    """One named component of an accelerator's inventory (Accelergy's "component").

    ``cls`` names a :class:`ComponentClass` (adder, multiplier, mac, shifter, register, sram, dram,
    requantizer, controller, or one a family registered); ``attrs`` are that class's attributes (bits,
    bytes, ...); ``count`` is how many instances the accelerator has (area is per instance x count;
    energy is per counted action, whichever instance performs it).
    """

    name: str
    cls: str
    attrs: dict = field(default_factory=dict)
    count: int = 1
    note: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "class": self.cls, "attrs": dict(self.attrs), "count": self.count,
                "note": self.note}


@dataclass(frozen=True)
class Inventory:
    """The components of one accelerator, in report order."""

    name: str
    components: tuple[Component, ...]

    def __post_init__(self):
        names = [c.name for c in self.components]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise HwsimError(f"inventory {self.name}: component name {dup[0]!r} is not allowed twice")
        for c in self.components:
            if c.cls not in COMPONENT_CLASSES:
                raise HwsimError(f"inventory {self.name}: component {c.name!r} class={c.cls!r} is not allowed: "
                                 f"expected one of {', '.join(COMPONENT_CLASSES)}")
            COMPONENT_CLASSES[c.cls].check(c)

    def __getitem__(self, name: str) -> Component:
        for c in self.components:
            if c.name == name:
                return c
        raise HwsimError(f"component={name!r} is not allowed: expected one of "
                         f"{', '.join(c.name for c in self.components)}")

    def names(self) -> list[str]:
        return [c.name for c in self.components]

    def as_dict(self) -> dict:
        return {"name": self.name, "components": [c.as_dict() for c in self.components]}


@dataclass(frozen=True)
class ComponentClass:
    """A class of hardware component: its attributes, its actions' energies and its area.

    ``actions`` maps an action name to ``(unit, energy)``: ``energy(model, attrs)`` is the pJ of one
    action of one ``unit`` (an access of one word, one byte, one operation). ``area(model, attrs)`` is
    the um^2 of one instance, or None for off-chip components. ``explain(model, attrs)`` lists the table
    entries a price was built from. ``defaults`` fill attributes a component leaves out.
    """

    name: str
    doc: str
    attributes: tuple[str, ...]
    actions: dict
    area: Callable | None
    explain: Callable | None = None
    defaults: dict = field(default_factory=dict)

    def check(self, comp: Component) -> None:
        missing = [a for a in self.attributes if a not in comp.attrs and a not in self.defaults]
        if missing:
            raise HwsimError(f"component {comp.name!r} ({self.name}) attribute {missing[0]!r} is missing: "
                             f"expected {', '.join(self.attributes)}")
        unknown = sorted(set(comp.attrs) - set(self.attributes))
        if unknown:
            raise HwsimError(f"component {comp.name!r} ({self.name}) attribute {unknown[0]!r} is not allowed: "
                             f"expected one of {', '.join(self.attributes)}")
        _check_int("count", comp.count, 0)

    def attrs_of(self, comp: Component) -> dict:
        return {**self.defaults, **comp.attrs}


COMPONENT_CLASSES: dict[str, ComponentClass] = {}


def register_component_class(cc: ComponentClass, entries: list[CostEntry] = (), section: str | None = None,
                             replace: bool = False) -> ComponentClass:
    """Add a component class, and the cited table entries it prices from (shown by ``hwsim cost``)."""
    if cc.name in COMPONENT_CLASSES and not replace:
        raise HwsimError(f"component class {cc.name!r} is already registered")
    for e in entries:
        if e.name in _BASE and _BASE[e.name] != e:
            raise HwsimError(f"cost entry {e.name!r} is already defined differently")
    COMPONENT_CLASSES[cc.name] = cc
    if entries:
        title = section or f"Component class {cc.name}"
        existing = next((g for t, g in _SECTIONS if t == title), None)
        if existing is None:
            _SECTIONS.append((title, list(entries)))
        else:
            existing.extend(e for e in entries if e not in existing)
        _BASE.update({e.name: e for e in entries})
    return cc


# ------------------------------------------------------------------------------------ reports
@dataclass(frozen=True)
class EnergyReport:
    """Energy of one run per inventory component in pJ (``parts``, plus ``leakage``); ``total_pj`` is
    their sum. Component energies also read as attributes (``report.dram``)."""

    parts: dict
    total_pj: float
    cycles: int
    node_nm: int
    dram_type: str
    table_version: str = TABLE_VERSION
    notes: tuple[str, ...] = ()

    def components(self) -> dict[str, float]:
        return dict(self.parts)

    def __getattr__(self, name):
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        return d


@dataclass(frozen=True)
class AreaReport:
    """Silicon area per inventory component in um^2 (``parts``, instances included; ``classes`` gives
    each component's class); ``total_um2`` is their sum, ``total_mm2`` the same in mm^2."""

    parts: dict
    classes: dict
    total_um2: float
    total_mm2: float
    node_nm: int
    table_version: str = TABLE_VERSION
    notes: tuple[str, ...] = ()

    def components(self) -> dict[str, float]:
        return dict(self.parts)

    def of_class(self, *classes: str) -> float:
        """Total area of the components of the given classes."""
        return math.fsum(v for k, v in self.parts.items() if self.classes[k] in classes)

    def __getattr__(self, name):
        parts = self.__dict__.get("parts", {})
        if name in parts:
            return parts[name]
        raise AttributeError(name)

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["notes"] = list(self.notes)
        return d


# ------------------------------------------------------------------------------------ the model
class CostModel:
    """Energy/area prices at ``node_nm`` with off-chip memory ``dram``.

    ``node_nm`` is one of :data:`NODES`; ``dram`` one of :data:`DRAM_TYPES`. Energies are the 45 nm
    figures times ``energy_scale``, areas times ``area_scale`` (both 1 at 45 nm); DRAM is not scaled.
    """

    def __init__(self, node_nm: int = REF_NODE_NM, dram: str = "lpddr4"):
        if isinstance(node_nm, bool) or not isinstance(node_nm, int) or node_nm not in NODES:
            raise HwsimError(f"node_nm={node_nm!r} is not allowed: expected one of "
                             f"{', '.join(str(n) for n in NODES)}")
        if dram not in DRAM_TYPES:
            raise HwsimError(f"dram={dram!r} is not allowed: expected one of {', '.join(DRAM_TYPES)}")
        self.node_nm = node_nm
        self.dram = dram
        self.voltage_v = _NODE_VDD[node_nm]
        self.energy_scale, self.area_scale = _FACTORS[node_nm]

    def __repr__(self) -> str:
        return f"CostModel(node_nm={self.node_nm}, dram={self.dram!r})"

    # ------------------------------------------------------------------ tables
    def _scaled(self, e: CostEntry) -> CostEntry:
        if self.node_nm == REF_NODE_NM or e.name in _NO_NODE_SCALE or e.name.startswith("scale."):
            return e
        if e.unit in ("pJ", "pJ/bit"):
            f, key = self.energy_scale, "energy"
        elif e.unit in ("um^2", "um^2/bit"):
            f, key = self.area_scale, "area"
        else:
            return e
        return dataclasses.replace(
            e, value=e.value * f, node_nm=self.node_nm, voltage_v=self.voltage_v,
            source=f"{e.source}; node-scaled per {STILLMAKER_BAAS_2017}",
            note=f"{e.note}; scaled from 45 nm / 0.9 V by x{f:.4g} (scale.{key}.{self.node_nm}nm)")

    def entries(self) -> dict[str, CostEntry]:
        """Every table entry at this model's node (energies and areas scaled), by name."""
        return {name: self._scaled(e) for name, e in _BASE.items()}

    def entry(self, name: str) -> CostEntry:
        if name not in _BASE:
            raise HwsimError(f"cost entry {name!r} is not allowed: expected one of {', '.join(_BASE)}")
        return self._scaled(_BASE[name])

    def sections(self) -> list[tuple[str, list[CostEntry]]]:
        from hwsim.families import all_families

        all_families()  # the registered families' modules add their component classes and entries
        return [(title, [self._scaled(e) for e in group]) for title, group in _SECTIONS]

    # ------------------------------------------------------------------ primitives
    def add_energy_pj(self, bits: int) -> float:
        """Energy of one ``bits``-wide integer add."""
        return _adder45(_check_int("bits", bits), "energy") * self.energy_scale

    def add_area_um2(self, bits: int) -> float:
        return _adder45(_check_int("bits", bits), "area") * self.area_scale

    def mult_energy_pj(self, a_bits: int, b_bits: int | None = None) -> float:
        """Energy of one ``a_bits`` x ``b_bits`` integer multiply (square if ``b_bits`` is None)."""
        a = _check_int("a_bits", a_bits)
        b = a if b_bits is None else _check_int("b_bits", b_bits)
        return _mult45(a, b, "energy") * self.energy_scale

    def mult_area_um2(self, a_bits: int, b_bits: int | None = None) -> float:
        a = _check_int("a_bits", a_bits)
        b = a if b_bits is None else _check_int("b_bits", b_bits)
        return _mult45(a, b, "area") * self.area_scale

    def register_bit_energy_pj(self) -> float:
        return _E_REG_BIT * self.energy_scale

    def register_bit_area_um2(self) -> float:
        return _A_REG_BIT * self.area_scale

    def sram_access_energy_pj(self, size_bytes: int, word_bits: int = 64) -> float:
        """Energy of one access (read or write) of ``word_bits`` to an SRAM of ``size_bytes``."""
        size = _check_int("size_bytes", size_bytes)
        w = _check_int("word_bits", word_bits)
        e64 = _sram64_45(size)
        return (e64 if w == 64 else e64 * (w / 64)) * self.energy_scale

    def sram_area_um2(self, size_bytes: int) -> float:
        return 8 * _check_int("size_bytes", size_bytes) * _A_SRAM_BIT * self.area_scale

    def dram_energy_pj_per_bit(self) -> float:
        return _BASE[f"dram.{self.dram}.energy_per_bit"].value

    # ------------------------------------------------------------------ composite units
    def _explain(self, parts: list[_Part], prefix: str) -> list[CostEntry]:
        out = []
        for p in parts:
            for kind, unit_value, unit, f in (("energy", p.unit_energy_pj, "pJ", self.energy_scale),
                                              ("area", p.unit_area_um2, "um^2", self.area_scale)):
                note = p.note
                if self.node_nm != REF_NODE_NM:
                    note += f"; scaled from 45 nm by x{f:.4g} (scale.{kind}.{self.node_nm}nm)"
                source = p.source if self.node_nm == REF_NODE_NM else f"{p.source}; {STILLMAKER_BAAS_2017}"
                out.append(CostEntry(f"{prefix}.{p.name}.{kind}", p.count * unit_value * f, unit, source,
                                     self.node_nm, self.voltage_v, p.bits, note))
        return out

    def explain_mac(self, weight_format: str, act_bits: int, acc_bits: int) -> list[CostEntry]:
        """The components of one MAC of ``weight_format``: an energy (pJ) and an area (um^2) entry each."""
        return self._explain(_mac_parts(weight_format, act_bits, acc_bits), f"mac.{weight_format}")

    def mac_energy_pj(self, weight_format: str, act_bits: int, acc_bits: int) -> float:
        parts = _mac_parts(weight_format, act_bits, acc_bits)
        return math.fsum(p.count * p.unit_energy_pj for p in parts) * self.energy_scale

    def mac_area_um2(self, weight_format: str, act_bits: int, acc_bits: int) -> float:
        parts = _mac_parts(weight_format, act_bits, acc_bits)
        return math.fsum(p.count * p.unit_area_um2 for p in parts) * self.area_scale

    def explain_requant(self, acc_bits: int, out_bits: int) -> list[CostEntry]:
        return self._explain(_requant_parts(acc_bits, out_bits), "requant")

    def requant_energy_pj(self, acc_bits: int, out_bits: int) -> float:
        parts = _requant_parts(acc_bits, out_bits)
        return math.fsum(p.count * p.unit_energy_pj for p in parts) * self.energy_scale

    def requant_area_um2(self, acc_bits: int, out_bits: int) -> float:
        parts = _requant_parts(acc_bits, out_bits)
        return math.fsum(p.count * p.unit_area_um2 for p in parts) * self.area_scale

    # ------------------------------------------------------------------ pricing
    def _inventory(self, inv) -> Inventory:
        if isinstance(inv, Inventory):
            return inv
        if dataclasses.is_dataclass(inv) and not isinstance(inv, type):
            from hwsim.families import family_of

            return family_of(inv).load("inventory")(inv)
        raise HwsimError(f"cfg={inv!r} is not allowed: expected an Inventory or a registered family's config")

    def action_energy_pj(self, comp: Component, action: str) -> float:
        """pJ of one ``action`` of ``comp`` (one unit of the action: see :attr:`ComponentClass.actions`)."""
        cc = COMPONENT_CLASSES[comp.cls]
        if action not in cc.actions:
            raise HwsimError(f"action {comp.name}.{action} is not allowed: class {cc.name} has actions "
                             f"{', '.join(cc.actions) or 'none'}")
        return cc.actions[action][1](self, cc.attrs_of(comp))

    def component_area_um2(self, comp: Component) -> float:
        """um^2 of one instance of ``comp`` (0 for off-chip components)."""
        cc = COMPONENT_CLASSES[comp.cls]
        return 0.0 if cc.area is None else cc.area(self, cc.attrs_of(comp))

    def unit_energies(self, inv) -> dict[tuple[str, str], float]:
        """pJ per counted action, for every (component, action) the inventory can perform."""
        inv = self._inventory(inv)
        return {(c.name, a): self.action_energy_pj(c, a) for c in inv.components
                for a in COMPONENT_CLASSES[c.cls].actions}

    def energy(self, inv, actions, cycles: int) -> EnergyReport:
        """Price ``actions`` ((component, action) counts, or an object with ``pairs()``) on ``inv`` (an
        :class:`Inventory` or a family config) in pJ. ``cycles`` is recorded; leakage is not modelled."""
        inv = self._inventory(inv)
        if not hasattr(actions, "pairs"):
            raise HwsimError(f"actions={actions!r} is not allowed: expected ActionCounts (or an object with pairs())")
        _check_int("cycles", cycles, 0)
        parts = {c.name: 0.0 for c in inv.components if COMPONENT_CLASSES[c.cls].actions}
        by_name = {c.name: c for c in inv.components}
        acc: dict[str, list[float]] = {k: [] for k in parts}
        for (name, action), n in actions.pairs().counts.items():
            if name not in by_name:
                raise HwsimError(f"action count component={name!r} is not allowed: expected one of "
                                 f"{', '.join(by_name)}")
            if n:
                acc[name].append(n * self.action_energy_pj(by_name[name], action))
        parts = {k: math.fsum(v) for k, v in acc.items()}
        parts["leakage"] = 0.0
        notes = ("leakage is not modelled (0 pJ)",
                 f"DRAM {self.dram}: {self.dram_energy_pj_per_bit():.4g} pJ/bit, reads and writes alike",
                 *(f"{c.name}: {c.note}" for c in inv.components if c.note))
        return EnergyReport(parts=parts, total_pj=math.fsum(parts.values()), cycles=cycles,
                            node_nm=self.node_nm, dram_type=self.dram, notes=notes)

    def area(self, inv) -> AreaReport:
        """Silicon area of ``inv`` (an :class:`Inventory` or a family config) in um^2 (and mm^2)."""
        inv = self._inventory(inv)
        parts = {c.name: c.count * self.component_area_um2(c) for c in inv.components
                 if COMPONENT_CLASSES[c.cls].area is not None}
        total = math.fsum(parts.values())
        notes = tuple(f"{c.name}: {c.note}" for c in inv.components if c.note)
        return AreaReport(parts=parts, classes={c.name: c.cls for c in inv.components if c.name in parts},
                          total_um2=total, total_mm2=total * 1e-6, node_nm=self.node_nm, notes=notes)

    def price_inventory(self, inv) -> list[dict]:
        """Per component: class, attributes, count, area per instance and in all, pJ per action."""
        inv = self._inventory(inv)
        rows = []
        for c in inv.components:
            cc = COMPONENT_CLASSES[c.cls]
            a = self.component_area_um2(c)
            rows.append({**c.as_dict(), "attrs": cc.attrs_of(c), "area_um2_each": a, "area_um2": a * c.count,
                         "actions": {act: {"unit": unit, "pj": self.action_energy_pj(c, act)}
                                     for act, (unit, _) in cc.actions.items()}})
        return rows

    def tables_as_dict(self) -> dict:
        return tables_as_dict(self)


# ---------------------------------------------------------------------------- built-in component classes
def _mux2s(a: dict) -> int:
    """MUX2 gates of an ``inputs``:1 multiplexer of ``bits``: a binary tree of inputs - 1 MUX2 per bit."""
    return (a["inputs"] - 1) * a["bits"]


def _reg_write_bits(a: dict) -> int:
    return a["bits"] if a.get("write_bits") is None else a["write_bits"]


for _cc in (
    ComponentClass("adder", "integer adder of `bits` (line through Horowitz's int8 and int32 adds); 'idle': an add "
                   "on padding (an idle lane's adder without operand isolation)", ("bits",),
                   {"add": ("operation", lambda m, a: m.add_energy_pj(a["bits"])),
                    "idle": ("slot", lambda m, a: m.add_energy_pj(a["bits"]))},
                   lambda m, a: m.add_area_um2(a["bits"])),
    ComponentClass("multiplier", "integer multiplier of `a_bits` x `b_bits` (priced by partial products); `gating` "
                   "prices an idle slot as the mac class does: 'none' as a multiply, 'operand'/'clock' as a closed "
                   "clock gate on the operands (whose area it adds)",
                   ("a_bits", "b_bits", "gating"),
                   {"mult": ("operation", lambda m, a: m.mult_energy_pj(a["a_bits"], a["b_bits"])),
                    "idle": ("slot", lambda m, a: m.mult_energy_pj(a["a_bits"], a["b_bits"])
                             if a["gating"] == "none" else _DERIVED_V["icg.energy"] * m.energy_scale)},
                   lambda m, a: m.mult_area_um2(a["a_bits"], a["b_bits"])
                   + (0.0 if a["gating"] == "none" else _DERIVED_V["icg.area"] * m.area_scale),
                   lambda m, a: [] if a["gating"] == "none" else [m.entry("icg.ge"), m.entry("icg.energy"),
                                                                  m.entry("icg.area")],
                   defaults={"gating": "none"}),
    ComponentClass("mac", "multiply-accumulate PE datapath of a weight format (int*: multiplier; ternary: "
                   "negate+select; binary: XNOR-popcount; pow2: barrel shift) + `acc_bits` accumulator adder; "
                   "`gating` prices an idle slot: 'none' as a MAC, 'operand'/'clock' as a closed clock gate on "
                   "the operand registers (whose area it adds)",
                   ("weight_format", "act_bits", "acc_bits", "gating"),
                   {"mac": ("operation", lambda m, a: m.mac_energy_pj(a["weight_format"], a["act_bits"],
                                                                      a["acc_bits"])),
                    "idle": ("slot", lambda m, a: m.mac_energy_pj(a["weight_format"], a["act_bits"], a["acc_bits"])
                             if a["gating"] == "none" else _DERIVED_V["icg.energy"] * m.energy_scale)},
                   lambda m, a: m.mac_area_um2(a["weight_format"], a["act_bits"], a["acc_bits"])
                   + (0.0 if a["gating"] == "none" else _DERIVED_V["icg.area"] * m.area_scale),
                   lambda m, a: m.explain_mac(a["weight_format"], a["act_bits"], a["acc_bits"])
                   + ([] if a["gating"] == "none" else [m.entry("icg.ge"), m.entry("icg.energy"), m.entry("icg.area")]),
                   defaults={"gating": "none"}),
    ComponentClass("shifter", "logarithmic barrel shifter: `stages` levels of `bits` MUX2", ("bits", "stages"),
                   {"shift": ("operation", lambda m, a: a["stages"] * a["bits"] * _DERIVED_V["mux2.energy"]
                              * m.energy_scale)},
                   lambda m, a: a["stages"] * a["bits"] * _DERIVED_V["mux2.area"] * m.area_scale),
    ComponentClass("register", "flip-flop register of `bits`; a write updates `write_bits` (default `bits`); "
                   "with `clock_gate` an explicit clock-gating cell (its area; an 'idle' cycle costs the closed gate)",
                   ("bits", "write_bits", "clock_gate"),
                   {"write": ("write", lambda m, a: _reg_write_bits(a) * m.register_bit_energy_pj()),
                    "idle": ("cycle", lambda m, a: _DERIVED_V["icg.energy"] * m.energy_scale)},
                   lambda m, a: a["bits"] * m.register_bit_area_um2()
                   + (_DERIVED_V["icg.area"] * m.area_scale if a["clock_gate"] else 0.0),
                   defaults={"write_bits": None, "clock_gate": False}),
    ComponentClass("sram", "SRAM buffer of `bytes`, accessed in words of `word_bits`", ("bytes", "word_bits"),
                   {"read": ("word", lambda m, a: m.sram_access_energy_pj(a["bytes"], a["word_bits"])),
                    "write": ("word", lambda m, a: m.sram_access_energy_pj(a["bytes"], a["word_bits"]))},
                   lambda m, a: m.sram_area_um2(a["bytes"])),
    ComponentClass("dram", "off-chip DRAM of the cost model's type (--dram); no on-chip area", (),
                   {"read": ("byte", lambda m, a: 8 * m.dram_energy_pj_per_bit()),
                    "write": ("byte", lambda m, a: 8 * m.dram_energy_pj_per_bit())}, None),
    ComponentClass("requantizer", "power-of-two requantizer lane: rounding adder, barrel shifter, clamp; with kind "
                   "'f32' also the float32 (ONNX Runtime) lane and the zero-point correction adders (their area)",
                   ("acc_bits", "out_bits", "kind"),
                   {"convert": ("output", lambda m, a: m.requant_energy_pj(a["acc_bits"], a["out_bits"])),
                    "convert_f32": ("output", lambda m, a: _parts_pj(m, f32_requant_parts(a["acc_bits"],
                                                                                             a["out_bits"]))),
                    "zp_add": ("output", lambda m, a: m.add_energy_pj(a["acc_bits"])),
                    "zp_row_add": ("operation", lambda m, a: m.add_energy_pj(a["acc_bits"])),
                    "zp_row_mult": ("operation", lambda m, a: m.mult_energy_pj(a["acc_bits"], 9))},
                   lambda m, a: m.requant_area_um2(a["acc_bits"], a["out_bits"]) + (
                       _parts_um2(m, f32_requant_parts(a["acc_bits"], a["out_bits"])) + m.add_area_um2(a["acc_bits"])
                       if a["kind"] == "f32" else 0.0),
                   lambda m, a: m.explain_requant(a["acc_bits"], a["out_bits"]), defaults={"kind": "shift"}),
    ComponentClass("mux", "`inputs`:1 multiplexer of `bits`: a tree of (inputs - 1) MUX2 per bit (mux2.energy, "
                   "mux2.area; MUX2 = mux2.ge = 3 GE at nand2.area); a select toggles the whole tree (upper bound)",
                   ("inputs", "bits"),
                   {"select": ("operation", lambda m, a: _mux2s(a) * _DERIVED_V["mux2.energy"] * m.energy_scale)},
                   lambda m, a: _mux2s(a) * _DERIVED_V["mux2.area"] * m.area_scale,
                   lambda m, a: [m.entry("mux2.ge"), m.entry("mux2.energy"), m.entry("mux2.area")]),
    ComponentClass("controller", "control logic of `ge` NAND2 equivalents (default: entry controller.ge)",
                   ("ge",), {}, lambda m, a: a["ge"] * _v("nand2.area") * m.area_scale,
                   defaults={"ge": _v("controller.ge")}),
):
    register_component_class(_cc)


# ---------------------------------------------------------------------------- module-level shortcuts
_DEFAULT = CostModel()


def add_energy_pj(bits: int) -> float:
    """45 nm integer add energy (exact Horowitz values at 8 and 32 bits)."""
    return _DEFAULT.add_energy_pj(bits)


def add_area_um2(bits: int) -> float:
    return _DEFAULT.add_area_um2(bits)


def mult_energy_pj(a_bits: int, b_bits: int | None = None) -> float:
    """45 nm integer multiply energy (exact Horowitz values at 8x8 and 32x32)."""
    return _DEFAULT.mult_energy_pj(a_bits, b_bits)


def mult_area_um2(a_bits: int, b_bits: int | None = None) -> float:
    return _DEFAULT.mult_area_um2(a_bits, b_bits)


def mac_energy_pj(weight_format: str, act_bits: int, acc_bits: int) -> float:
    return _DEFAULT.mac_energy_pj(weight_format, act_bits, acc_bits)


def mac_area_um2(weight_format: str, act_bits: int, acc_bits: int) -> float:
    return _DEFAULT.mac_area_um2(weight_format, act_bits, acc_bits)


def explain_mac(weight_format: str, act_bits: int, acc_bits: int) -> list[CostEntry]:
    return _DEFAULT.explain_mac(weight_format, act_bits, acc_bits)


def sram_access_energy_pj(size_bytes: int, word_bits: int = 64) -> float:
    return _DEFAULT.sram_access_energy_pj(size_bytes, word_bits)


# ---------------------------------------------------------------------------- presentation
def _source_keys(entries) -> dict[str, int]:
    keys: dict[str, int] = {}
    for e in entries:
        keys.setdefault(e.source, len(keys) + 1)
    return keys


def tables_as_dict(model: CostModel | None = None) -> dict:
    """All entries of ``model`` (default: 45 nm, LPDDR4) as plain JSON-ready data."""
    model = _DEFAULT if model is None else model
    return {
        "table_version": TABLE_VERSION,
        "node_nm": model.node_nm,
        "voltage_v": model.voltage_v,
        "dram": model.dram,
        "energy_scale": model.energy_scale,
        "area_scale": model.area_scale,
        "sections": [{"title": title, "entries": [e.as_dict() for e in group]}
                     for title, group in model.sections()],
    }


def _fmt_value(x: float) -> str:
    return f"{x:.6g}"


def format_tables(model: CostModel | None = None) -> str:
    """Human-readable tables of every entry with its source, node, voltage and width."""
    model = _DEFAULT if model is None else model
    sections = model.sections()
    keys = _source_keys(e for _, group in sections for e in group)
    lines = [
        f"hwsim cost tables, version {TABLE_VERSION}",
        f"model: {model.node_nm} nm, {model.voltage_v} V, DRAM {model.dram} "
        f"({model.dram_energy_pj_per_bit():.4g} pJ/bit); energy x{model.energy_scale:.4g}, "
        f"area x{model.area_scale:.4g} relative to 45 nm / 0.9 V",
    ]
    head = f"  {'name':<30} {'value':>12} {'unit':<9} {'node':>5} {'V':>5} {'bits':>4}  src  note"
    for title, group in sections:
        lines += ["", title, head]
        for e in group:
            lines.append(f"  {e.name:<30} {_fmt_value(e.value):>12} {e.unit:<9} {e.node_nm:>5} "
                         f"{e.voltage_v:>5.2f} {e.bits:>4}  [{keys[e.source]}]  {e.note}")
    lines += ["", "MAC per weight format (act_bits 8, or 1 for binary; acc_bits 32)",
              f"  {'format':<10} {'energy pJ':>10} {'area um^2':>10}"]
    for fmt in WEIGHT_FORMATS:
        a = 1 if fmt == "binary" else 8
        e, ar = model.mac_energy_pj(fmt, a, 32), model.mac_area_um2(fmt, a, 32)
        lines.append(f"  {fmt:<10} {e:>10.4g} {ar:>10.4g}")
    lines += ["", "Component classes (what an inventory's components may be; units are per action)",
              f"  {'class':<12} {'attributes':<34} {'actions':<30} description"]
    for cc in COMPONENT_CLASSES.values():
        acts = ", ".join(f"{a}/{unit}" for a, (unit, _) in cc.actions.items()) or "(area only)"
        lines.append(f"  {cc.name:<12} {', '.join(cc.attributes) or '-':<34} {acts:<30} {cc.doc}")
    lines += ["", "Sources"]
    lines += [f"  [{k}] {src}" for src, k in keys.items()]
    return "\n".join(lines) + "\n"


def format_inventory(model: CostModel, inv: Inventory) -> str:
    """An inventory priced at ``model``'s node: per component its class, attributes, count, area and the
    energy of each action."""
    rows = model.price_inventory(inv)
    area = model.area(inv)
    acts = [", ".join(f"{a} {v['pj']:.4g}/{v['unit']}" for a, v in r["actions"].items()) or "-" for r in rows]
    wn = max([len("component"), *(len(r["name"]) for r in rows)])
    wc = max([len("class"), *(len(r["class"]) for r in rows)])
    wa = max([len("pJ per action"), *(len(a) for a in acts)])
    lines = [f"Inventory of {inv.name}, priced at {model.node_nm} nm, {model.voltage_v} V, DRAM {model.dram} "
             f"(hwsim.cost tables v{TABLE_VERSION}; 'hwsim cost' prints every entry and its source)", "",
             f"  {'component':<{wn}} {'class':<{wc}} {'count':>6} {'um^2 each':>11} {'um^2 total':>12}  "
             f"{'pJ per action':<{wa}} attributes"]
    for r, act in zip(rows, acts, strict=True):
        attrs = ", ".join(f"{k}={v}" for k, v in r["attrs"].items() if v is not None)
        lines.append(f"  {r['name']:<{wn}} {r['class']:<{wc}} {r['count']:>6} {r['area_um2_each']:>11.1f} "
                     f"{r['area_um2']:>12.1f}  {act:<{wa}} {attrs}")
    lines += [f"  {'total':<{wn}} {'':<{wc}} {'':>6} {'':>11} {area.total_um2:>12.1f}  "
              f"= {area.total_mm2:.4f} mm^2", ""]
    lines += [f"  note: {n}" for n in area.notes]
    for c in inv.components:
        explain = COMPONENT_CLASSES[c.cls].explain
        built = [] if explain is None else explain(model, COMPONENT_CLASSES[c.cls].attrs_of(c))
        if not built:
            continue
        lines += ["", f"  {c.name} ({c.cls}) is built from:"]
        for e in built:
            lines.append(f"    {e.name:<40} {e.value:>10.4g} {e.unit:<5} {e.note}")
    return "\n".join(lines) + "\n"
