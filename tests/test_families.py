"""A family is its own files plus one registry entry: the test-only ``accum`` family (``tests/accum_family.py``)
is registered by a fixture and served by the registry, the cost model and the CLI (``generate``, ``cost``,
``synth``, ``families``) without any change to ``hwsim/cli.py``.

Expectations are independent of the code under test: a naive per-step loop and hand-worked examples for
the reference, cycle and action counts measured in Amaranth's simulator for the cycle model, and prices
recomputed from the cost model's primitives (``add_area_um2``, ``register_bit_area_um2``, ``nand2.area``)
for the CLI's priced inventory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import numpy as np
import pytest
from accum_family import FAMILY_RECORD, AccumConfig, Accumulator, accumulate, inventory, predict
from amaranth.sim import Simulator
from hwsim.cosim.runner import verilator_env
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.cli import main
from hwsim.cost import CostModel
from hwsim.errors import HwsimError
from hwsim.families import all_families, family_of, get_family, register, resolve_accel, unregister


@pytest.fixture
def accum():
    """The ``accum`` family, registered for the duration of one test."""
    fam = register(FAMILY_RECORD)
    try:
        yield fam
    finally:
        unregister(fam.name)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------- reference
def _naive(x, cfg: AccumConfig) -> list[int]:
    """The specification as a loop: add, then saturate or wrap to signed ``acc_bits``, after every input."""
    lo, hi, mod = -(2 ** (cfg.acc_bits - 1)), 2 ** (cfg.acc_bits - 1) - 1, 2 ** cfg.acc_bits
    acc, out = 0, []
    for v in x:
        acc += int(v)
        if cfg.overflow == "saturate":
            acc = min(max(acc, lo), hi)
        else:
            acc = (acc - lo) % mod + lo
        out.append(acc)
    return out


@pytest.mark.parametrize(("overflow", "expected"), [
    # in 4 bits, acc 6 bits: range [-32, 31]
    ("saturate", [7, 14, 21, 28, 31, 23, 15, 7, -1, -9, -17, -25, -32, -32]),
    ("wrap", [7, 14, 21, 28, -29, 27, 19, 11, 3, -5, -13, -21, -29, 27]),
])
def test_reference_by_hand(overflow, expected):
    x = [7] * 5 + [-8] * 9
    got = accumulate(x, AccumConfig(in_bits=4, acc_bits=6, overflow=overflow))
    assert got.dtype == np.int64
    assert got.tolist() == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 12).flatmap(lambda a: st.tuples(
    st.integers(2, a), st.just(a), st.sampled_from(["saturate", "wrap"]),
    st.lists(st.integers(-(2 ** 11), 2 ** 11 - 1), max_size=60))))
def test_reference_matches_naive_loop(case):
    in_bits, acc_bits, overflow, raw = case
    cfg = AccumConfig(in_bits=in_bits, acc_bits=acc_bits, overflow=overflow)
    lo = -(2 ** (in_bits - 1))
    x = [(v - lo) % 2 ** in_bits + lo for v in raw]      # fold into the signed in_bits range
    assert accumulate(x, cfg).tolist() == _naive(x, cfg)


def test_reference_rejects_out_of_range_input():
    with pytest.raises(HwsimError, match=r"^x is not allowed: expected signed 4-bit inputs in \[-8, 7\], got values in \[-9, 7\]$"):
        accumulate([7, -9], AccumConfig(in_bits=4, acc_bits=6))


@pytest.mark.parametrize(("fields", "pattern"), [
    ({"acc_bits": 1}, r"^acc_bits=1 is not allowed: expected an integer in \[2, 48\]$"),
    ({"in_bits": 8, "acc_bits": 6}, r"^acc_bits=6 is not allowed: expected an integer >= in_bits \(8\)"),
    ({"overflow": "clamp"}, r"^overflow='clamp' is not allowed: expected one of saturate, wrap$"),
    ({"clock_mhz": 0.0}, r"^clock_mhz=0.0 is not allowed: expected a number > 0$"),
])
def test_config_errors_name_the_field(fields, pattern):
    with pytest.raises(HwsimError, match=pattern):
        AccumConfig(**fields)


# ---------------------------------------------------------------------------------------------- Amaranth RTL
def _simulate(cfg: AccumConfig, x, bubbles=(), dirty=(3, 3)):
    """Run ``x`` through :class:`Accumulator` in Amaranth's simulator and measure what happens.

    The register is first dirtied with ``dirty`` (so the clear is observable); then ``clear`` is raised
    for one cycle with the first input already valid, and the inputs follow, valid dropped in the cycles
    listed in ``bubbles`` (counted from the clear cycle). Returns the register after each accepted beat,
    the cycles from the clear cycle to the last accepted beat, the accepted beats (adds) and the
    register writes (edges with clear or an accepted beat), all read from the ports.
    """
    dut = Accumulator(cfg)
    got: dict = {}

    async def testbench(ctx):
        for v in dirty:
            ctx.set(dut.i_data.valid, 1)
            ctx.set(dut.i_data.payload, v)
            await ctx.tick()
        assert ctx.get(dut.o_acc) == _naive(dirty, cfg)[-1] != 0
        ctx.set(dut.clear, 1)
        values, cycles, adds, writes, i = [], 0, 0, 0, 0
        while i < len(x):
            valid = cycles not in bubbles
            ctx.set(dut.i_data.valid, int(valid))
            ctx.set(dut.i_data.payload, int(x[i]))
            clear, before = ctx.get(dut.clear), ctx.get(dut.o_acc)
            accepted = valid and ctx.get(dut.i_data.ready)
            await ctx.tick()
            cycles += 1
            writes += int(bool(clear or accepted))
            ctx.set(dut.clear, 0)
            if clear:
                assert ctx.get(dut.o_acc) == 0
            if accepted:
                adds += 1
                values.append(ctx.get(dut.o_acc))
                i += 1
            elif not clear:
                assert ctx.get(dut.o_acc) == before          # a bubble holds the register
        got.update(values=values, cycles=cycles, adds=adds, writes=writes)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run()
    return got


def _stimulus(cfg: AccumConfig, rng: np.random.Generator) -> np.ndarray:
    """Random inputs plus runs of the largest and smallest input long enough to hit both register limits."""
    lo, hi = -(2 ** (cfg.in_bits - 1)), 2 ** (cfg.in_bits - 1) - 1
    run = 2 ** cfg.acc_bits // hi + 3
    parts = [rng.integers(lo, hi + 1, 40), np.full(run, hi), rng.integers(lo, hi + 1, 20), np.full(run, lo),
             rng.integers(lo, hi + 1, 40), [hi, lo, hi, lo, 0]]
    return np.concatenate(parts).astype(np.int64)


@pytest.mark.parametrize("cfg", [
    AccumConfig(in_bits=4, acc_bits=6, overflow="saturate"),
    AccumConfig(in_bits=4, acc_bits=6, overflow="wrap"),
    AccumConfig(in_bits=5, acc_bits=5, overflow="saturate"),
    AccumConfig(in_bits=5, acc_bits=5, overflow="wrap"),
    AccumConfig(in_bits=8, acc_bits=12, overflow="saturate"),
], ids=lambda c: c.top_name)
def test_amaranth_matches_reference_and_cycle_model(cfg):
    x = _stimulus(cfg, np.random.default_rng(cfg.acc_bits * 10 + cfg.in_bits))
    ref = accumulate(x, cfg)
    # The stimulus reaches the corners: both limits when saturating, wrap-arounds both ways when wrapping.
    if cfg.overflow == "saturate":
        assert ref.max() == 2 ** (cfg.acc_bits - 1) - 1 and ref.min() == -(2 ** (cfg.acc_bits - 1))
    else:
        steps = np.diff(np.concatenate([[0], ref])) - x
        assert (steps == -(2 ** cfg.acc_bits)).any() and (steps == 2 ** cfg.acc_bits).any()
    got = _simulate(cfg, x)
    assert got["values"] == ref.tolist()
    stats = predict(cfg, len(x))
    assert got["cycles"] == stats.cycles == len(x) + 1
    assert stats.actions.get("acc_adder", "add") == got["adds"] == len(x)
    assert stats.actions.get("acc_reg", "write") == got["writes"] == len(x) + 1


def test_amaranth_bubbles_hold_the_register():
    cfg = AccumConfig(in_bits=4, acc_bits=6, overflow="wrap")
    x = _stimulus(cfg, np.random.default_rng(7))[:50]
    bubbles = {3, 4, 10, 17, 18, 19, 40}
    got = _simulate(cfg, x, bubbles=bubbles)
    assert got["values"] == accumulate(x, cfg).tolist()
    assert got["cycles"] == predict(cfg, len(x)).cycles + len(bubbles)


def test_predict_rejects_negative_count():
    with pytest.raises(HwsimError, match=r"^n=-1 is not allowed: expected an integer >= 0$"):
        predict(AccumConfig(), -1)


# ---------------------------------------------------------------------------------------------- registry
def test_registry_serves_the_family(accum):
    assert get_family("accum") is accum
    assert accum.views() == {"reference": True, "cycle model": True, "RTL": True, "cosim": False,
                             "synth": True, "cost": True}
    cfg = AccumConfig(in_bits=4, acc_bits=6)
    assert family_of(cfg) is accum
    unit = resolve_accel("accum-4-6").units[0]
    assert unit.family is accum and unit.config == cfg
    assert accum.preset("mac-array-8x8-ws") is None
    with pytest.raises(HwsimError, match=r"^family='accum' has no cosim entry point: its views are reference, "
                                         r"cycle model, RTL, synth, cost$"):
        accum.load("cosim")


def test_register_twice_and_unregister(accum):
    with pytest.raises(HwsimError, match=r"^family='accum' is already registered$"):
        register(FAMILY_RECORD)
    unregister("accum")
    with pytest.raises(HwsimError, match=r"^family='accum' is not allowed: expected one of .*mac-array"):
        get_family("accum")
    register(FAMILY_RECORD)  # the fixture unregisters it again


def test_cost_model_prices_the_config_through_the_registry(accum):
    """Energy and area of a config (looked up by family) equal sums of the cost primitives."""
    cfg = AccumConfig(in_bits=8, acc_bits=20)
    model = CostModel()
    n = 100
    stats = predict(cfg, n)
    energy = model.energy(cfg, stats.actions, stats.cycles)
    expected_pj = n * model.add_energy_pj(20) + (n + 1) * 20 * model.register_bit_energy_pj()
    assert energy.total_pj == pytest.approx(expected_pj, rel=1e-12)
    area = model.area(cfg)
    expected_um2 = model.add_area_um2(20) + 20 * model.register_bit_area_um2() + 50 * model.entry("nand2.area").value
    assert area.total_um2 == pytest.approx(expected_um2, rel=1e-12)
    assert model.area(inventory(cfg)).total_um2 == area.total_um2


# ---------------------------------------------------------------------------------------------- the CLI
def test_cli_generate_writes_verilog_that_lints_clean(accum, capsys, tmp_path):
    code, out, err = _run(capsys, "generate", "accum", "--in-bits", "4", "--acc-bits", "6", "-o", str(tmp_path))
    assert code == 0, err
    v, j = tmp_path / "accum_4_6_saturate.v", tmp_path / "accum_4_6_saturate.json"
    assert str(v) in out and str(j) in out
    meta = json.loads(j.read_text())
    assert meta["top"] == "accum_4_6_saturate"
    assert meta["config"] == {"in_bits": 4, "acc_bits": 6, "overflow": "saturate", "clock_mhz": 500.0}
    ports = meta["signature"]["interface"]["members"]
    assert ports["i_data"]["members"]["payload"] | {"name": None} == {
        "type": "port", "name": None, "dir": "in", "width": 4, "signed": True, "init": "0"}
    assert (ports["o_acc"]["dir"], ports["o_acc"]["width"], ports["o_acc"]["signed"]) == ("out", 6, True)
    assert (ports["clear"]["dir"], ports["clear"]["width"]) == ("in", 1)
    assert re.search(r"^module accum_4_6_saturate\(", v.read_text(), re.M)
    env = {**os.environ, **verilator_env()}
    res = subprocess.run(["verilator", "--lint-only", str(v)], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_cli_cost_prices_the_inventory(accum, capsys, tmp_path):
    out_json = tmp_path / "cost.json"
    code, out, err = _run(capsys, "cost", "accum", "--acc-bits", "12", "--json", str(out_json))
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out_json.read_text())["inventory"]}
    assert set(rows) == {"acc_adder", "acc_reg", "controller"}
    model = CostModel()
    adder, reg, ctl = rows["acc_adder"], rows["acc_reg"], rows["controller"]
    assert (adder["class"], adder["attrs"]["bits"], adder["count"]) == ("adder", 12, 1)
    assert adder["area_um2"] == pytest.approx(model.add_area_um2(12), rel=1e-12)
    assert adder["actions"]["add"]["pj"] == pytest.approx(model.add_energy_pj(12), rel=1e-12)
    assert reg["area_um2"] == pytest.approx(12 * model.register_bit_area_um2(), rel=1e-12)
    assert reg["actions"]["write"]["pj"] == pytest.approx(12 * model.register_bit_energy_pj(), rel=1e-12)
    assert ctl["area_um2"] == pytest.approx(50 * model.entry("nand2.area").value, rel=1e-12)
    for name in rows:
        assert re.search(rf"^\s*{name}\b", out, re.M), out


def test_cli_synth_runs_yosys(accum, capsys, tmp_path):
    out_json = tmp_path / "synth.json"
    code, out, err = _run(capsys, "synth", "accum", "--in-bits", "4", "--acc-bits", "6", "--json", str(out_json))
    assert code == 0, err
    assert "accumulator (top-level logic)" in out
    rep = json.loads(out_json.read_text())
    totals = rep["totals"]
    assert totals["flops"] == 6                          # exactly the 6-bit register
    assert totals["memory_bits"] == 0
    assert totals["total_area_um2"] == pytest.approx(totals["nand2_eq"] * CostModel().entry("nand2.area").value)
    assert 0 < totals["total_area_um2"] < 1000
    model = CostModel()
    analytic = model.add_area_um2(6) + 6 * model.register_bit_area_um2() + 50 * model.entry("nand2.area").value
    group = next(c for c in rep["comparison"] if c["component"] == "accumulator (top-level logic)")
    assert group["analytic_um2"] == pytest.approx(analytic, rel=1e-12)
    assert group["synthesized_um2"] == pytest.approx(totals["total_area_um2"])


def test_cli_families_lists_accum(accum, capsys, tmp_path):
    out_json = tmp_path / "families.json"
    code, out, err = _run(capsys, "families", "--json", str(out_json))
    assert code == 0, err
    assert re.search(r"^accum\b", out, re.M), out
    data = json.loads(out_json.read_text())
    fams = {f["name"]: f for f in (data["families"] if isinstance(data, dict) else data)}
    assert {"mac-array", "accum"} <= set(fams)
    acc = fams["accum"]
    assert acc["views"] == {"reference": True, "cycle model": True, "RTL": True, "cosim": False,
                            "synth": True, "cost": True}
    assert acc["presets"] == ["accum-8-16", "accum-4-6"]
    fields = {f["name"]: f for f in acc["fields"]}
    assert list(fields) == ["in_bits", "acc_bits", "overflow", "clock_mhz"]
    assert fields["overflow"]["choices"] == ["saturate", "wrap"]
    assert (fields["acc_bits"]["type"], fields["acc_bits"]["default"]) == ("int", 16)


@pytest.mark.parametrize(("argv", "pattern"), [
    (["generate", "accum", "--acc-bits", "1"], r"^hwsim: error: acc_bits=1 is not allowed: expected an integer in \[2, 48\]$"),
    (["cost", "accum", "--in-bits", "8", "--acc-bits", "6"],
     r"^hwsim: error: acc_bits=6 is not allowed: expected an integer >= in_bits \(8\)"),
    (["synth", "accum", "--overflow", "clamp"], r"^hwsim: error: .*overflow.*'clamp'.*saturate, wrap"),
    (["generate", "accum", "--rows", "4"], r"^hwsim: error: argument '--rows' is not allowed: expected one of "
                                           r"--in-bits, --acc-bits, --overflow, --clock-mhz$"),
])
def test_cli_bad_field_one_line_exit_2(accum, capsys, tmp_path, argv, pattern):
    code, out, err = _run(capsys, *argv, "-o" if argv[0] == "generate" else "--json",
                          str(tmp_path / ("out" if argv[0] == "generate" else "r.json")))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(pattern, lines[0]), lines[0]
    assert not any(tmp_path.iterdir())                   # nothing was written


def test_cli_cosim_refuses_a_family_without_the_view(accum, capsys):
    code, out, err = _run(capsys, "cosim", "accum")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert re.match(r"^hwsim: error: family='accum' has no cosim entry point: its views are reference, "
                    r"cycle model, RTL, synth, cost$", lines[0]), lines[0]


def test_cli_unknown_family_lists_registered_ones(accum, capsys):
    code, out, err = _run(capsys, "generate", "lstm")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    names = [f.name for f in all_families()]
    assert "accum" in names and "mac-array" in names
    assert re.match(rf"^hwsim: error: family='lstm' is not allowed: expected one of {re.escape(', '.join(names))}$",
                    lines[0]), lines[0]


class _SumModel:
    """A compiled model of one ``running_sum`` layer (what a new family's layer kind looks like to the loop:
    unit_layers, quantize_input, run_int)."""

    class Layer:
        name, kind, inputs, width = "sum", "running_sum", ("input",), 11

    def unit_layers(self):
        return [self.Layer()]

    def quantize_input(self, x, rounding=None):
        return np.asarray(x, dtype=np.int64)

    def run_int(self, x_int, cfg=None, layer_fn=None):
        return layer_fn(self.Layer(), [x_int])


@pytest.mark.parametrize("overflow", ["saturate", "wrap"])
def test_a_new_family_runs_through_the_one_loop(accum, overflow):
    """The accum family's lower/predict/run are all the run loop needs: values equal a naive register,
    cycles the hand count (one clear cycle + one per input), energy priced from its inventory."""
    from hwsim import run as run_loop
    from hwsim.cost import CostModel

    cfg = AccumConfig(in_bits=4, acc_bits=6, overflow=overflow)
    acc = resolve_accel(cfg)
    x = np.random.default_rng(3).integers(-8, 8, size=(25, 11))
    mr = run_loop.run_model(acc, _SumModel(), x)
    want = [_naive(row, cfg)[-1] for row in x.tolist()]
    assert mr.logits_simulated[:, 0].tolist() == mr.logits_reference[:, 0].tolist() == want
    (lr,) = mr.layers
    assert (lr.stats.cycles, lr.stats.macs) == (12, 11)
    assert lr.stats.actions.counts == {("acc_adder", "add"): 11, ("acc_reg", "write"): 12}
    assert run_loop.predict_model(acc, _SumModel()).layers[0].stats == lr.stats
    e = run_loop.price(CostModel(), acc.units[0], lr.stats)
    assert sum(e.values()) > 0
