"""Per-family ``simulate`` reports pinned to the values of the code before the unit protocol and run loop
(issue 20): the refactor must not move a number users see. The values in
``tests/data/pinned_reports_6900e88.json`` were taken from commit 6900e88 (see its ``_note``), not from
the code under test; a deliberate change of a number updates that file in its own commit saying why.

Those reports predate the memory system (issue 21): they are of units that stream every layer from and to
DRAM, which a unit still does with ``global_buffer_bytes=0``; so the cases run with the global buffer off,
and the old numbers must come out unchanged (tests/test_memory.py checks the new default against hand
counts). Likewise they predate idle-lane gating (issue 27): the MAC units run with ``gating='none'``, whose
counts equal the pins' except the MACs of a fold's padding rows (see the file's ``_note``), and so does the
deformable unit (digits-dcn's layer has no idle lane; ungated, its MAC stage has no clock-gating cells). The LSTM
engine runs its default ``gating='clock'`` (no gating reproduces the pins, which counted its idle lanes as
nothing): each idle lane slot now costs two closed clock gates (the lane's operand isolation and its
accumulator's gate) and each of the 16 lanes carries two gating cells' area (:data:`LSTM_IDLE`, by hand). The RF
array's digits-mlp report, not among the pins, is pinned below (:data:`RF_PINNED`) to what hwsim printed before
its idle-port gating, and its default ``gating='clock'`` checked against it by hand."""

import dataclasses
import json
from pathlib import Path

import pytest

from hwsim.cost import CostModel
from hwsim.families import Accelerator, resolve_accel
from hwsim.simulate import simulate

PINNED = json.loads((Path(__file__).parent / "data" / "pinned_reports_6900e88.json").read_text())["cases"]
EXAMPLES = Path(__file__).resolve().parents[1]
COST = CostModel()
#: Idle lane slots per layer of the LSTM case, by hand: digits-tt-lstm's stages on 16 lanes are G3 (R = 12,
#: K = 2, Q = 4), G2 (12, 6, 8) and G1 (8, 6, 16): 4 * 2 * 4 + 4 * 6 * 8 + 8 * 6 * 16 = 992 idle slots per
#: step (the hidden stage's 128 rows fill 8 tiles), 8 steps; the readout's 10 rows leave 6 lanes idle for its
#: K = 32 cycles.
LSTM_IDLE = {"digits-tt-lstm@lstm-engine-tt-16": {"lstm": 8 * 992, "readout": 6 * 32}}


def _accel(accel: str) -> Accelerator:
    """The accelerator with every unit's global buffer off (the DRAM-streaming memory model of the pins) and
    its idle lanes ungated (``gating='none'``, what the pins priced: issue 27)."""
    acc = resolve_accel(str(EXAMPLES / accel) if accel.endswith(".yaml") else accel)
    units = tuple(dataclasses.replace(u, config=u.config.replace(global_buffer_bytes=0, gating="none"))
                  if hasattr(u.config, "global_buffer_bytes")
                  else dataclasses.replace(u, config=u.config.replace(gating="none")) if u.family.name == "deform-unit"
                  else u for u in acc.units)
    return Accelerator(acc.name, units)


@pytest.mark.parametrize("case", sorted(PINNED))
def test_report_unchanged(case):
    model, accel = case.split("@")
    want = PINNED[case]
    rep = simulate(model, _accel(accel), progress=False)
    idle = LSTM_IDLE.get(case, {})
    gate_pj = 2 * COST.entry("icg.ge").value * COST.entry("gate.energy_per_ge").value  # two closed clock gates
    extra_mm2 = 2 * 16 * COST.entry("icg.ge").value * COST.entry("nand2.area").value / 1e6 if idle else 0.0
    assert rep.compress == want["compress"]
    assert rep.cycles == want["cycles"]
    assert rep.macs == want["macs"]
    assert rep.energy_pj == pytest.approx(want["energy_pj"] + gate_pj * sum(idle.values()), rel=1e-12)
    assert rep.area_mm2 == pytest.approx(want["area_mm2"] + extra_mm2, rel=1e-12)
    assert rep.accuracy_simulated == want["accuracy_simulated"]
    assert rep.accuracy_reference == want["accuracy_reference"]
    assert rep.simulated_equals_reference
    got = [{"name": lr.name, "cycles": lr.cycles, "stall_cycles": lr.stall_cycles, "macs": lr.macs,
            "sram_bytes": lr.sram_bytes, "dram_bytes": lr.dram_bytes, "unit": lr.unit} for lr in rep.layers]
    assert got == [{k: v for k, v in la.items() if k != "total_pj"} for la in want["layers"]]
    for lr, la in zip(rep.layers, want["layers"], strict=True):
        assert lr.total_pj == pytest.approx(la["total_pj"] + gate_pj * idle.get(lr.name, 0), rel=1e-12), lr.name


