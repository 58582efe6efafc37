"""rf-array runs dense layers: the SVD-tile spec (hwsim.models.rf_layers) against a naive per-MZI loop and
float SVD reconstructions, the unit protocol (hwsim.rf_array_layers) against the spec, tile counts and
timing of odd shapes by hand, and digits-mlp on rf-array-8 within 1 point of the MAC array's int8."""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hwsim.models import rf_array as ref
from hwsim.models import rf_layers as spec
from hwsim.models.rf_tt import TTLayer
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from hwsim import rf_array_layers as rfl
from hwsim.errors import HwsimError
from hwsim.rf_array import RfArrayConfig, parse_preset, predict_emulator, predict_gemm, predict_tt
from hwsim.unit import total


def _layer(weight, bias=None, shift=0, relu=False, act_bits=8, name="fc", kind="linear"):
    w = np.asarray(weight, dtype=np.int64)
    return SimpleNamespace(name=name, kind=kind, weight=w, bias=None if bias is None else np.asarray(bias, np.int64),
                           shift=np.full(w.shape[0], shift, dtype=np.int64) if np.ndim(shift) == 0
                           else np.asarray(shift, np.int64), relu=relu, act_bits=act_bits, weight_format="int8")


# ---------------------------------------------------------------------------------------------- naive loop
def _naive_tables(cfg, k):
    """(C, S, AR, AI, BI) of phase code k, from math.cos/sin, rounded half to even."""
    a = 2 * math.pi * k / (1 << cfg.dac_bits)
    one = 1 << cfg.coef_bits
    return (round(math.cos(a) * one), round(math.sin(a) * one), round((math.cos(a) - 1) / 2 * one),
            round(math.sin(a) / 2 * one), round((math.cos(a) + 1) / 2 * one))


def _naive_rs(cfg, v):
    f, d = cfg.coef_bits, cfg.data_bits
    return min(max((v + (1 << (f - 1))) >> f, -(1 << (d - 1))), (1 << (d - 1)) - 1)


def _cmul(a, b):
    return (a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0])


def _naive_mesh(cfg, codes, vec):
    """One vector of (re, im) Python-int pairs through the mesh, MZI by MZI, as complex 2x2 products."""
    codes = [int(c) for c in codes]
    v = list(vec)
    mzis = [m for col in ref.mesh_layout(cfg.n, cfg.mesh) for m in col]
    for i, m in enumerate(mzis):
        c, s, _, _, _ = _naive_tables(cfg, codes[2 * i + 1])
        _, _, ar, ai, bi = _naive_tables(cfg, codes[2 * i])
        u = tuple(_naive_rs(cfg, z) for z in _cmul(v[m], (c, s)))
        a, bc = (ar, ai), (-ai, bi)                  # T = [[A, Bc], [Bc, -A]] after the phi rotation
        top = tuple(p + q for p, q in zip(_cmul(u, a), _cmul(v[m + 1], bc), strict=True))
        bot = tuple(p - q for p, q in zip(_cmul(u, bc), _cmul(v[m + 1], a), strict=True))
        v[m] = tuple(_naive_rs(cfg, z) for z in top)
        v[m + 1] = tuple(_naive_rs(cfg, z) for z in bot)
    out = []
    for j in range(cfg.n):
        c, s, _, _, _ = _naive_tables(cfg, codes[2 * len(mzis) + j])
        out.append(tuple(_naive_rs(cfg, z) for z in _cmul(v[j], (c, s))))
    return out


