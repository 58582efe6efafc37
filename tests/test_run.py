"""The unit protocol (hwsim.unit) and the one model-run loop (hwsim.run), for every family.

Independent expectations: Stats arithmetic by hand; for a data-independent unit, run's Stats equal the sum
of predict over lower (the closed form) and the per-layer rows of simulate; for the deformable unit, the
mean of the per-image statistics computed here from run_layer; the generic modules name no family.
"""

import re
from pathlib import Path

import numpy as np
import pytest
from hwsim.models import catalog, zoo

from hwsim import run as run_loop
from hwsim.errors import HwsimError
from hwsim.families import all_families, resolve_accel
from hwsim.stats import ActionCounts
from hwsim.unit import Stats, mean_stats, total

ROOT = Path(__file__).resolve().parents[1]

CASES = [  # (model, accelerator): one per family, and a two-unit accelerator
    ("digits-cnn", "mac-array-8x8-ws"),
    ("digits-mlp", "mac-array-4x4-os"),
    ("digits-tt-lstm", "lstm-engine-tt-16"),
    ("digits-mlp", "rf-array-8"),
    ("digits-dcn", str(ROOT / "examples" / "mac_array_deform_unit.yaml")),
]


def test_stats_add_and_mean_by_hand():
    a = Stats(10, 2, 6, ActionCounts({("x", "read"): 3}), 1, 2, 3, 4, {"folds": 2, "mode": "dense"})
    b = Stats(7, 0, 5, ActionCounts({("x", "read"): 1, ("y", "mac"): 5}), 10, 20, 30, 40,
              {"folds": 1, "mode": "sparse", "steps": 8})
    s = a + b
    assert (s.cycles, s.stall_cycles, s.macs) == (17, 2, 11)
    assert s.actions.counts == {("x", "read"): 4, ("y", "mac"): 5}
    assert (s.sram_read_bytes, s.sram_write_bytes, s.dram_read_bytes, s.dram_write_bytes) == (11, 22, 33, 44)
    assert (s.sram_bytes, s.dram_bytes) == (33, 77)
    assert dict(s.detail) == {"folds": 3, "mode": None, "steps": 8}
    assert total([a, b]) == s and total([]) == Stats()
    with pytest.raises(TypeError):
        s.detail["folds"] = 0  # frozen, detail included
    m = mean_stats([Stats(3, 1, 4, dram_read_bytes=1), Stats(4, 2, 4, dram_read_bytes=2)])
    # (3 + 4) / 2 = 3.5 -> 4 and (1 + 2) / 2 -> 2 (half up); actions stay the batch's sums
    assert (m.cycles, m.stall_cycles, m.macs, m.dram_read_bytes) == (4, 2, 4, 2)
    assert dict(m.detail) == {"inputs": 2, "cycles_total": 7, "cycles_min": 3, "cycles_max": 4}
    assert Stats(8, macs=32).utilization(8) == 0.5


def test_every_family_speaks_the_protocol():
    for fam in all_families():
        for entry in ("lower", "predict", "run", "run_reference", "inventory"):
            assert getattr(fam, entry) is not None, (fam.name, entry)
            assert callable(fam.load(entry))
        assert fam.workload_kinds, fam.name


def _compiled(model, accel):
    acc = resolve_accel(accel)
    x_tr, y_tr, _, _ = zoo.load_digits_split()
    compiled, label = run_loop.compile_model(acc, catalog.load(model), None, x_tr[:512], train_data=(x_tr, y_tr))
    return acc, compiled, label


