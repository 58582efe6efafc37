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

__all__ = ["random_layers", "run_regression"]


def random_layers(cfg: DeformUnitConfig, seed: int, count: int, max_side: int = 12,
                  channels: int | None = None) -> list[dict]:
    """``count`` depthwise layers (C = ``channels``, default lanes; fewer leave lanes idle) alternating bounded
    (free) and square offsets (square only for a square config), of random odd and prime sizes up to
    ``max_side`` (capped by ``max_width``), with offsets spread past the bound, exactly on integer positions,
    at the bound and outside the image; the first is 1 x N and, for count >= 3, one is N x 1."""
    rng = np.random.default_rng(seed)
    one = 1 << cfg.frac_bits
    bq = offset_bound_code(cfg.offset_bound, cfg.frac_bits)
    lo, hi = -(1 << (cfg.act_bits - 1)), 1 << (cfg.act_bits - 1)
    wlo, whi = -(1 << (cfg.weight_bits - 1)), 1 << (cfg.weight_bits - 1)
    side = min(max_side, cfg.max_width)
    c = cfg.lanes if channels is None else channels
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
        wt = rng.integers(wlo, whi, size=(c, 1, 3, 3))
        if square:
            raw = rng.integers(-one, bq + 2 * one, size=(1, h, w))
            raw[0, 0, :] = bq
            raw[0, -1, :] = (raw[0, -1, :] // one) * one
        else:
            raw = rng.integers(-bq - 2 * one, bq + 2 * one + 1, size=(18, h, w))
            raw[:, 0, 0] = bq
            raw[:, -1, -1] = -bq
            raw[:, h // 2, :] = (raw[:, h // 2, :] // one) * one
        check_rtl_layer(cfg, DeformLayer("l", c, h, w, c, depthwise=True))
        layers.append({"name": f"{'square' if square else 'bounded'}{i}", "x": x, "a": raw, "w": wt,
                       "shift": int(rng.integers(0, 6)), "relu": bool(rng.integers(0, 2)), "square": square,
                       "shape": f"{c}x{h}x{w} {'square' if square else 'bounded'}"})
    return layers


def run_regression(cfg: DeformUnitConfig, seed: int = 1, count: int = 4, waves: bool = False, workdir=None,
                   layers: list[dict] | None = None) -> RegressionReport:
    """Build (or reuse) the Verilator model of ``cfg``'s unit and run ``layers`` (default: ``count`` random
    ones from ``seed``) through the testbench; ``workdir`` keeps ``sim.log`` (and ``dump.fst``)."""
    if not isinstance(cfg, DeformUnitConfig):
        raise HwsimError(f"cfg={type(cfg).__name__} is not allowed: expected a DeformUnitConfig")
    check_rtl(cfg)
    layers = random_layers(cfg, seed, count) if layers is None else layers
    return cosimulate(cfg, deform_unit_harness(), layers, waves=waves, workdir=workdir)
