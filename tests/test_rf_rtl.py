"""rf-array emulator RTL under Amaranth's simulator: outputs bit-exact to the reference, busy cycles and
activity counters equal to the cycle model's prediction."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from hwsim.models import rf_array as ref
from hwsim.rtl.rf_array import COUNTERS, RfMeshEmulator

from hwsim.families import write_verilog
from hwsim.rf_array import RfArrayConfig, predict_emulator


def _pack(cfg, vec):
    d, v = cfg.data_bits, 0
    for j in range(cfg.n):
        for p in range(2):
            v |= (int(vec[j, p]) & ((1 << d) - 1)) << ((2 * j + p) * d)
    return v


def _unpack(cfg, v):
    d = cfg.data_bits
    out = np.zeros((cfg.n, 2), np.int64)
    for j in range(cfg.n):
        for p in range(2):
            x = (v >> ((2 * j + p) * d)) & ((1 << d) - 1)
            out[j, p] = x - (1 << d) if x >> (d - 1) else x
    return out


def _run(cfg, codes, x):
    dut = RfMeshEmulator(cfg)
    res = {}

    async def tb(ctx):
        v = len(x)
        ctx.set(dut.n_vectors, v)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ci = vi = cycles = t = 0
        outs, t_in, t_out = [], [], []
        ctx.set(dut.i_code.valid, 1)
        ctx.set(dut.i_vec.valid, 1)
        while True:
            ctx.set(dut.i_code.payload, int(codes[min(ci, len(codes) - 1)]))
            ctx.set(dut.i_vec.payload, _pack(cfg, x[min(vi, v - 1)]))
            cycles += ctx.get(dut.busy)
            done = ctx.get(dut.done)
            ci += ctx.get(dut.i_code.ready)
            if ctx.get(dut.i_vec.ready):
                vi += 1
                t_in.append(t)
            if ctx.get(dut.o_vec.valid):
                outs.append(_unpack(cfg, ctx.get(dut.o_vec.payload)))
                t_out.append(t)
            await ctx.tick()
            t += 1
            if done:
                break
        res.update(outs=np.array(outs), cycles=cycles, t_in=t_in, t_out=t_out, counters={k: ctx.get(getattr(dut, k)) for k in COUNTERS},
                   stall=ctx.get(dut.cnt_stall))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return res


# Each config with its pipeline latency counted by hand: per MZI column a rotator (3 registers: the operands,
# the products, the rounded sums) and a mixer (4: the operands, the products, the pair sums, the rounded sums),
# then the output screen's rotator (3). Clements has n columns (n = 2: one, its second would be empty), Reck
# 2n - 3, one port none.
@pytest.mark.parametrize("cfg, latency", [
    (RfArrayConfig(n=4), 4 * 7 + 3),
    (RfArrayConfig(n=3, mesh="reck", dac_update_cycles=2, data_bits=8, coef_bits=6, dac_bits=4), 3 * 7 + 3),
    (RfArrayConfig(n=1), 3),
    (RfArrayConfig(n=2, data_bits=6, coef_bits=3, dac_bits=2), 1 * 7 + 3),
    (RfArrayConfig(n=5, mesh="reck", dac_update_cycles=3), 7 * 7 + 3),
], ids=lambda c: c.top_name if isinstance(c, RfArrayConfig) else str(c))
def test_emulator_rtl_matches_reference_and_model(cfg, latency):
    rng = np.random.default_rng(cfg.n)
    codes = rng.integers(0, 1 << cfg.dac_bits, cfg.codes)
    lo = -(1 << (cfg.data_bits - 1))
    x = rng.integers(lo, -lo, (6, cfg.n, 2))
    x[0], x[1] = lo, -lo - 1          # saturation corners
    got = _run(cfg, codes, x)
    pred = predict_emulator(cfg, len(x))
    assert np.array_equal(got["outs"], ref.emulate(cfg, codes, x))
    assert got["cycles"] == pred.cycles
    # every vector leaves exactly `latency` cycles after it entered, one per cycle
    assert len(got["t_in"]) == len(x) and [o - i for i, o in zip(got["t_in"], got["t_out"], strict=True)] == \
        [latency] * len(x)
    assert cfg.latency == latency
    assert got["stall"] == pred.stall_cycles == 0
    assert {COUNTERS[k]: v for k, v in got["counters"].items()} == pred.actions.counts


def test_write_verilog(tmp_path):
    cfg = RfArrayConfig(n=3)
    v, j = write_verilog(cfg, tmp_path)
    assert v.name == f"{cfg.top_name}.v" and f"module {cfg.top_name}" in v.read_text()
    assert '"codes": 9' in j.read_text()
