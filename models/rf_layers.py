"""Bit-exact reference of a dense (``linear``) layer on an RF interferometer array: SVD tiles run on the
fixed-point mesh emulator (:mod:`hwsim.models.rf_array`), then detected, accumulated and requantized.

The analog array computes an *approximation* of the layer's integer matrix product (phase DACs, attenuator
DACs, the emulator's fixed-point rounding and the ADCs each quantize). This module defines that
approximation as one deterministic integer function of the layer's input codes, so a simulator, a cycle
model and an RTL emulator can agree on it bit for bit.

Programming (once per layer, float64, then integers only)
----------------------------------------------------------
The layer's integer weight matrix ``W`` (``O x I``, output channels x input features; the values the MAC
array multiplies, before the power-of-two weight exponent) is cut into ``n x n`` tiles,
``k_tiles = ceil(I / n)`` along the inputs and ``n_tiles = ceil(O / n)`` along the outputs; an edge tile
is zero-padded to ``n x n``. Tiles run ``n_tile``-major: for each output block, its ``k_tiles`` input
blocks one after another (the digital post-adder accumulates across them). Each tile
``T = W[n_t n : n_t n + n, k_t n : k_t n + n]`` is mapped by :func:`hwsim.models.rf_mesh.svd_map`
(``T = s_max U diag(s / s_max) V^H``, meshes in ``cfg.mesh`` style) and programmed as

* ``v_codes``, ``u_codes``: the emulator phase codes of the V^H and U meshes
  (:func:`hwsim.models.rf_array.phase_codes`, nearest code of each phase);
* the digital gain ``2**e`` with ``e = ceil(log2 s_max)`` (``e = 0`` for an all-zero tile): a power of two,
  so the gain is a shift in the post-adder and the array stays passive;
* ``atten_codes[j] = rnd(s_j / 2**e * (2**dac_bits - 1))``: attenuator DAC codes (every transmission is
  <= 1); code ``q`` means the amplitude transmission ``q / (2**dac_bits - 1)``.

The float steps (SVD, decompositions, rounding to codes) happen once per layer; a code that lands on an
exact rounding tie could differ between LAPACK builds. Everything after the codes is integer arithmetic.

Value path (integers; ``F = coef_bits``, ``D = data_bits``, ``A = adc_bits``, ``a = act_bits``)
---------------------------------------------------------------------------------------------
1. **Signal DACs** (``A`` bits, one per input port): an input code ``x`` (signed ``a`` bits) becomes
   ``xd = x`` if ``a <= A``, else ``rnd(x / 2**dsh)`` with ``dsh = a - A`` (round half up, clamped to
   ``A`` bits). Unused ports of an edge tile get 0.
2. **Alignment** into the emulator's data word: ``re = xd << sx``, ``im = 0``, with
   ``sx = D - min(a, A) - h`` and ``h`` the smallest integer with ``4**h > n`` (so
   ``sqrt(n) * 2**(min(a, A) - 1) * 2**sx < 2**(D - 1)``: a unitary mesh cannot push a port out of range,
   whatever the input). A config with ``sx < 0`` cannot run the layer (:func:`input_alignment` says so).
3. **V^H mesh**: :func:`hwsim.models.rf_array.emulate` with ``v_codes``.
4. **Attenuators**: each port's real and imaginary part ``v`` becomes ``rs(v * ATT[q_j])`` with the table
   ``ATT[q] = rnd(q / (2**dac_bits - 1) * 2**F)`` (round half to even of the float64 value, like the
   emulator's tables) and ``rs(v) = (v + 2**(F-1)) >> F`` saturated to ``D`` bits (the emulator's rounding).
5. **U mesh**: :func:`~hwsim.models.rf_array.emulate` with ``u_codes``.
6. **ADCs** (``A`` bits, full scale = the data word's range; coherent I/Q detection, the real part is
   used): ``c = clamp((re + 2**(sa-1)) >> sa)`` to signed ``A`` bits with ``sa = D - A`` (``c = re`` when
   ``A >= D``).
7. **Post-adder**: ``c`` approximates ``(T x)_j * 2**(sx - e - sa - dsh)``. Each tile's codes are shifted
   left by ``E_t + f`` with ``E_t = e_t + sa - sx + dsh`` and ``f = max(0, -min_t E_t)`` (one ``f`` per
   layer, so every shift is >= 0 and the sum is exact), and summed over the ``k_tiles`` of an output block:
   ``P = sum_t c_t << (E_t + f)``, the accumulator in units of ``2**-f`` of the layer's accumulator LSB.
8. **Requantize** (as :func:`hwsim.models.mac_array.requantize`, ``half_up``): ``acc = P + (bias << f)``,
   ``max(acc, 0)`` if ``relu``, then ``(acc + 2**(s-1)) >> s`` with ``s = shift[o] + f`` (identity for
   ``s = 0``), clamped to signed ``a`` bits. A binary layer (``act_bits = 1``) outputs ``+1`` where
   ``acc >= 0`` else ``-1``.

The output codes have the layer's format (``out_exp``, ``act_bits``), so the next layer takes them as it
takes the MAC array's. With exact phases and wide words the result tends to the MAC array's (the same
``requantize`` of the same accumulator); the gap is the analog quantization.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from hwsim.models import rf_array as ref
from hwsim.models.errors import HwsimError
from hwsim.models.rf_mesh import svd_map

__all__ = [
    "LinearProgram",
    "TileProgram",
    "adc",
    "attenuate",
    "attenuator_table",
    "input_alignment",
    "linear_fixed",
    "linear_layer",
    "post_exponents",
    "program_linear",
    "requantize_codes",
    "signal_dac",
    "tile_grid",
    "tile_outputs",
]


@dataclass(frozen=True)
class TileProgram:
    """The program of one ``n x n`` SVD tile: which block of the weight it holds and its codes."""

    k_tile: int
    n_tile: int
    rows: int
    """Input features of the block (<= n; the other input ports get 0)."""
    cols: int
    """Output channels of the block (<= n; the other output ports are not used)."""
    v_codes: np.ndarray
    atten_codes: np.ndarray
    u_codes: np.ndarray
    gain_exp: int


@dataclass(frozen=True)
class LinearProgram:
    """Every tile program of one layer (``tiles`` in run order: ``n_tile``-major, then ``k_tile``)."""

    n: int
    in_features: int
    out_features: int
    k_tiles: int
    n_tiles: int
    tiles: tuple[TileProgram, ...]


def tile_grid(n: int, in_features: int, out_features: int) -> tuple[int, int]:
    """``(k_tiles, n_tiles)``: tiles along the inputs and along the outputs of an ``out x in`` matrix."""
    return math.ceil(in_features / n), math.ceil(out_features / n)


def _headroom(n: int) -> int:
    """The smallest h with 4**h > n (2**h > sqrt(n))."""
    h = 0
    while 4 ** h <= n:
        h += 1
    return h


def input_alignment(cfg, act_bits: int) -> tuple[int, int]:
    """``(dsh, sx)``: the signal DAC's right shift and the left shift into the emulator's data word."""
    dsh = max(0, act_bits - cfg.adc_bits)
    sx = cfg.data_bits - min(act_bits, cfg.adc_bits) - _headroom(cfg.n)
    if sx < 0:
        raise HwsimError(f"data_bits={cfg.data_bits} is not allowed for {act_bits}-bit activations on {cfg.n} "
                         f"ports: expected data_bits >= {cfg.data_bits - sx} (the input codes, at most "
                         f"adc_bits={cfg.adc_bits} wide, plus {_headroom(cfg.n)} bits of mesh headroom)")
    return dsh, sx


def _adc_shift(cfg) -> int:
    return max(0, cfg.data_bits - cfg.adc_bits)


def post_exponents(cfg, program: LinearProgram, act_bits: int) -> tuple[np.ndarray, int]:
    """``(E + f, f)``: each tile's left shift in the post-adder and the layer's fraction bits ``f``."""
    dsh, sx = input_alignment(cfg, act_bits)
    e = np.array([t.gain_exp for t in program.tiles], dtype=np.int64) + _adc_shift(cfg) - sx + dsh
    f = max(0, -int(e.min())) if e.size else 0
    return e + f, f


def attenuator_table(cfg) -> np.ndarray:
    """``ATT[q] = rnd(q / (2**dac_bits - 1) * 2**coef_bits)`` for every attenuator code q (int64)."""
    q = np.arange(1 << cfg.dac_bits, dtype=np.float64)
    return np.round(q / ((1 << cfg.dac_bits) - 1) * float(1 << cfg.coef_bits)).astype(np.int64)


def program_linear(cfg, weight) -> LinearProgram:
    """Tile ``weight`` (int, ``out x in``) into ``n x n`` blocks and program each (see the module doc).

    Programs of a hashable ``cfg`` are cached by the weight's values (their arrays are read-only)."""
    w = np.asarray(weight)
    if w.ndim != 2 or min(w.shape) < 1:
        raise HwsimError(f"weight with shape {w.shape} is not allowed: expected a 2-D (out, in) matrix")
    w = np.ascontiguousarray(w, dtype=np.float64)
    try:
        hash(cfg)
    except TypeError:
        return _program(cfg, w)
    return _program_cached(cfg, w.shape, w.tobytes())


