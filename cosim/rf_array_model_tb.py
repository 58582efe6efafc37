"""cocotb testbench for the RF array's layers in the model co-simulation (runs inside the simulator;
launched by :func:`hwsim.cosim.rf_array_model.cosim_run` through ``hwsim.cosim.runner.run_job`` on a build
of :func:`hwsim.cosim.rf_array_harness.rf_array_harness`).

Each job layer is one mesh pass of a model layer: the phase codes of one tile's V^H or U mesh (``w``) and
the pass's input vectors for the whole batch (``x``, (V, n, 2)). The driver and monitor are the
regression's (:class:`hwsim.cosim.rf_array_tb.RfArrayTB`: memory files in, free-running clock, captured
outputs out); every run is checked as the regression checks it (outputs against
:func:`hwsim.models.rf_array.emulate` on the same inputs, busy cycles, stalls and every activity counter
against :func:`hwsim.rf_array.predict_emulator`), and the RTL's outputs of every run are saved to
``outputs.npz`` (key = the run's index) beside the result, so the caller chains the passes through them.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cocotb
import numpy as np
from hwsim.cosim.rf_array_tb import RfArrayTB
from hwsim.cosim.runner import read_job
from hwsim.models import rf_array as ref

from hwsim.rf_array import RfArrayConfig, predict_emulator

__all__ = ["check_run"]


def check_run(cfg: RfArrayConfig, codes: np.ndarray, x: np.ndarray, got: dict) -> dict:
    """The result row of one run (``got`` from :meth:`RfArrayTB.run`): values compared and mismatching,
    cycles, stalls and activity counters beside the model's, and the differing counts."""
    want = ref.emulate(cfg, codes, x)
    pred = predict_emulator(cfg, len(x))
    same_shape = got["outputs"].shape == want.shape
    mismatches = int(np.count_nonzero(got["outputs"] != want)) if same_shape else want.size
    count_diffs = {f"{c}.{a}": [got["counters"].get((c, a)), v] for (c, a), v in pred.actions.counts.items()
                   if got["counters"].get((c, a)) != v}
    if got["stall"] != pred.stall_cycles:
        count_diffs["stall_cycles"] = [got["stall"], pred.stall_cycles]
    return {"vectors": int(want.size), "mismatches": mismatches, "rtl_cycles": got["cycles"],
            "predicted_cycles": pred.cycles, "rtl_stalls": got["stall"], "predicted_stalls": pred.stall_cycles,
            "actions": {f"{c}.{a}": v for (c, a), v in got["counters"].items()}, "count_diffs": count_diffs,
            "count_mismatches": len(count_diffs)}


@cocotb.test()
async def rf_array_mesh_passes(dut):
    job = read_job(Path(os.environ["HWSIM_JOB"]))
    cfg = RfArrayConfig.from_dict(job["config"])
    tb = RfArrayTB(dut, cfg)
    await tb.reset()
    rows, saved, t0 = [], {}, time.perf_counter()
    for idx, layer in enumerate(job["layers"]):
        t_run = time.perf_counter()
        codes, x = np.asarray(layer["w"]), np.asarray(layer["x"])
        got = await tb.run(codes, x)
        saved[str(idx)] = got["outputs"]
        row = check_run(cfg, codes, x, got)
        rows.append({"index": idx, "name": layer.get("name", f"run{idx}"), "kind": "mesh",
                     "shape": layer.get("shape"), **row, "wall_seconds": time.perf_counter() - t_run})
    result = Path(os.environ["HWSIM_RESULT"])
    np.savez(result.with_name("outputs.npz"), **saved)
    with open(result, "w") as f:
        json.dump({"layers": rows, "wall_seconds": time.perf_counter() - t0}, f)
    dut._log.info("%d mesh passes: %d values, %d mismatches, %d with RTL cycles != predicted, %d count "
                  "differences", len(rows), sum(r["vectors"] for r in rows), sum(r["mismatches"] for r in rows),
                  sum(r["rtl_cycles"] != r["predicted_cycles"] for r in rows),
                  sum(r["count_mismatches"] for r in rows))
    assert all(r["mismatches"] == 0 for r in rows), "output mismatches"
    assert all(r["rtl_cycles"] == r["predicted_cycles"] for r in rows), "cycle count mismatches"
    assert all(r["count_mismatches"] == 0 for r in rows), "stall or action count mismatches"
