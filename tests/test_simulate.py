"""hwsim.simulate: the Python API behind ``hwsim simulate``."""

import pytest

from hwsim.config import MacArrayConfig
from hwsim.cost import CostModel
from hwsim.mac_array import predict_gemm
from hwsim.simulate import resolve_accel, simulate


@pytest.mark.parametrize("spec", ["int8", "int4", "binary", "prune50+int8"])
def test_simulated_equals_reference(spec):
    rep = simulate("digits-cnn", "mac-array-8x8-ws", spec, progress=False)
    assert rep.simulated_equals_reference
    assert rep.accuracy_simulated == rep.accuracy_reference
    assert rep.outputs_compared > 0


def test_int8_accuracy_within_one_point_of_float():
    rep = simulate("digits-cnn", "mac-array-8x8-ws", "int8", progress=False)
    assert rep.accuracy_float > 0.9
    assert abs(rep.accuracy_reference - rep.accuracy_float) <= 0.01


def test_totals_consistent_with_cycle_model_and_cost():
    cfg = resolve_accel("mac-array-8x8-os").units[0].config
    assert cfg == MacArrayConfig(rows=8, cols=8, dataflow="os")
    rep = simulate("digits-mlp", cfg, "int8", progress=False)
    # The MLP is three linear layers 64-64-32-10 (batch 1): recompute their cycles independently.
    shapes = [(1, 64, 64), (1, 64, 32), (1, 32, 10)]
    assert [lr.shape for lr in rep.layers] == [f"{m}x{k}x{n}" for m, k, n in shapes]
    assert rep.cycles == sum(predict_gemm(cfg, *s).cycles for s in shapes)
    assert rep.latency_us == pytest.approx(rep.cycles / 500.0)
    assert rep.area_mm2 == pytest.approx(CostModel().area(cfg).total_mm2)
    assert rep.tops_per_w == pytest.approx(2 * rep.macs / rep.energy_pj)


def test_main_job_numbers_unchanged_by_the_registry_refactor():
    """`hwsim simulate digits-cnn --accel mac-array-8x8-ws` printed 2,873 cycles, 875,169 pJ and 97.78 %
    before the family registry and the inventory-based cost model (commit 8b7c018); they must not move,
    except for one deliberate correction: that code priced every PE hop's pipeline registers twice
    (2469.6 + 5556.6 + 1234.8 = 9,261.0 pJ over the three layers then), now once (half of it), and one
    deliberate change of cycles: the RTL's pipeline registers for the FPGA clock (issue 24; 3 cycles per
    fold in STREAM and 3 per tile drain, hwsim.config.MAC_STREAM_STAGES / MAC_DRAIN_STAGES) took 2,873 to
    3,140. The memory system (issue 21) changed the energy and area of the default preset; with its global
    buffer off (``global_buffer_bytes=0``, the old DRAM-streaming model) the old numbers hold (checked here),
    and tests/test_memory.py checks the new default against hand counts."""
    from hwsim.config import MacArrayConfig

    # Idle-lane gating (issue 27) off, as the old code: its one difference is that every slot a vector passes
    # is now priced, also the padding rows of conv1's second K fold (K = 9 on 8 rows: 7 padding rows x 8
    # columns for each of the 64 output pixels, 0.3 pJ per int8 MAC) = 1,075.2 pJ.
    rep = simulate("digits-cnn", MacArrayConfig(global_buffer_bytes=0, gating="none"), "int8", progress=False)
    assert rep.cycles == 3140
    pipeline = sum(lr.energy_pj["pe_pipeline_reg"] for lr in rep.layers)
    assert pipeline == pytest.approx(9261.0 / 2, abs=0.15)
    assert rep.energy_pj == pytest.approx(875169 - 9261.0 / 2 + 64 * 7 * 8 * 0.3, abs=0.7)
    assert round(100 * rep.accuracy_simulated, 2) == 97.78
    assert round(rep.area_mm2, 4) == 1.1438


def test_report_counts_idle_slots_by_hand():
    """digits-cnn on the 8x8 WS array (issue 27): conv1 (64 x 9 x 8) streams 64 vectors through 2 K folds
    (8 + 1 rows) of 64 PEs: 8,192 slots, 4,608 real MACs, 3,584 idle; conv2 (16 x 72 x 16) fills every fold;
    fc (1 x 256 x 10): 1 vector x 32 folds x 2 column tiles x 64 PEs = 4,096 slots, 2,560 real, 1,536 idle,
    and its second tile's 6 idle columns gate 1 x 32 x 8 x 6 = 1,536 pipeline updates. Clock gating prices
    each as one closed clock gate (5 GE x the int8-add energy per NAND2 area); no gating as a 0.3 pJ MAC."""
    from hwsim.config import MacArrayConfig
    from hwsim.simulate import format_report

    icg = 5 * 0.03 * 0.798 / 36
    rep = simulate("digits-cnn", MacArrayConfig(), "int8", progress=False)
    assert [lr.idle_slots for lr in rep.layers] == [3584, 0, 1536]
    assert [lr.idle_pj for lr in rep.layers] == pytest.approx([3584 * icg, 0.0, (1536 + 1536) * icg])
    assert rep.idle_slots == 5120 and rep.macs == 25600
    text = format_report(rep)
    assert "25,600 real; 5,120 idle slots (16.7 %" in text and "idle pJ" in text
    ungated = simulate("digits-cnn", MacArrayConfig(gating="none"), "int8", progress=False)
    assert [lr.idle_pj for lr in ungated.layers] == pytest.approx([3584 * 0.3, 0.0, 1536 * 0.3])
    assert ungated.energy_pj - rep.energy_pj > 5120 * (0.3 - icg)  # plus gated registers, lanes, words