@functools.lru_cache(maxsize=64)
def _program_cached(cfg, shape: tuple[int, int], data: bytes) -> LinearProgram:
    return _program(cfg, np.frombuffer(data, dtype=np.float64).reshape(shape))


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _program(cfg, w: np.ndarray) -> LinearProgram:
    n = cfg.n
    o, i = w.shape
    kt_n, nt_n = tile_grid(n, i, o)
    top = (1 << cfg.dac_bits) - 1
    tiles = []
    for nt in range(nt_n):
        for kt in range(kt_n):
            blk = w[nt * n:(nt + 1) * n, kt * n:(kt + 1) * n]
            t = np.zeros((n, n))
            t[:blk.shape[0], :blk.shape[1]] = blk
            svd = svd_map(t, cfg.mesh)
            s = svd.atten * svd.scale
            e = int(math.ceil(math.log2(svd.scale))) if np.any(t) else 0
            atten = np.clip(np.round(s / 2.0 ** e * top), 0, top).astype(np.int64)
            tiles.append(TileProgram(kt, nt, blk.shape[1], blk.shape[0], _frozen(ref.phase_codes(cfg, svd.v_mesh)),
                                     _frozen(atten), _frozen(ref.phase_codes(cfg, svd.u_mesh)), e))
    return LinearProgram(n, i, o, kt_n, nt_n, tuple(tiles))


