"""RF interferometer arrays (family ``rf-array``): config, cycle-level models, inventories and registry record.

Two views of one config:

* ``target="rf"`` -- the physical RF array: one SVD core processor of ``n`` ports (a V^H mesh, ``n``
  variable attenuators, a U mesh; see :func:`hwsim.models.rf_mesh.svd_map`) with one DAC per tunable
  element (all programmed in parallel), ``n`` signal DACs generating the input vector, ``n`` ADCs, a
  Benes switch matrix in front of the mesh and a digital post-processing adder per port.
  :func:`predict_gemm` and :func:`predict_tt` time a dense layer (tiled into n x n blocks) or a TT layer
  (cores run one after another on the same processor, ``reuse`` arrangement of
  :mod:`hwsim.models.rf_tt`) in controller cycles.
* ``target="emulator"`` -- the digital fixed-point emulator of one programmed ``n``-port mesh
  (:mod:`hwsim.models.rf_array`, RTL in :mod:`hwsim.rtl.rf_array`), timed exactly by
  :func:`predict_emulator`.

Every cycle model returns the unit protocol's frozen :class:`hwsim.unit.Stats` (cycles, stalls, MACs, the
priced actions; no memory traffic: the processor alone), with what only a GEMM record has (``name``, ``m``,
``k``, ``n``, ``folds`` = tiles) in its ``detail``.

Physical system timing (one n x n tile of a layer, ``m`` input vectors)::

    program  = dac_update_cycles                      (every DAC of the tile settles in parallel)
    rf       = ceil(rf_depth * rf_stage_ns / ns_per_cycle)   (rf_depth = 2 mesh depths + 1 attenuator column)
    stream   = m * adc_cycles                         (signal DAC -> RF -> ADC, one vector per ADC conversion)
    post     = 1                                      (digital accumulate of the last vector)
    tile cycles = program + rf + stream + post; tiles run back to back.

Idle ports (``gating``, docs/idle_lanes.md): an edge tile (``k`` or the output count not a multiple of ``n``)
holds ``rows <= n`` inputs and ``cols <= n`` outputs. Per vector its ``rows`` signal DACs and ``cols`` ADCs
(and, after the first k tile of an output block, ``cols`` post-adder lanes) do real work; the other ports are
padding. Real work is counted as ``convert`` / ``add``; the padding ports as idle slots, named by
``gating``: ``"none"`` -- ``("signal_dac", "idle")``, ``("adc", "idle")``, ``("post", "idle")``, each priced
as the real action (a zero converted, a discarded code added); ``"clock"`` -- the port's converter is not
clocked: ``("signal_dac_gate", "idle")``, ``("adc_gate", "idle")``, one closed clock gate each (the post lane
of a gated ADC holds: not counted). ``detail['idle_slots']`` counts the tile's padding MAC slots,
``vectors * (n * n - rows * cols)`` per tile, the share of the mesh's ``n x n`` MACs a vector passes that are
not real. The phase and attenuator DACs have no idle ports: an edge tile's SVD of the zero-padded block sets
every phase and attenuator of both meshes, and all are programmed.

Emulator timing (exact to the RTL; cycle 1 is the first cycle ``busy`` is high)::

    cycles = 1 + (C - 1) * dac_update_cycles + V + L,   C = code_count, L = 7 * columns + 3

(codes accepted one per ``dac_update_cycles``; V vectors, one per cycle; L pipeline registers: per column a
rotator of 3 -- operands, products, rounded and saturated sums -- and a mixer of 4 -- operands, products,
pair sums, rounded and saturated sums -- and the output screen's rotator, 3). Stalls are
the cycles of the RUN phase without an input vector (0 with an always-valid source).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import ClassVar

from hwsim.config import FamilyConfig, check_choice, check_int, check_number
from hwsim.errors import HwsimError
from hwsim.families import Family, model_cosim_options
from hwsim.models import rf_array as ref
from hwsim.models.rf_mesh import MESH_STYLES, mzi_count
from hwsim.models.rf_tt import TTLayer, benes_switches, stage_shapes
from hwsim.stats import ActionCounts
from hwsim.unit import Stats

__all__ = [
    "FAMILY",
    "GATINGS",
    "TARGETS",
    "RfArrayConfig",
    "inventory",
    "parse_preset",
    "predict_emulator",
    "predict_gemm",
    "predict_op",
    "predict_tt",
]

TARGETS = ("rf", "emulator")
#: Idle-port choices: ``none`` (padding ports convert at full energy), ``clock`` (their converters' sample
#: clocks are gated; docs/idle_lanes.md).
GATINGS = ("none", "clock")


@dataclass(frozen=True)
class RfArrayConfig(FamilyConfig):
    """An RF interferometer array and its fixed-point emulator (family ``rf-array``).

    Parameters
    ----------
    n : int
        Ports (modes) of each mesh; an n x n unitary mesh has n(n-1)/2 interferometers.
    mesh : {"clements", "reck"}
        Mesh topology: rectangular (Clements, depth n, balanced loss) or triangular (Reck, depth 2n-3).
    target : {"rf", "emulator"}
        What the inventory prices: the physical RF array or the digital emulator of its mesh.
    dac_bits : int
        Phase DAC resolution in bits; a phase code k means the angle 2 pi k / 2**dac_bits.
    adc_bits : int
        Resolution of the output ADCs in bits.
    data_bits : int
        Emulator: signed width of the real and of the imaginary part of every complex sample.
    coef_bits : int
        Emulator: fraction bits of the cos/sin tables (entries are signed coef_bits + 2 bits).
    dac_update_cycles : int
        Controller cycles one phase-DAC update takes to settle (the emulator accepts one code per update).
    adc_cycles : int
        Controller cycles of one ADC conversion (one output vector per conversion).
    rf_stage_ns : float
        RF propagation delay through one column of interferometers (or attenuators), in ns.
    loss_db : float
        Insertion loss of one interferometer in dB (used by the error model of studies).
    clock_mhz : float
        Controller clock frequency in MHz.
    buffer_bytes : int
        Physical target: the SRAM buffer (input slice, partial sums, outputs), bytes.
    gating : {"clock", "none"}
        Physical target: what the signal DACs, ADCs and post-adder lanes of an edge tile's padding ports do.
        ``"clock"`` (default): each port's converters have a clock gate on their sample clock, closed for the
        tile's padding ports (one closed gate per skipped conversion; the post lane behind a gated ADC
        holds); ``"none"``: they run, converting (and adding) zeros at full energy. Values and cycles are the
        same; the emulator target has no idle ports (see docs/idle_lanes.md for the default's reasons).
    """

    n: int = 8
    mesh: str = "clements"
    target: str = "rf"
    dac_bits: int = 8
    adc_bits: int = 10
    data_bits: int = 16
    coef_bits: int = 12
    dac_update_cycles: int = 1
    adc_cycles: int = 1
    rf_stage_ns: float = 0.05
    loss_db: float = 0.0
    clock_mhz: float = 250.0
    buffer_bytes: int = 16 * 1024
    gating: str = "clock"

    FAMILY: ClassVar[str] = "rf-array"
    #: Emulator pipeline registers of a rotator (its operands, products, rounded sums) and of a 2x2 mixer
    #: (operands, products, pair sums, rounded sums): see :mod:`hwsim.rtl.rf_mzi`.
    ROTATOR_STAGES: ClassVar[int] = 3
    MIXER_STAGES: ClassVar[int] = 4

    def __post_init__(self):
        check_int("n", self.n, 1, 64)
        check_choice("mesh", self.mesh, MESH_STYLES)
        check_choice("target", self.target, TARGETS)
        check_int("dac_bits", self.dac_bits, 1, 12)
        check_int("adc_bits", self.adc_bits, 1, 16)
        check_int("data_bits", self.data_bits, 4, 32)
        check_int("coef_bits", self.coef_bits, 2, 24)
        check_int("dac_update_cycles", self.dac_update_cycles, 1, 1 << 16)
        check_int("adc_cycles", self.adc_cycles, 1, 1 << 16)
        check_number("rf_stage_ns", self.rf_stage_ns, 0.0, False, 1e6)
        check_number("loss_db", self.loss_db, 0.0, False, 100.0)
        check_number("clock_mhz", self.clock_mhz, 0.0, True, 100_000.0)
        check_int("buffer_bytes", self.buffer_bytes, 64, 1 << 30)
        check_choice("gating", self.gating, GATINGS)

    @property
    def ns_per_cycle(self) -> float:
        return 1000.0 / self.clock_mhz

    @property
    def peak_macs_per_cycle(self) -> int:
        """An n-port mesh multiplies one n-vector by an n x n matrix per cycle."""
        return self.n * self.n

    @property
    def top_name(self) -> str:
        """Verilog module name of the emulator top."""
        return f"rf_mesh_{self.mesh}_{self.n}_d{self.data_bits}_c{self.coef_bits}_p{self.dac_bits}"

    @property
    def mzis(self) -> int:
        return mzi_count(self.n)

    @property
    def columns(self) -> int:
        """Pipeline columns of the mesh layout (MZI columns)."""
        return len(ref.mesh_layout(self.n, self.mesh))

    @property
    def codes(self) -> int:
        """Phase codes of one mesh program (2 per MZI + n output phases)."""
        return ref.code_count(self.n, self.mesh)

    @property
    def latency(self) -> int:
        """Emulator pipeline registers from input to output: a rotator and a mixer per column, then the
        output screen's rotator (``(ROTATOR_STAGES + MIXER_STAGES) * columns + ROTATOR_STAGES``)."""
        return (self.ROTATOR_STAGES + self.MIXER_STAGES) * self.columns + self.ROTATOR_STAGES

    @property
    def rf_cycles(self) -> int:
        """Cycles of RF propagation through the SVD processor (two meshes + the attenuator column)."""
        return math.ceil((2 * self.columns + 1) * self.rf_stage_ns / self.ns_per_cycle - 1e-9)

    @property
    def tile_codes(self) -> int:
        """DAC settings of one SVD tile: both meshes' phase shifters and the n attenuators."""
        return 2 * self.codes + self.n

    def describe(self) -> str:
        return (f"{self.n}-port {self.mesh} RF array ({self.target}; {self.dac_bits}-bit phase DACs, "
                f"{self.adc_bits}-bit ADCs, emulator {self.data_bits}-bit data / {self.coef_bits}-bit tables, "
                f"{self.clock_mhz:g} MHz)")


_PRESET_RE = re.compile(r"^rf-array-(\d+)(?:-(clements|reck))?(?:-(emulator))?$")


def parse_preset(name: str) -> RfArrayConfig | None:
    """``rf-array-N[-clements|reck][-emulator]`` as a config; None for other names."""
    m = _PRESET_RE.match(str(name))
    if not m:
        return None
    return RfArrayConfig(n=int(m[1]), mesh=m[2] or "clements", target="emulator" if m[3] else "rf")


# ---------------------------------------------------------------------------------------------- cycle models
def predict_emulator(cfg: RfArrayConfig, vectors: int) -> Stats:
    """Exact RTL statistics of programming the emulator once and streaming ``vectors`` input vectors, as the
    unit protocol's :class:`~hwsim.unit.Stats` (``macs``: 4 real MACs per complex MAC of the n x n mesh;
    ``detail``: ``name`` "mesh", ``m`` = vectors, ``k`` = ``n`` = ports, ``folds`` 1)."""
    check_int("vectors", vectors, 1)
    c, v = cfg.codes, vectors
    cycles = 1 + (c - 1) * cfg.dac_update_cycles + v + cfg.latency
    k = cfg.mzis
    actions = ActionCounts({("code_reg", "write"): c, ("rotator", "rotate"): k * v, ("mixer", "mix"): k * v,
                            ("screen", "rotate"): cfg.n * v})
    return Stats(cycles, 0, 4 * cfg.n * cfg.n * v, actions,
                 detail={"name": "mesh", "m": v, "k": cfg.n, "n": cfg.n, "folds": 1})


def _idle_actions(cfg: RfArrayConfig, signal: int, adc: int, post: int) -> dict:
    """The idle-port slots of ``cfg.gating`` (see the module docstring): padding ports' signal-DAC and ADC
    conversion slots and post-adder lane slots."""
    if cfg.gating == "clock":  # the converters are not clocked; the post lane behind a gated ADC holds
        idle = {("signal_dac_gate", "idle"): signal, ("adc_gate", "idle"): adc}
    else:
        idle = {("signal_dac", "idle"): signal, ("adc", "idle"): adc, ("post", "idle"): post}
    return {key: v for key, v in idle.items() if v}


def _tile_stats(cfg: RfArrayConfig, vectors: int, k: int, out: int) -> tuple[int, int, dict, int]:
    """Cycles, tiles, actions and padding MAC slots of a ``k``-input, ``out``-output matrix tiled onto the
    processor and fed ``vectors`` vectors. Every output block feeds all ``k`` inputs through its k tiles (real
    signal-DAC ports: ``k`` per block); every k tile converts its block's real outputs (real ADC ports: ``out``
    per k-tile row); the post-adder adds them on every k tile after the first."""
    n = cfg.n
    kt, nt = math.ceil(k / n), math.ceil(out / n)
    tiles = kt * nt
    per_tile = cfg.dac_update_cycles + cfg.rf_cycles + vectors * cfg.adc_cycles + 1
    slots = tiles * vectors * n                       # port slots of one converter bank
    signal, adc, post = vectors * nt * k, vectors * kt * out, vectors * (kt - 1) * out
    acts = {
        ("dac", "convert"): tiles * cfg.tile_codes,
        ("phase_shifter", "set"): tiles * 2 * cfg.codes,
        ("attenuator", "set"): tiles * n,
        ("signal_dac", "convert"): signal,
        ("adc", "convert"): adc,
        ("post", "add"): post,
        **_idle_actions(cfg, slots - signal, slots - adc, (kt - 1) * nt * vectors * n - post),
    }
    return tiles * per_tile, tiles, acts, vectors * (tiles * n * n - k * out)


def predict_gemm(cfg: RfArrayConfig, m: int, k: int, n: int, name: str = "gemm") -> Stats:
    """Physical-array statistics of ``out (m, n) = a (m, k) @ w (k, n)``: w is tiled into n x n SVD tiles
    (``ceil(k / cfg.n) * ceil(n / cfg.n)``), each programmed once and fed the m input vectors. The processor
    alone: no buffer or DRAM traffic (a model layer's :func:`hwsim.rf_array_layers.predict` adds it).
    ``detail``: ``name``, ``m``, ``k``, ``n``, ``folds`` (the tiles) and ``idle_slots`` (the edge tiles'
    padding MAC slots; their ports' actions are named by ``cfg.gating``, see the module docstring)."""
    for f, v in (("m", m), ("k", k), ("n", n)):
        check_int(f, v, 1)
    cycles, tiles, acts, idle = _tile_stats(cfg, m, k, n)
    return Stats(cycles, 0, m * k * n, ActionCounts(acts),
                 detail={"name": name, "m": m, "k": k, "n": n, "folds": tiles, "idle_slots": idle})


def predict_op(cfg: RfArrayConfig, op) -> Stats:
    """Counts-only statistics of one GEMM op (``m``, ``k``, ``n``, ``layer``) on the physical array (see
    :func:`predict_gemm`)."""
    return predict_gemm(cfg, op.m, op.k, op.n, name=op.layer)


def predict_tt(cfg: RfArrayConfig, layer: TTLayer, vectors: int, name: str = "tt") -> Stats:
    """Physical-array statistics of a TT layer on one processor: each core's matrix (r m x n r) is tiled
    onto the n-port processor and fed its B_k vectors per input vector; between cores the outputs are
    digitized and reordered in memory (``reuse``); the DACs are re-programmed once per core tile. The
    processor alone, like :func:`predict_gemm`. ``detail``: ``name``, ``m`` = vectors, ``k`` = N,
    ``n`` = M, ``folds`` (the tiles of all cores) and ``idle_slots`` (their padding MAC slots)."""
    check_int("vectors", vectors, 1)
    cycles, total = 0, ActionCounts({})
    folds = idle = 0
    for st in stage_shapes(layer):
        c, tiles, acts, pad = _tile_stats(cfg, vectors * st["vectors"], st["q"], st["p"])
        cycles += c
        folds += tiles
        idle += pad
        total = total + ActionCounts(acts)
    macs = vectors * sum(st["vectors"] * st["p"] * st["q"] for st in stage_shapes(layer))
    return Stats(cycles, 0, macs, total, detail={"name": name, "m": vectors, "k": layer.n, "n": layer.m,
                                                  "folds": folds, "idle_slots": idle})


# ---------------------------------------------------------------------------------------------- cost classes
SUI_TTRFNN = ('"In-Sensor Radio Frequency Computing for Energy-Efficient Intelligent Radar" (Sui et al.): '
              "TT-RFNN / RTT-RFNN, 2x2 RF interferometer meshes (context for the device classes, no figure taken)")
WALDEN_1999 = ('R. H. Walden, "Analog-to-digital converter survey and analysis", IEEE Journal on Selected Areas in '
               "Communications, vol. 17, no. 4, pp. 539-550, 1999 (figure of merit E = FoM * 2**bits per conversion)")
MURMANN_SURVEY = ("B. Murmann, ADC Performance Survey 1997-2025, https://github.com/bmurmann/ADC-survey "
                  "(xls/ADCsurvey_rev20250609.xlsx, ISSCC and VLSI sheets)")
#: Selection behind the survey-derived ADC entries (reproducible from the spreadsheet's columns).
MURMANN_SELECTION = ("median over the 55 ISSCC/VLSI designs of 2015-2024 with ENOB 7-11 ((SNDR_plot - 1.76) / "
                     "6.02) and a Nyquist rate of 10 MHz-1 GHz (fsnyq)")
TSAI_2019 = ('J.-H. Tsai, Y.-H. Lin, C.-C. Hung, "A 3.5 GHz low insertion loss variation CMOS phase shifter", '
             'Microwave and Optical Technology Letters, Apr. 2019, pp. 863-866 (0.18 um CMOS, 360 deg continuous '
             'tuning, zero DC consumption, chip 1.08 x 0.82 mm^2 with pads)')
BENES_1965 = ('V. E. Benes, "Mathematical Theory of Connecting Networks and Telephone Traffic", Academic Press, '
              "1965 (rearrangeable network of L/2 (2 log2 L - 1) 2x2 switches)")


def _cost_entries():
    from hwsim.cost import HWSIM_ASSUMPTION, HWSIM_DERIVED, CostEntry

    def e(name, value, unit, source, bits, note, node=45, volt=0.9):
        return CostEntry(name, value, unit, source, node, volt, bits, note)

    return {
        "rf": [
            e("adc.fom_walden", 0.0217, "pJ", MURMANN_SURVEY, 1,
              "energy per conversion step (21.7 fJ/conv-step: FOMW_hf, " + MURMANN_SELECTION + "; quartiles "
              f"9.4 / 92 fJ); E(ADC of b bits) = FoM * 2**b per conversion (FoM form: {WALDEN_1999}); "
              "not node-scaled"),
            e("dac.fom_walden", 0.01, "pJ", HWSIM_ASSUMPTION, 1,
              "energy per DAC update step (10 fJ/step); E(DAC of b bits) = FoM * 2**b per update; assumed "
              "below the ADC survey median (a DAC makes no comparator decisions); no DAC survey consulted"),
            e("adc.area_per_level", 46.8, "um^2", MURMANN_SURVEY, 1,
              "ADC area = 46.8 um^2 * 2**bits (AREA / 2**ENOB, " + MURMANN_SELECTION + ", 54 report an area; "
              "0.048 mm^2 at 10 bits); not node-scaled"),
            e("dac.area_per_level", 20.0, "um^2", HWSIM_ASSUMPTION, 1,
              "DAC area = 20 um^2 * 2**bits (5120 um^2 at 8 bits)"),
            e("mzi.area", 0.25, "mm^2", HWSIM_ASSUMPTION, 1,
              "one on-chip mm-wave interferometer (two quarter-wave hybrid couplers + lines); passive, "
              "not node-scaled; board-level RF meshes are ~100x larger"),
            e("phase_shifter.area", 0.05, "mm^2", HWSIM_ASSUMPTION, 1,
              "varactor-tuned reflective phase shifter core without pads; passive, not node-scaled. For scale, a "
              f"published 3.5 GHz CMOS reflection-type phase shifter chip is 0.89 mm^2 with pads ({TSAI_2019}); "
              "mm-wave cores are far smaller"),
            e("phase_shifter.set.energy", 0.1, "pJ", HWSIM_ASSUMPTION, 1,
              "charging the varactor bias node once per new setting (the DAC conversion is priced separately); "
              f"no static hold power: varactor/reflection-type shifters draw no DC current ({TSAI_2019})"),
            e("attenuator.area", 0.05, "mm^2", HWSIM_ASSUMPTION, 1, "variable attenuator; passive, not node-scaled"),
            e("rf_switch.area", 0.02, "mm^2", HWSIM_ASSUMPTION, 1,
              f"one 2x2 RF switch cell of a switch matrix ({BENES_1965}); not node-scaled"),
            e("rf_switch.toggle.energy", 1.0, "pJ", HWSIM_ASSUMPTION, 1,
              "reconfiguring one 2x2 RF switch (gate charge of its FET switches)"),
        ],
        "emulator": [
            e("emulator.rotator", 4.0, "x", HWSIM_DERIVED, 1,
              "complex rotator = 4 multipliers (data_bits x coef_bits+2) + 2 adders (data+coef+2 bits) "
              "from the multiplier/adder entries (Horowitz 2014)"),
            e("emulator.mixer", 16.0, "x", HWSIM_DERIVED, 1,
              "2x2 complex mixer = 16 multipliers (data_bits x coef_bits+2) + 12 adders (data+coef+4 bits) "
              "from the multiplier/adder entries (Horowitz 2014)"),
        ],
    }


def _register_classes() -> None:
    from hwsim.cost import COMPONENT_CLASSES, ComponentClass, register_component_class

    if "phase_shifter" in COMPONENT_CLASSES:
        return
    entries = _cost_entries()

    def v(m, name):
        return m.entry(name).value

    def mm2(m, name):
        return v(m, name) * 1e6

    def rot_e(m, a):
        w = a["coef_bits"] + 2
        return 4 * m.mult_energy_pj(a["data_bits"], w) + 2 * m.add_energy_pj(a["data_bits"] + w)

    def rot_a(m, a):
        w = a["coef_bits"] + 2
        return 4 * m.mult_area_um2(a["data_bits"], w) + 2 * m.add_area_um2(a["data_bits"] + w)

    def mix_e(m, a):
        w = a["coef_bits"] + 2
        return 16 * m.mult_energy_pj(a["data_bits"], w) + 12 * m.add_energy_pj(a["data_bits"] + w + 2)

    def mix_a(m, a):
        w = a["coef_bits"] + 2
        return 16 * m.mult_area_um2(a["data_bits"], w) + 12 * m.add_area_um2(a["data_bits"] + w + 2)

    rf = [
        ComponentClass("interferometer", "2x2 RF interferometer (two couplers); passive: area only", (), {},
                       lambda m, a: mm2(m, "mzi.area")),
        ComponentClass("phase_shifter", "tunable RF phase shifter; `set` = one new setting",
                       (), {"set": ("setting", lambda m, a: v(m, "phase_shifter.set.energy"))},
                       lambda m, a: mm2(m, "phase_shifter.area")),
        ComponentClass("attenuator", "variable RF attenuator; `set` = one new setting",
                       (), {"set": ("setting", lambda m, a: v(m, "phase_shifter.set.energy"))},
                       lambda m, a: mm2(m, "attenuator.area")),
        ComponentClass("dac", "DAC of `bits` (Walden-FoM energy per update); 'idle': a padding port's update "
                       "(a zero converted at full energy, no gating)", ("bits",),
                       {"convert": ("conversion", lambda m, a: v(m, "dac.fom_walden") * 2 ** a["bits"]),
                        "idle": ("slot", lambda m, a: v(m, "dac.fom_walden") * 2 ** a["bits"])},
                       lambda m, a: v(m, "dac.area_per_level") * 2 ** a["bits"]),
        ComponentClass("adc", "ADC of `bits` (Walden-FoM energy per conversion); 'idle': a padding port's "
                       "conversion (at full energy, its code discarded; no gating)", ("bits",),
                       {"convert": ("conversion", lambda m, a: v(m, "adc.fom_walden") * 2 ** a["bits"]),
                        "idle": ("slot", lambda m, a: v(m, "adc.fom_walden") * 2 ** a["bits"])},
                       lambda m, a: v(m, "adc.area_per_level") * 2 ** a["bits"]),
        ComponentClass("converter_gate", "clock gate on one converter's sample clock (gating 'clock'); 'idle' = "
                       "one skipped conversion, the closed gate (icg.energy); area icg.area", (),
                       {"idle": ("slot", lambda m, a: v(m, "icg.energy"))},    # node-scaled by entry()
                       lambda m, a: v(m, "icg.area"),
                       lambda m, a: [m.entry("icg.ge"), m.entry("icg.energy"), m.entry("icg.area")]),
        ComponentClass("rf_switch", "2x2 RF switch cell of a switch matrix", (),
                       {"toggle": ("reconfiguration", lambda m, a: v(m, "rf_switch.toggle.energy"))},
                       lambda m, a: mm2(m, "rf_switch.area")),
    ]
    emu = [
        ComponentClass("complex_rotator", "fixed-point complex multiply by a table cos/sin (4 mult + 2 add)",
                       ("data_bits", "coef_bits"), {"rotate": ("operation", rot_e)}, rot_a),
        ComponentClass("complex_mixer", "fixed-point 2x2 complex MZI mix (16 mult + 12 add)",
                       ("data_bits", "coef_bits"), {"mix": ("operation", mix_e)}, mix_a),
    ]
    for i, cc in enumerate(rf):
        register_component_class(cc, entries["rf"] if i == 0 else (), section="Component classes of rf-array "
                                 "(physical RF array)")
    for i, cc in enumerate(emu):
        register_component_class(cc, entries["emulator"] if i == 0 else (),
                                 section="Component classes of rf-array (fixed-point mesh emulator)")


def inventory(cfg: RfArrayConfig):
    """The priced components of ``cfg``'s target (named as in the cycle models' action counts)."""
    from hwsim.cost import Component, Inventory

    _register_classes()
    n, k = cfg.n, cfg.mzis
    if cfg.target == "emulator":
        return Inventory(f"rf_array emulator {n}-port {cfg.mesh}", (
            Component("code_reg", "register", {"bits": cfg.dac_bits}, cfg.codes, "one phase-code register each"),
            Component("rotator", "complex_rotator", {"data_bits": cfg.data_bits, "coef_bits": cfg.coef_bits}, k,
                      "external-phase rotation of each MZI"),
            Component("mixer", "complex_mixer", {"data_bits": cfg.data_bits, "coef_bits": cfg.coef_bits}, k,
                      "2x2 mix of each MZI"),
            Component("screen", "complex_rotator", {"data_bits": cfg.data_bits, "coef_bits": cfg.coef_bits}, n,
                      "output phase screen"),
            Component("pipeline_reg", "register", {"bits": 2 * cfg.data_bits * n + 1}, cfg.latency,
                      "pipeline registers (writes not counted)"),
            Component("controller", "controller", {"ge": 400}, 1,
                      "code loader, FSM and activity counters, rough 400 GE estimate"),
        ))
    ps = 2 * cfg.codes
    if cfg.gating == "clock":
        idle = {"signal_dac": "; an edge tile's padding ports are not clocked (signal_dac_gate)",
                "adc": "; an edge tile's padding ports are not clocked (adc_gate)",
                "post": "; a padding port's lane holds (its ADC is gated)"}
        gates = (Component("signal_dac_gate", "converter_gate", {}, n,
                           "sample-clock gate per signal DAC, closed on padding ports"),
                 Component("adc_gate", "converter_gate", {}, n, "sample-clock gate per ADC, closed on padding ports"))
    else:
        idle = {"signal_dac": "; padding ports of edge tiles convert zeros at full energy (gating=none)",
                "adc": "; padding ports of edge tiles convert at full energy (gating=none)",
                "post": "; padding ports' lanes add at full energy (gating=none)"}
        gates = ()
    return Inventory(f"rf_array {n}-port {cfg.mesh} SVD processor", (
        Component("mzi", "interferometer", {}, 2 * k, "U and V^H meshes"),
        Component("phase_shifter", "phase_shifter", {}, ps, "two per MZI + two output screens"),
        Component("attenuator", "attenuator", {}, n, "singular values"),
        Component("dac", "dac", {"bits": cfg.dac_bits}, ps + n, "one per phase shifter and attenuator"),
        Component("signal_dac", "dac", {"bits": cfg.adc_bits}, n, "input vector generation (digital inputs)"
                  + idle["signal_dac"]),
        Component("adc", "adc", {"bits": cfg.adc_bits}, n, "one per output port" + idle["adc"]),
        *gates,
        Component("rf_switch", "rf_switch", {}, benes_switches(n), "Benes switch matrix at the inputs"),
        Component("post", "adder", {"bits": 32}, n, "digital accumulation across k tiles" + idle["post"]),
        Component("buffer", "sram", {"bytes": cfg.buffer_bytes, "word_bits": 64}, 1,
                  "input slice, partial sums and outputs; one access per 64-bit word"),
        Component("dram", "dram", {}, 1, "phase codes, layer inputs and outputs"),
        Component("controller", "controller", {}, 1, "rough 10k GE estimate (controller.ge)"),
    ))


def check_rtl(cfg: RfArrayConfig) -> None:
    """Every config has RTL (the emulator of its mesh); nothing to reject."""


def synth_groups(cfg: RfArrayConfig) -> tuple:
    """``hwsim synth`` rows: the emulator RTL's blocks against the emulator inventory. The physical target's
    inventory (MZIs, phase DACs, ADCs) describes no logic, so synthesizing it is refused before any work."""
    if cfg.target != "emulator":
        raise HwsimError(f"target={cfg.target!r} is not allowed for hwsim synth: the RTL is the fixed-point mesh "
                         "emulator, whose area the 'emulator' target prices; expected target='emulator' "
                         "(--cfg-target emulator)")
    return (
        ("MZI rotators (external phase)", ("rotator",), ("rotator",)),
        ("MZI 2x2 mixers", ("mixer",), ("mixer",)),
        ("output phase screen", ("screen",), ("screen",)),
        ("controller + code registers (top)", ("top",), ("code_reg", "pipeline_reg", "controller")),
    )


FAMILY = Family(
    name="rf-array",
    config_cls=RfArrayConfig,
    description="RF interferometer arrays: Clements/Reck meshes, SVD and TT-RF mapping, device errors; "
                "fixed-point mesh emulator RTL",
    presets=("rf-array-8", "rf-array-8-reck", "rf-array-4-emulator", "rf-array-16"),
    preset_pattern="rf-array-N[-clements|reck][-emulator]",
    parse_preset=parse_preset,
    workload_kinds=("linear",),
    reference="hwsim.models.rf_array",
    cycle_model="hwsim.rf_array",
    inventory=inventory,
    lower="hwsim.rf_array_layers:lower",
    predict="hwsim.rf_array_layers:predict",
    run="hwsim.rf_array_layers:run",
    run_reference="hwsim.rf_array_layers:reference",
    describe_layer="hwsim.rf_array_layers:describe_layer",
    rtl="hwsim.rtl.rf_array:generate_verilog",
    rtl_check=check_rtl,
    cosim="hwsim.cosim.rf_array_regression:run_regression",
    cosim_run="hwsim.cosim.rf_array_model:cosim_run",
    synth_groups=synth_groups,
    studies=(("tt-rfnn", "hwsim.rf_array_study:run",
              "dense RFNN vs TT-RFNN on scikit-learn digits: device counts and accuracy under device errors, "
              "with and without calibration (Sui et al.)"),),
    cli_options=model_cosim_options("co-simulate a whole compressed zoo model (e.g. digits-mlp: its dense "
                                    "layers' mesh passes on the emulator RTL) instead of random runs",
                                    compress_default="int8"),
)