def _naive_linear(cfg, program, x, bias, shift, relu, act_bits):
    """The module doc of hwsim.models.rf_layers, step by step, one vector and one port at a time."""
    n, a, adc, d = cfg.n, act_bits, cfg.adc_bits, cfg.data_bits
    h = next(h for h in range(64) if 4 ** h > n)
    dsh, sx, sa = max(0, a - adc), d - min(a, adc) - h, max(0, d - adc)
    top = (1 << cfg.dac_bits) - 1
    att = [round(q / top * (1 << cfg.coef_bits)) for q in range(top + 1)]
    e = [t.gain_exp + sa - sx + dsh for t in program.tiles]
    f = max(0, -min(e))
    out = []
    for vec in np.asarray(x).tolist():
        acc = [0] * program.out_features
        for t, et in zip(program.tiles, e, strict=True):
            xs = vec[t.k_tile * n:t.k_tile * n + t.rows]
            if dsh:
                xs = [min(max((v + (1 << (dsh - 1))) >> dsh, -(1 << (adc - 1))), (1 << (adc - 1)) - 1) for v in xs]
            port = [(v << sx, 0) for v in xs] + [(0, 0)] * (n - len(xs))
            port = _naive_mesh(cfg, t.v_codes, port)
            port = [tuple(_naive_rs(cfg, z * att[int(q)]) for z in p) for p, q in zip(port, t.atten_codes, strict=True)]
            port = _naive_mesh(cfg, t.u_codes, port)
            for j in range(t.cols):
                re = port[j][0]
                c = re if sa == 0 else min(max((re + (1 << (sa - 1))) >> sa, -(1 << (adc - 1))), (1 << (adc - 1)) - 1)
                acc[t.n_tile * n + j] += c * 2 ** (et + f)
        row = []
        for o, v in enumerate(acc):
            v += 0 if bias is None else int(bias[o]) * 2 ** f
            if a == 1:
                row.append(1 if v >= 0 else -1)
                continue
            v = max(v, 0) if relu else v
            s = int(shift[o]) + f
            v = (v + (1 << (s - 1))) >> s if s else v
            row.append(min(max(v, -(1 << (a - 1))), (1 << (a - 1)) - 1))
        out.append(row)
    return np.array(out, dtype=np.int64)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 5), mesh=st.sampled_from(["clements", "reck"]), dac_bits=st.integers(2, 9),
       coef_bits=st.integers(4, 14), adc_bits=st.integers(2, 12), data_bits=st.integers(6, 24),
       act_bits=st.sampled_from([1, 2, 4, 8]), o=st.integers(1, 11), i=st.integers(1, 11), vectors=st.integers(1, 4),
       relu=st.booleans(), with_bias=st.booleans(), shift=st.integers(0, 9), seed=st.integers(0, 2**31 - 1))