#: digits-mlp on rf-array-8 as hwsim printed it before the RF array's idle-port gating (3efc066, the commit before
#: issue 27's rf-array change; docs/rf_array.md): 416 cycles, 1,005,988 pJ (the table rounds to the pJ, the layers
#: to 0.1 pJ), 6,464 MACs, 437 of 450 images. Not from the code under test.
RF_PINNED = {"cycles": 416, "macs": 6464, "energy_pj": 1_005_988, "layers_pj": (616_961.4, 310_588.7, 78_438.4),
             "area_mm2": 22.5433, "correct": 437}


def test_rf_array_digits_mlp_idle_ports():
    """Ungated (``gating='none'``: padding ports convert at full energy) the report is the pinned one. The default
    ``gating='clock'`` changes fc3 alone: 32 -> 10 on 8 ports leaves its second output block 2 real outputs, so
    its 4 k tiles have 6 padding ADC ports each (24 conversions of 0.0217 pJ x 2**10) and its 3 later k tiles 6
    padding post-adder lanes each (18 int32 adds of 0.1 pJ); gated, each padding conversion costs one closed clock
    gate (icg.ge x gate.energy_per_ge = 5 x 0.03 x 0.798 / 36 pJ) and each lane nothing; every input port is
    real (64 and 32 inputs). Area: one clock gate (5 GE x 0.798 um^2) per signal DAC and ADC, 16."""
    acc = resolve_accel("rf-array-8")
    ungated = Accelerator(acc.name, tuple(dataclasses.replace(u, config=u.config.replace(gating="none"))
                                          for u in acc.units))
    old, new = simulate("digits-mlp", ungated, progress=False), simulate("digits-mlp", acc, progress=False)
    assert acc.units[0].config.gating == "clock"
    icg = 5 * 0.03 * 0.798 / 36
    saved = 24 * 0.0217 * 2 ** 10 + 18 * 0.1 - 24 * icg
    for rep in (old, new):
        assert (rep.cycles, rep.macs) == (RF_PINNED["cycles"], RF_PINNED["macs"])
        assert rep.accuracy_simulated == pytest.approx(RF_PINNED["correct"] / 450) and rep.simulated_equals_reference
        assert rep.idle_slots == 8 * 64 - 320        # fc3's 8 tiles of 64 MAC slots, 320 real MACs
    assert abs(old.energy_pj - RF_PINNED["energy_pj"]) <= 0.5
    for lr, pj in zip(old.layers, RF_PINNED["layers_pj"], strict=True):
        assert abs(lr.total_pj - pj) <= 0.05, lr.name
    assert abs(old.area_mm2 - RF_PINNED["area_mm2"]) <= 0.5e-4
    assert new.energy_pj == pytest.approx(old.energy_pj - saved, rel=1e-12)
    assert [lr.total_pj for lr in new.layers] == pytest.approx(
        [lr.total_pj for lr in old.layers[:2]] + [old.layers[2].total_pj - saved], rel=1e-12)
    assert old.idle_pj == pytest.approx(24 * 0.0217 * 2 ** 10 + 18 * 0.1, rel=1e-12)
    assert new.idle_pj == pytest.approx(24 * icg, rel=1e-12)
    assert new.area_mm2 - old.area_mm2 == pytest.approx(16 * 5 * 0.798 / 1e6, rel=1e-9)