def _rs(cfg, v: np.ndarray) -> np.ndarray:
    f = cfg.coef_bits
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    return np.clip((v + (1 << (f - 1))) >> f, lo, hi)


def signal_dac(cfg, x, act_bits: int) -> np.ndarray:
    """Input codes ``x`` (int, (V, <= n)) -> emulator input vectors (V, n, 2) (steps 1-2 of the module doc)."""
    x = np.asarray(x, dtype=np.int64)
    dsh, sx = input_alignment(cfg, act_bits)
    if dsh:
        lo, hi = -(1 << (cfg.adc_bits - 1)), (1 << (cfg.adc_bits - 1)) - 1
        x = np.clip((x + (1 << (dsh - 1))) >> dsh, lo, hi)
    out = np.zeros((x.shape[0], cfg.n, 2), dtype=np.int64)
    out[:, :x.shape[1], 0] = x << sx
    return out


def attenuate(cfg, atten_codes, y) -> np.ndarray:
    """The attenuator column on emulator vectors ``y`` (V, n, 2) (step 4)."""
    a = attenuator_table(cfg)[np.asarray(atten_codes, dtype=np.int64)]
    return _rs(cfg, np.asarray(y, dtype=np.int64) * a[None, :, None])


def adc(cfg, y) -> np.ndarray:
    """ADC codes (V, n) of the real parts of emulator vectors ``y`` (V, n, 2) (step 6)."""
    re = np.asarray(y, dtype=np.int64)[:, :, 0]
    sa = _adc_shift(cfg)
    if sa == 0:
        return re.copy()
    lo, hi = -(1 << (cfg.adc_bits - 1)), (1 << (cfg.adc_bits - 1)) - 1
    return np.clip((re + (1 << (sa - 1))) >> sa, lo, hi)


def requantize_codes(acc, shift, relu: bool, act_bits: int) -> np.ndarray:
    """Step 8 on an accumulator ``acc`` (M, O) with per-column right shifts ``shift`` (O,) (half up)."""
    acc = np.asarray(acc, dtype=np.int64)
    if act_bits == 1:
        return np.where(acc >= 0, 1, -1).astype(np.int64)
    if relu:
        acc = np.maximum(acc, 0)
    s = np.asarray(shift, dtype=np.int64)[None, :]
    half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    lo, hi = -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return np.clip((acc + half) >> s, lo, hi)


def tile_outputs(cfg, tile: TileProgram, x_block, act_bits: int) -> np.ndarray:
    """ADC codes (V, n) of one tile for the input block ``x_block`` (V, tile.rows) (steps 1-6)."""
    y = ref.emulate(cfg, tile.v_codes, signal_dac(cfg, x_block, act_bits))
    y = attenuate(cfg, tile.atten_codes, y)
    return adc(cfg, ref.emulate(cfg, tile.u_codes, y))


def linear_fixed(cfg, program: LinearProgram, x, bias, shift, relu: bool, act_bits: int) -> np.ndarray:
    """Output codes (M, O) int64 of a programmed layer for input codes ``x`` (M, I) (steps 1-8)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 2 or x.shape[1] != program.in_features:
        raise HwsimError(f"x with shape {x.shape} is not allowed: expected (vectors, {program.in_features})")
    lo, hi = (-1, 1) if act_bits == 1 else (-(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        raise HwsimError(f"x is not allowed: expected {act_bits}-bit activation codes in [{lo}, {hi}]")
    n = program.n
    sh, f = post_exponents(cfg, program, act_bits)
    acc = np.zeros((x.shape[0], program.n_tiles * n), dtype=np.int64)
    for t, s in zip(program.tiles, sh, strict=True):
        c = tile_outputs(cfg, t, x[:, t.k_tile * n:t.k_tile * n + t.rows], act_bits)
        acc[:, t.n_tile * n:(t.n_tile + 1) * n] += c << int(s)
    acc = acc[:, :program.out_features]
    if bias is not None:
        acc = acc + (np.asarray(bias, dtype=np.int64)[None, :] << f)
    return requantize_codes(acc, np.asarray(shift, dtype=np.int64) + f, relu, act_bits)


def linear_layer(cfg, layer, x) -> np.ndarray:
    """A compressed model's ``linear`` layer (:class:`hwsim.models.compressed.QLayer`) on the RF array:
    :func:`program_linear` of its weight, then :func:`linear_fixed` of its input codes ``x`` (M, I)."""
    if layer.kind != "linear":
        raise HwsimError(f"layer {layer.name!r}: kind={layer.kind!r} is not allowed: expected 'linear'")
    return linear_fixed(cfg, program_linear(cfg, layer.weight), x, layer.bias, layer.shift, layer.relu,
                        layer.act_bits)