def test_spec_and_unit_match_naive_loop(n, mesh, dac_bits, coef_bits, adc_bits, data_bits, act_bits, o, i, vectors,
                                        relu, with_bias, shift, seed):
    cfg = RfArrayConfig(n=n, mesh=mesh, dac_bits=dac_bits, coef_bits=coef_bits, adc_bits=adc_bits,
                        data_bits=data_bits)
    try:
        spec.input_alignment(cfg, act_bits)
    except HwsimError:
        assume(False)
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (o, i)) * (rng.random((o, i)) < 0.8)
    lo, hi = (-1, 1) if act_bits == 1 else (-(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1)
    x = rng.integers(lo, hi + 1, (vectors, i))
    if act_bits == 1:
        x = np.where(x >= 0, 1, -1)
    bias = rng.integers(-2000, 2000, o) if with_bias else None
    layer = _layer(w, bias, rng.integers(0, shift + 1, o), relu, act_bits)
    program = spec.program_linear(cfg, w)
    want = _naive_linear(cfg, program, x, bias, layer.shift, relu, act_bits)
    got_ref = spec.linear_fixed(cfg, program, x, bias, layer.shift, relu, act_bits)
    got_unit, stats = rfl.run(cfg, layer, [x])
    np.testing.assert_array_equal(got_ref, want)
    np.testing.assert_array_equal(got_unit, want)
    assert stats == total(rfl.predict(cfg, op) for op in rfl.lower(cfg, layer))


def test_mesh_runs_are_emulator_runs():
    """Each v / u pass handed to a co-simulation is exactly one emulator run of the reference."""
    cfg = RfArrayConfig(n=4, mesh="reck", target="emulator")
    rng = np.random.default_rng(3)
    layer = _layer(rng.integers(-128, 128, (6, 9)), rng.integers(-500, 500, 6), 6, True)
    x = rng.integers(-128, 128, (5, 9))
    runs = rfl.mesh_runs(cfg, layer, [x])
    assert [(op.stage, op.n_tile, op.k_tile) for op, *_ in runs] == \
        [(s, nt, kt) for nt in range(2) for kt in range(3) for s in ("v", "u")]
    for op, codes, xin, yout in runs:
        assert op.vectors == 5 and xin.shape == (5, 4, 2)
        np.testing.assert_array_equal(ref.emulate(cfg, codes, xin), yout)
        assert predict_emulator(cfg, op.vectors).cycles == rfl.predict(cfg, op).cycles


# ---------------------------------------------------------------------------------------------- float checks
def test_tile_program_reconstructs_the_block():
    """Codes -> float meshes (mesh_from_codes), attenuator transmissions and the gain give back each tile
    of the weight; the attenuators hold numpy's singular values on the DAC grid."""
    rng = np.random.default_rng(7)
    w = rng.integers(-127, 128, (11, 19))
    for dac_bits, tol in ((12, 0.01), (8, 0.1)):
        cfg = RfArrayConfig(n=8, dac_bits=dac_bits)
        program = spec.program_linear(cfg, w)
        top = (1 << dac_bits) - 1
        for t in program.tiles:
            blk = np.zeros((8, 8))
            blk[:t.cols, :t.rows] = w[t.n_tile * 8:t.n_tile * 8 + t.cols, t.k_tile * 8:t.k_tile * 8 + t.rows]
            s = np.linalg.svd(blk, compute_uv=False)
            assert 2.0 ** (t.gain_exp - 1) < s[0] <= 2.0 ** t.gain_exp
            np.testing.assert_allclose(t.atten_codes / top * 2.0 ** t.gain_exp, s, atol=2.0 ** t.gain_exp / top)
            u = ref.mesh_from_codes(cfg, t.u_codes).matrix()
            vh = ref.mesh_from_codes(cfg, t.v_codes).matrix()
            rec = 2.0 ** t.gain_exp * (u * (t.atten_codes / top)) @ vh
            assert np.max(np.abs(rec - blk)) < tol * s[0]


def test_wide_words_give_the_exact_layer_within_one_code():
    """With 12-bit phase DACs, 16-bit ADCs and wide emulator words the RF layer is the exact integer
    layer (x @ W.T + bias, requantized) within one output code, mostly equal."""
    cfg = RfArrayConfig(n=8, dac_bits=12, adc_bits=16, data_bits=30, coef_bits=20)
    rng = np.random.default_rng(11)
    w = rng.integers(-127, 128, (17, 29))
    bias = rng.integers(-3000, 3000, 17)
    x = rng.integers(-128, 128, (64, 29))
    layer = _layer(w, bias, 12, False)
    got, _ = rfl.run(cfg, layer, [x])
    acc = x @ w.T + bias
    exact = np.clip((acc + (1 << 11)) >> 12, -128, 127)
    assert np.abs(got - exact).max() <= 1
    assert np.mean(got == exact) > 0.9


def test_zero_tiles_and_one_port():
    cfg = RfArrayConfig(n=4, adc_bits=16)    # ADC as wide as the data word: no detection rounding
    w = np.zeros((5, 6), dtype=np.int64)
    w[4, 5] = 3
    x = np.arange(-6, 6).reshape(2, 6)
    got, _ = rfl.run(cfg, _layer(w, [1, 2, 3, 4, 5], 0, False), [x])
    assert got[:, :4].tolist() == [[1, 2, 3, 4]] * 2          # all-zero tiles: the bias alone
    assert got[:, 4].tolist() == [5 + 3 * -1, 5 + 3 * 5]      # one entry: 3 = 2**2 * 191/255 (+0.1 %)
    cfg1 = RfArrayConfig(n=1, adc_bits=16)
    got1, _ = rfl.run(cfg1, _layer([[2, -3]], None, 0, False), [np.array([[5, 7], [-4, 1]])])
    assert got1.tolist() == [[2 * 5 - 3 * 7], [-8 - 3]]


# ---------------------------------------------------------------------------------------------- lower / predict
@pytest.mark.parametrize("o,i,grid,rows,cols", [
    (1, 13, (2, 1), (8, 5), (1,)),
    (13, 1, (1, 2), (1,), (8, 5)),
    (1, 1, (1, 1), (1,), (1,)),
    (17, 29, (4, 3), (8, 8, 8, 5), (8, 8, 1)),
    (8, 8, (1, 1), (8,), (8,)),
])
def test_tiles_of_odd_shapes_by_hand(o, i, grid, rows, cols):
    cfg = RfArrayConfig(n=8, gating="none")
    ops = rfl.lower(cfg, _layer(np.ones((o, i))))
    kt, nt = grid
    assert len(ops) == 3 * kt * nt
    assert [op.stage for op in ops[:3]] == ["v", "diag", "u"]
    assert {(op.k_tiles, op.n_tiles) for op in ops} == {grid}
    assert [op.rows for op in ops if op.stage == "v" and op.n_tile == 0] == list(rows)
    assert [op.cols for op in ops if op.stage == "u" and op.k_tile == 0] == list(cols)
    assert [(op.n_tile, op.k_tile) for op in ops[::3]] == [(b, a) for b in range(nt) for a in range(kt)]
    # rf-array-8: 1 (DACs) + 1 (ceil(17 columns * 0.05 ns / 4 ns)) + 1 (one vector) + 1 (post) per tile
    st = total(rfl.predict(cfg, op) for op in ops)
    assert st.cycles == 4 * kt * nt and st.macs == o * i and st.stall_cycles == 0
    acts = st.actions.as_dict()
    # the buffer (64-bit words) and DRAM (bytes) price the traffic test_traffic_by_hand checks
    assert acts.pop("dram.read") == st.dram_read_bytes and acts.pop("dram.write") == st.dram_write_bytes
    # by hand, one int8 vector, 64-bit words: every V pass reads its input slice (<= 8 B: one word), the first
    # n-tile writes it (one word per k-tile); a U pass after the first k-tile reads and one before the last
    # writes its 32-bit partial sums, ceil(cols * 4 / 8) words
    psum = sum(-(-c * 4 // 8) for c in cols) * (kt - 1)
    assert (acts.pop("buffer.read"), acts.pop("buffer.write")) == (kt * nt + psum, kt + psum)
    # real ports: every output block feeds all inputs (sum(rows) = i), every k tile converts its block's real
    # outputs (sum(cols) = o); the padding ports of the 8 are idle slots (gating none: named on the converters)
    idle = {"signal_dac.idle": kt * nt * 8 - nt * i, "adc.idle": kt * nt * 8 - kt * o,
            "post.idle": (kt - 1) * (nt * 8 - o)}
    assert acts == {"dac.convert": kt * nt * (2 * 64 + 8), "phase_shifter.set": kt * nt * 128,
                    "signal_dac.convert": nt * sum(rows), "attenuator.set": kt * nt * 8,
                    "adc.convert": kt * sum(cols), **({"post.add": (kt - 1) * o} if kt > 1 else {}),
                    **{key: v for key, v in idle.items() if v}}
    assert st.detail["idle_slots"] == kt * nt * 64 - o * i
    g = predict_gemm(cfg, 1, i, o)
    assert (st.cycles, acts) == (g.cycles, {k: v for k, v in g.actions.as_dict().items() if v})
    assert st.detail["tiles"] == kt * nt


def test_traffic_by_hand():
    """17 x 29 int8 layer on 8 ports, 8-bit DACs: 12 tiles of 64 + 64 + 8 codes (+1 gain byte)."""
    cfg = RfArrayConfig(n=8)
    st = total(rfl.predict(cfg, op) for op in rfl.lower(cfg, _layer(np.ones((17, 29)))))
    assert st.dram_read_bytes == 12 * (64 + 64 + 8 + 1) + 29     # programs + the input once
    assert st.dram_write_bytes == 17                              # output codes once
    assert st.sram_read_bytes == 3 * 29 + 3 * 17 * 4              # input slice per tile + psums read 3x
    assert st.sram_write_bytes == 29 + 3 * 17 * 4                 # input buffer fill + psums written 3x


def test_emulator_target_by_hand():
    cfg = RfArrayConfig(n=4, mesh="reck", target="emulator", dac_update_cycles=3)
    ops = rfl.lower(cfg, _layer(np.ones((3, 6))))   # 2 k-tiles x 1 n-tile
    one = predict_emulator(cfg, 1)
    # 1 + (16 - 1) * 3 + 1 + (5 * (3 + 4) + 3): codes, one vector, the 5 Reck columns' pipeline (a rotator of 3
    # registers and a mixer of 4 each) and the output screen's rotator (3)
    assert one.cycles == 1 + 15 * 3 + 1 + 38
    for op in ops:
        st = rfl.predict(cfg, op)
        if op.stage == "diag":
            assert st.cycles == 0 and not st.actions.counts
        else:
            assert st.cycles == one.cycles and st.actions == one.actions
    st = total(rfl.predict(cfg, op) for op in ops)
    assert st.cycles == 4 * one.cycles and st.detail["emulator_runs"] == 4
    inter = 4 * 2 * 16 // 8                                       # 4 ports x (re, im) x 16 bits
    assert st.sram_write_bytes == 6 + 2 * (inter + inter) + 3 * 4  # input, v + diag writes, one psum block


def test_run_stats_do_not_depend_on_the_data():
    cfg = RfArrayConfig(n=4)
    layer = _layer(np.arange(-20, 22).reshape(6, 7), shift=3)
    _, a = rfl.run(cfg, layer, [np.zeros((3, 7), dtype=np.int64)])
    _, b = rfl.run(cfg, layer, [np.full((9, 7), 100)])
    assert a == b == total(rfl.predict(cfg, op) for op in rfl.lower(cfg, layer))
    assert rfl.describe_layer(cfg, layer, ()) == ("7x6 svd 2x2t", "int8")


# ---------------------------------------------------------------------------------------------- shape-only layers
@pytest.mark.parametrize("o,i,n", [(17, 29, 8), (1, 5, 4), (7, 1, 3), (32, 64, 8)])
def test_workload_layer_lowers_like_the_compressed_layer(o, i, n):
    """A dense WorkloadLayer has the mesh passes (so the counts) of a compressed layer of its shape."""
    for target in ("rf", "emulator"):
        cfg = RfArrayConfig(n=n, target=target)
        ops = rfl.lower(cfg, rfl.WorkloadLayer("fc", o, i))
        assert ops == rfl.lower(cfg, _layer(np.ones((o, i))))
        assert all(op.core is None for op in ops)
    assert rfl.describe_layer(cfg, rfl.WorkloadLayer("fc", o, i), ops)[0] == \
        rfl.describe_layer(cfg, _layer(np.ones((o, i))), ops)[0]


@settings(max_examples=60, deadline=None)
@given(modes=st.lists(st.tuples(st.integers(1, 5), st.integers(1, 5)), min_size=1, max_size=3),
       rank=st.integers(1, 4), n=st.sampled_from([2, 3, 4, 8]), dac=st.sampled_from([1, 3]),
       adc=st.sampled_from([1, 2]), stage_ns=st.sampled_from([0.05, 3.0]))
def test_tt_workload_layer_on_the_processor_equals_predict_tt(modes, rank, n, dac, adc, stage_ns):
    """A TT WorkloadLayer's mesh passes add up to predict_tt (the processor's core-by-core timing, written
    earlier and separately): the same cycles, tiles, MACs and processor actions; the passes add the memory
    traffic predict_tt leaves out (buffer and DRAM)."""
    tt = TTLayer(tuple(m[0] for m in modes), tuple(m[1] for m in modes), (1, *[rank] * (len(modes) - 1), 1))
    cfg = RfArrayConfig(n=n, dac_update_cycles=dac, adc_cycles=adc, rf_stage_ns=stage_ns)
    layer = rfl.WorkloadLayer.from_tt("tt", tt)
    ops = rfl.lower(cfg, layer)
    st_ = total(rfl.predict(cfg, op) for op in ops)
    want = predict_tt(cfg, tt, 1)
    assert (st_.cycles, st_.detail["tiles"], st_.macs) == (want.cycles, want.detail["folds"], want.macs)
    acts = {k: v for k, v in st_.actions.counts.items() if k[0] not in ("buffer", "dram") and v}
    assert acts == {k: v for k, v in want.actions.counts.items() if v}
    assert st_.actions.get("dram", "read") == st_.dram_read_bytes > 0
    # cores in signal order, the last core first
    assert [op.core for op in ops if op.stage == "v"] == sorted((op.core for op in ops if op.stage == "v"),
                                                                reverse=True)


def test_tt_workload_layer_by_hand():
    """TT layer in (4, 4, 4), out (2, 4, 4), ranks (1, 4, 4, 1) on 8 ports: core 3 is 16 x 4 on 16 vectors
    (1 x 2 tiles), core 2 16 x 16 on 16 (2 x 2), core 1 2 x 16 on 16 (2 x 1): 8 tiles of 16 + 3 cycles."""
    cfg = parse_preset("rf-array-8")
    layer = rfl.WorkloadLayer.from_tt("tt1", TTLayer((4, 4, 4), (2, 4, 4), (1, 4, 4, 1)))
    ops = rfl.lower(cfg, layer)
    assert [(op.core, op.k_tiles, op.n_tiles, op.vectors) for op in ops if op.stage == "u"] == \
        [(2, 1, 2, 16)] * 2 + [(1, 2, 2, 16)] * 4 + [(0, 2, 1, 16)] * 2
    assert total(rfl.predict(cfg, op) for op in ops).cycles == 8 * (16 + 3) == 152
    assert rfl.describe_layer(cfg, layer, ops) == ("64x32 tt r(1,4,4,1) 8t", "shape only")


def test_workload_layer_has_no_values():
    cfg = RfArrayConfig(n=4)
    layer = rfl.WorkloadLayer("w", 3, 5)
    for fn in (rfl.run, rfl.reference):
        with pytest.raises(HwsimError, match=r"^layer 'w' is not allowed on the value path: a WorkloadLayer has "
                                             r"shapes only \(counts: hwsim.run.predict_model\)$"):
            fn(cfg, layer, [np.zeros((1, 5), dtype=np.int64)])
    with pytest.raises(HwsimError, match=r"^layer 't': tt with shape 32x64 is not allowed: expected "
                                         r"out_features x in_features = 32x32$"):
        rfl.WorkloadLayer("t", 32, 32, TTLayer((4, 4, 4), (2, 4, 4), (1, 2, 2, 1)))
    with pytest.raises(HwsimError, match=r"^in_features=0 is not allowed"):
        rfl.WorkloadLayer("w", 3, 0)


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("cfg,layer,msg", [
    (RfArrayConfig(), _layer(np.ones((4, 1, 3, 3)), kind="conv2d", name="c1"),
     "layer 'c1': kind='conv2d' is not allowed on rf-array: expected 'linear'"),
    (RfArrayConfig(), _layer(np.ones((4, 3)), kind="deform_conv2d", name="d"), "kind='deform_conv2d' is not allowed"),
    (RfArrayConfig(data_bits=8), _layer(np.ones((4, 3))), "data_bits=8 is not allowed for 8-bit activations on 8 "
                                                         "ports: expected data_bits >= 10"),
    (RfArrayConfig(), _layer(np.ones(4)), "weight with shape (4,) is not allowed"),
])
def test_check_op_one_line_errors(cfg, layer, msg):
    for fn in (rfl.check_op, rfl.lower):
        with pytest.raises(HwsimError) as e:
            fn(cfg, layer)
        assert msg in str(e.value) and "\n" not in str(e.value)


def test_run_input_errors():
    cfg = RfArrayConfig(n=4)
    layer = _layer(np.ones((2, 3)))
    with pytest.raises(HwsimError, match=r"input with shape \(2, 4\) is not allowed: expected \(batch, 3\)"):
        rfl.run(cfg, layer, [np.zeros((2, 4), dtype=np.int64)])
    with pytest.raises(HwsimError, match=r"expected 8-bit codes in \[-128, 127\]"):
        rfl.run(cfg, layer, [np.full((1, 3), 128)])


# ---------------------------------------------------------------------------------------------- digits-mlp
def _run_model(cm, x_int, layer_fn):
    """A tiny driver: every linear layer through ``layer_fn``, host layers (flatten) as the model has them."""
    acts = {"input": x_int}
    for la in cm.layers[1:]:
        ins = [acts[i] for i in la.inputs]
        acts[la.name] = layer_fn(la, ins) if la.kind == "linear" else la.forward_int(ins, cm.cfg)
    return acts[cm.output]


def test_digits_mlp_on_rf_array_8_within_one_point_of_the_mac_array():
    from hwsim.models import zoo
    from hwsim.models.compress import compress

    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    cm = compress(zoo.load("digits-mlp"), "int8", x_tr[:512], train_data=(x_tr, y_tr))
    mac = cm.accuracy(x_te, y_te)
    assert round(100 * mac, 2) == 97.33
    cfg = parse_preset("rf-array-8")
    x_int = cm.quantize_input(x_te)
    stats = {}

    def unit(la, ins):
        v, stats[la.name] = rfl.run(cfg, la, ins)
        return v

    sim = _run_model(cm, x_int, unit)
    np.testing.assert_array_equal(sim, _run_model(cm, x_int, lambda la, ins: rfl.reference(cfg, la, ins)))
    acc = float(np.mean(sim.argmax(axis=1) == y_te))
    assert abs(acc - mac) <= 0.01, acc                          # measured 97.11 % (437 / 450)
    # 64 + 32 + 8 tiles of 4 cycles; MACs of 64x64, 64x32, 32x10
    assert [stats[n].cycles for n in ("fc1", "fc2", "fc3")] == [256, 128, 32]
    assert sum(s.macs for s in stats.values()) == 64 * 64 + 64 * 32 + 32 * 10
