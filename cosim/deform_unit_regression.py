"""Randomized deform-unit regression: whole small feature maps with random offsets through the unit RTL under
Verilator. :func:`run_regression` is the family's ``cosim`` entry point (generic runner and report)."""

from __future__ import annotations

import numpy as np
from hwsim.cosim.deform_unit_harness import deform_unit_harness
from hwsim.cosim.report import RegressionReport
from hwsim.cosim.runner import cosimulate
from hwsim.models.tables import offset_bound_code

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, check_rtl, check_rtl_layer
from hwsim.errors import HwsimError

__all__ = ["default_layers", "random_layers", "run_regression"]


def random_layers(cfg: DeformUnitConfig, seed: int, count: int, max_side: int = 12,
                  channels: int | None = None, c_out: int | None = None, bias: bool = False) -> list[dict]:
    """``count`` layers alternating bounded (free) and square offsets (square only for a square config), of
    random odd and prime sizes up to ``max_side`` (capped by ``max_width``), with offsets spread past the bound,
    exactly on integer positions, at the bound and outside the image; the first is 1 x N and, for count >= 3,
    one is N x 1. C = ``channels`` (default lanes; more than lanes makes several channel blocks, a
    non-multiple leaves the last block's lanes idle). Depthwise unless ``c_out`` is given: then full layers
    C -> ``c_out`` (more than out_lanes makes several output groups; shifts 6..10, so that most outputs are
    not clamped). ``bias``: a random bias per output, at the accumulator's scale, up to the largest product's
    magnitude, output 0's at the top of the accumulator's range (the saturating additions act)."""
    rng = np.random.default_rng(seed)
    one = 1 << cfg.frac_bits
    bq = offset_bound_code(cfg.offset_bound, cfg.frac_bits)
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    wlo, whi = -(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1)
    ahi = (1 << (cfg.acc_bits - 1)) - 1
    big = 1 << (cfg.act_bits + cfg.weight_bits + 2 * cfg.frac_bits - 2)  # the largest product
    side = min(max_side, cfg.max_width)
    c = cfg.lanes if channels is None else channels
    depthwise = c_out is None
    co = c if depthwise else c_out
    layers = []
    for i in range(count):
        square = cfg.offset_mode == "square" or i % 2 == 1
        h, w = int(rng.integers(1, side + 1)), int(rng.integers(1, side + 1))
        if i == 0:
            h = 1
        if i == 2:
            w = 1
        x = rng.integers(lo, hi, size=(c, h, w))
        x[:, 0, 0] = lo  # extreme inputs
        wt = rng.integers(wlo, whi, size=(co, 1 if depthwise else c, 3, 3))
        if square:
            raw = rng.integers(-one, bq + 2 * one, size=(1, h, w))
            raw[0, 0, :] = bq
            raw[0, -1, :] = (raw[0, -1, :] // one) * one
        else:
            raw = rng.integers(-bq - 2 * one, bq + 2 * one + 1, size=(18, h, w))
            raw[:, 0, 0] = bq
            raw[:, -1, -1] = -bq
            raw[:, h // 2, :] = (raw[:, h // 2, :] // one) * one
        b = None
        if bias:
            b = rng.integers(-big, big + 1, size=co)
            b[0] = ahi
        check_rtl_layer(cfg, DeformLayer("l", c, h, w, co, depthwise=depthwise))
        mode = "dw" if depthwise else "full"
        layers.append({"name": f"{'square' if square else 'bounded'}{i}", "x": x, "a": raw, "w": wt,
                       **({} if b is None else {"bias": b}), "depthwise": depthwise,
                       "shift": int(rng.integers(0, 6) if depthwise else rng.integers(6, 11)),
                       "relu": bool(rng.integers(0, 2)),
                       "square": square,
                       "shape": f"{c}x{h}x{w} {mode}{'' if depthwise else f' ->{co}'} "
                                f"{'square' if square else 'bounded'}"})
    return layers


def default_layers(cfg: DeformUnitConfig, seed: int, count: int) -> list[dict]:
    """The regression's layers: ``count - count // 2`` depthwise ones on ``lanes`` channels and ``count // 2``
    full ones with bias, ``lanes + 1`` -> ``out_lanes + 1`` channels (two channel blocks and two output groups,
    each last one with idle lanes; capped by ``max_channels``)."""
    dw = random_layers(cfg, seed, count - count // 2)
    c, co = min(cfg.lanes + 1, cfg.max_channels), min(cfg.out_lanes + 1, cfg.max_channels)
    full = random_layers(cfg, seed + 1, count // 2, channels=c, c_out=co, bias=True)
    return dw + [dict(lay, name=f"full{i}") for i, lay in enumerate(full)]


def run_regression(cfg: DeformUnitConfig, seed: int = 1, count: int = 4, waves: bool = False, workdir=None,
                   layers: list[dict] | None = None) -> RegressionReport:
    """Build (or reuse) the Verilator model of ``cfg``'s unit and run ``layers`` (default: ``count`` random
    ones from ``seed``, :func:`default_layers`) through the testbench; ``workdir`` keeps ``sim.log`` (and
    ``dump.fst``)."""
    if not isinstance(cfg, DeformUnitConfig):
        raise HwsimError(f"cfg={type(cfg).__name__} is not allowed: expected a DeformUnitConfig")
    check_rtl(cfg)
    layers = default_layers(cfg, seed, count) if layers is None else layers
    return cosimulate(cfg, deform_unit_harness(), layers, waves=waves, workdir=workdir)
