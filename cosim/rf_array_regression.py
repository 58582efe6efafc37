"""Randomized rf-array regression: random phase programs and input vectors through the emulator RTL under
Verilator. :func:`run_regression` is the family's ``cosim`` entry point (generic runner and report)."""

from __future__ import annotations

import numpy as np
from hwsim.cosim.report import RegressionReport
from hwsim.cosim.rf_array_harness import rf_array_harness
from hwsim.cosim.runner import cosimulate
from hwsim.models import rf_array as ref
from hwsim.models import rf_mesh

from hwsim.errors import HwsimError
from hwsim.rf_array import RfArrayConfig

__all__ = ["random_runs", "run_regression"]


def random_runs(cfg: RfArrayConfig, seed: int, count: int) -> list[dict]:
    """``count`` runs cycling through: random codes and inputs; full-scale inputs (saturation and rounding
    corners); the codes of a decomposed random unitary with small inputs."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (cfg.data_bits - 1)), (1 << (cfg.data_bits - 1)) - 1
    runs = []
    for i in range(count):
        mode = ("uniform", "extreme", "unitary")[i % 3]
        v = int(rng.integers(1, 33))
        if mode == "unitary":
            codes = ref.phase_codes(cfg, rf_mesh.decompose(rf_mesh.random_unitary(cfg.n, rng), cfg.mesh))
            x = rng.integers(lo // 4, hi // 4 + 1, (v, cfg.n, 2))
        else:
            codes = rng.integers(0, 1 << cfg.dac_bits, cfg.codes)
            x = rng.choice(np.array([lo, hi]), (v, cfg.n, 2)) if mode == "extreme" else \
                rng.integers(lo, hi + 1, (v, cfg.n, 2))
        runs.append({"name": f"{mode}{i}", "w": codes, "x": x, "shape": f"{v} vectors x {cfg.n} ports"})
    return runs


def run_regression(cfg: RfArrayConfig, seed: int = 1, count: int = 6, waves: bool = False,
                   workdir=None, runs: list[dict] | None = None) -> RegressionReport:
    """Build (or reuse) the Verilator model of ``cfg``'s emulator and run ``runs`` (default: ``count``
    random ones from ``seed``) through the testbench; ``workdir`` keeps ``sim.log`` (and ``dump.fst``)."""
    if not isinstance(cfg, RfArrayConfig):
        raise HwsimError(f"cfg={type(cfg).__name__} is not allowed: expected an RfArrayConfig")
    runs = random_runs(cfg, seed, count) if runs is None else runs
    return cosimulate(cfg, rf_array_harness(), runs, waves=waves, workdir=workdir)
