"""``hwsim sweep`` on every family: each example spec (shrunk) through the CLI writes the table, the Pareto
front and the plots, and a point's numbers equal what the family's own paths give for the same config
(``hwsim simulate`` for model workloads; the family's ``predict`` summed here for layer lists)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from hwsim.cli import main
from hwsim.cost import CostModel
from hwsim.families import get_family
from hwsim.simulate import simulate
from hwsim.sweep import parse_spec, read_table

REPO = Path(__file__).resolve().parents[1]

SHRINK = {  # example -> smaller axes for the suite
    "mac_array_sweep.yaml": {"rows": [4, 8], "compress": ["int8"]},
    "lstm_engine_sweep.yaml": {"pes": [4, 16], "data_bits": [8]},
    "rf_array_sweep.yaml": {"n": [4, 8], "adc_bits": [8]},
    "deform_unit_sweep.yaml": {"offset_mode": ["free", "square"], "line_buffer_rows": [8]},
}


def test_every_family_has_an_example_spec():
    specs = {yaml.safe_load(p.read_text())["family"] for p in (REPO / "examples").glob("*_sweep.yaml")}
    from hwsim.families import all_families

    assert {f.name for f in all_families()} <= specs


@pytest.mark.parametrize("example", sorted(SHRINK))
def test_example_sweep_through_the_cli(example, tmp_path, capsys):
    spec = yaml.safe_load((REPO / "examples" / example).read_text())
    spec["axes"] = SHRINK[example]
    spec.pop("constraints", None)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "-o", str(tmp_path / "out"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    n = 1
    for v in SHRINK[example].values():
        n *= len(v)
    assert re.search(rf"{n} points \({n} computed, 0 from the cache\), {n} ok, 0 failed", out), out
    files = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"sweep.csv", "summary.json", "pareto.png"} <= files
    assert {f"vs_{a}.png" for a in SHRINK[example]} <= files
    rows = read_table(tmp_path / "out" / "sweep.csv")
    assert len(rows) == n and any(r["pareto"] in (True, "True", 1, "1") for r in rows)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["ok"] == n

    parsed = parse_spec(spec, base_dir=REPO / "examples")
    fam, point = parsed.family, parsed.points[-1]
    row = next(r for r in rows if all(str(r[k]) == str(v) for k, v in point.params.items()))
    if parsed.workload["kind"] == "model":
        rep = simulate(parsed.workload["model"], point.config, compress=point.compress, progress=False)
        assert int(row["cycles"]) == rep.cycles
        assert int(row["macs"]) == rep.macs
        assert float(row["energy_pj"]) == pytest.approx(rep.energy_pj, rel=1e-9)
        if parsed.values:
            assert float(row["accuracy"]) == pytest.approx(rep.accuracy_simulated)
            assert row["bit_exact"] in (True, "True")
    else:  # layer list: the family's predict summed here, priced here
        from hwsim.deform_unit import DeformLayer, predict

        cfg = point.config
        stats = [predict(cfg, DeformLayer(r["name"], **{k: v for k, v in r.items() if k not in ("name", "kind")}))
                 for r in spec["workload"]["layers"]]
        assert int(row["cycles"]) == sum(s.cycles for s in stats)
        acts = stats[0].actions
        for s in stats[1:]:
            acts = acts + s.actions
        e = CostModel(node_nm=45).energy(get_family(fam.name).load("inventory")(cfg), acts,
                                         sum(s.cycles for s in stats))
        assert float(row["energy_pj"]) == pytest.approx(e.total_pj, rel=1e-9)
        assert int(row["dram_bytes"]) == sum(s.dram_read_bytes + s.dram_write_bytes for s in stats)


def test_compiling_family_rejects_a_foreign_format(tmp_path):
    spec = yaml.safe_load((REPO / "examples" / "lstm_engine_sweep.yaml").read_text())
    spec["axes"] = {"pes": [4]}
    spec["compress"] = "int4"
    res = parse_spec(spec)
    from hwsim.sweep import evaluate_task

    (rec,) = evaluate_task({"family": res.family.name, "workload": res.workload, "values": False, "node": 45,
                            "dram": "lpddr4", "points": [(p.key, p.config, p.compress) for p in res.points]})
    assert rec["status"] == "failed"
    assert rec["error"] == ("--compress='int4' is not allowed on lstm-engine: expected int16 or no --compress "
                            "(the engine runs its config's data_bits fixed point)")


def test_layer_row_of_a_foreign_kind_is_one_line(tmp_path, capsys):
    spec = yaml.safe_load((REPO / "examples" / "deform_unit_sweep.yaml").read_text())
    spec["workload"]["layers"][0]["kind"] = "conv2d"
    spec["workload"]["layers"][0]["bogus"] = 3
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec))
    main(["sweep", str(path), "-o", str(tmp_path / "o"), "--workers", "1"])
    out = capsys.readouterr().out
    assert "failed" in out
    rows = read_table(tmp_path / "o" / "sweep.csv")
    assert all(r["status"] == "failed" for r in rows)
    assert all("layer 'dcn_full' (kind conv2d) is not allowed on deform-unit" in r["error"] for r in rows)