@pytest.mark.parametrize("model,accel", CASES)
def test_run_stats_equal_closed_form(model, accel):
    """run's per-layer Stats equal the sum of predict over lower, for every unit whose counts do not depend
    on the data; the value path equals the references bit for bit."""
    acc, compiled, label = _compiled(model, accel)
    x = zoo.load_digits_split()[2][:20]
    ran = run_loop.run_model(acc, compiled, x, label)
    predicted = run_loop.predict_model(acc, compiled, label)
    assert [lr.name for lr in ran.layers] == [la.name for la in compiled.unit_layers()]
    assert np.array_equal(ran.logits_reference, ran.logits_simulated)
    for lr, lp in zip(ran.layers, predicted.layers, strict=True):
        assert lr.unit == lp.unit and lr.shape == lp.shape
        if lr.name in ran.data_dependent:
            continue
        unit = acc.units[lr.unit]
        ops = unit.family.load("lower")(unit.config, compiled.unit_layers()[[la.name for la in
                                                                             compiled.unit_layers()].index(lr.name)])
        hand = Stats()
        for op in ops:
            hand = hand + unit.family.load("predict")(unit.config, op)
        assert lr.stats.cycles == lp.stats.cycles == hand.cycles > 0
        assert lr.stats.actions == lp.stats.actions == hand.actions
        assert lr.stats.macs == hand.macs and lr.stats.dram_bytes == hand.dram_bytes


def test_data_dependent_layer_is_the_mean_of_its_images():
    """digits-dcn's deformable layer: run's Stats are the per-image statistics of run_layer, averaged here."""
    from hwsim.deform_unit import run_layer

    acc, compiled, label = _compiled("digits-dcn", CASES[-1][1])
    x = zoo.load_digits_split()[2][:7]
    ran = run_loop.run_model(acc, compiled, x, label)
    (name,) = ran.data_dependent
    unit_index = next(lr.unit for lr in ran.layers if lr.name == name)
    unit = acc.units[unit_index]
    layer = next(la for la in compiled.unit_layers() if la.name == name)
    acts = compiled.run_int(compiled.quantize_input(x, unit.config.rounding), cfg=acc.units[0].config,
                            return_all=True)
    _, per_image = run_layer(unit.config, layer, [acts[i] for i in layer.inputs])
    cycles = [st.cycles for st in per_image]
    st = next(lr.stats for lr in ran.layers if lr.name == name)
    assert st.cycles == int(np.floor(np.mean(cycles) + 0.5))
    assert st.stall_cycles == int(np.floor(np.mean([s.stall_cycles for s in per_image]) + 0.5))
    assert (st.detail["cycles_min"], st.detail["cycles_max"], st.detail["inputs"]) == (min(cycles), max(cycles), 7)
    summed = per_image[0].actions
    for s in per_image[1:]:
        summed = summed + s.actions
    assert st.actions == summed


def test_simulate_rows_come_from_the_loop():
    from hwsim.simulate import simulate

    rep = simulate("digits-mlp", "rf-array-8", progress=False)
    acc, compiled, label = _compiled("digits-mlp", "rf-array-8")
    predicted = run_loop.predict_model(acc, compiled, label)
    assert [(lr.name, lr.cycles, lr.macs) for lr in rep.layers] == [
        (lp.name, lp.stats.cycles, lp.stats.macs) for lp in predicted.layers]
    assert rep.cycles == sum(lp.stats.cycles for lp in predicted.layers)
    mac = simulate("digits-mlp", "mac-array-8x8-ws", progress=False)
    assert abs(rep.accuracy_simulated - mac.accuracy_simulated) <= 0.01  # issue 20: within 1 point
    assert rep.simulated_equals_reference and rep.energy_pj > 0


def test_layer_the_unit_cannot_run_fails_before_work():
    acc = resolve_accel("rf-array-8")
    with pytest.raises(HwsimError, match=r"is not allowed on accelerator rf-array-8: no unit runs conv2d layers"):
        _compiled("digits-cnn", acc)


# Family identifiers: family and preset names, family-specific config fields and components.
FAMILY_WORDS = re.compile(r"mac[-_]array|lstm|deform|\brf[-_]|mzi|systolic|dataflow|\bpe_|interferometer",
                          re.IGNORECASE)
#: The spine: these must never name a family (issue 20).
GENERIC = ["hwsim/run.py", "hwsim/simulate.py", "hwsim/sweep.py", "hwsim/cost.py", "hwsim/synth.py", "hwsim/cli.py",
           "hwsim/fpga.py"]
@pytest.mark.parametrize("path", GENERIC)
def test_generic_module_names_no_family(path):
    hits = [f"{path}:{i}: {line.strip()}" for i, line in enumerate((ROOT / path).read_text().splitlines(), 1)
            if FAMILY_WORDS.search(line)]
    assert not hits, "\n".join(hits)
