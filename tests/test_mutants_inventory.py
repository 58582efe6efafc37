"""Cost inventories against hand counts (mutation run, docs/testing.md): the components, classes, attributes and
instance counts each family declares, derived here from the hardware's structure, not read from the code.

Written for mutants the fast suite let through: the N:M MAC array's PE components (only co-simulation and
synthesis tests built one before), and both RF-array targets' component counts.
"""

from __future__ import annotations

import math

from hwsim.config import MacArrayConfig
from hwsim.mac_array import inventory as mac_inventory
from hwsim.rf_array import RfArrayConfig
from hwsim.rf_array import inventory as rf_inventory


def _by_name(inv) -> dict:
    return {c.name: (c.cls, dict(c.attrs), c.count) for c in inv.components}


def test_nm_mac_array_pe_components_by_hand():
    # 4x4 WS int8, 2:4: each PE holds the group's M = 4 activations (8 bit) for its index mux and a 32-bit
    # psum; the index register names one of 4 positions (2 bits); the mux selects one of 4 8-bit activations.
    cfg = MacArrayConfig(rows=4, cols=4, sparsity="2:4")
    inv = mac_inventory(cfg)
    got = _by_name(inv)
    assert got["pe_pipeline_reg"] == ("register", {"bits": 4 * 8 + 32, "write_bits": 4 * 8 + 32, "clock_gate": True}, 16)
    assert got["pe_index_reg"] == ("register", {"bits": 2}, 16)
    assert got["pe_act_mux"] == ("mux", {"inputs": 4, "bits": 8}, 16)
    assert got["pe_mac"] == ("mac", {"weight_format": "int8", "act_bits": 8, "acc_bits": 32, "gating": "clock"}, 16)
    assert got["pe_weight_reg"] == ("register", {"bits": 8}, 16)
    assert got["requant"] == ("requantizer", {"acc_bits": 32, "out_bits": 8}, 4)  # one per column
    assert inv.name == "mac_array 4x4 ws int8 2:4"
    assert all(c.note for c in inv.components if c.name.startswith("pe_") and c.name != "pe_mac")


def test_dense_mac_array_pipeline_register_by_dataflow():
    # The pipeline register holds an activation (8) and a psum (32); a write updates what moves: WS the
    # activation hop and the psum (40 bits), OS activation + weight hops + the stationary psum (48), IS the
    # weight hop and the psum (40).
    for df, write in (("ws", 40), ("os", 48), ("is", 40)):
        got = _by_name(mac_inventory(MacArrayConfig(rows=3, cols=5, dataflow=df)))
        assert got["pe_pipeline_reg"] == ("register", {"bits": 40, "write_bits": write, "clock_gate": True}, 15), df
        ungated = _by_name(mac_inventory(MacArrayConfig(rows=3, cols=5, dataflow=df, gating="operand")))
        assert ungated["pe_pipeline_reg"] == ("register", {"bits": 40, "write_bits": write}, 15), df
        assert got["requant"][2] == 5
        assert "pe_index_reg" not in got and "pe_act_mux" not in got


def _benes(n: int) -> int:
    """2x2 switches of an n-input Benes network: (n / 2) * (2 * log2(n) - 1)."""
    return n // 2 * (2 * int(math.log2(n)) - 1)


def test_rf_svd_processor_counts_by_hand():
    # 8-port Clements meshes: 8 * 7 / 2 = 28 MZIs each; U and V^H: 56 MZIs; phase shifters: two per MZI plus
    # an output screen of 8, per mesh: 2 * (56 + 8) = 128; one DAC per phase shifter and attenuator: 136.
    cfg = RfArrayConfig()
    assert (cfg.n, cfg.mesh) == (8, "clements")
    got = _by_name(rf_inventory(cfg))
    assert got["mzi"] == ("interferometer", {}, 56)
    assert got["phase_shifter"] == ("phase_shifter", {}, 128)
    assert got["attenuator"] == ("attenuator", {}, 8)
    assert got["dac"] == ("dac", {"bits": cfg.dac_bits}, 136)
    assert got["signal_dac"] == ("dac", {"bits": cfg.adc_bits}, 8)
    assert got["adc"] == ("adc", {"bits": cfg.adc_bits}, 8)
    assert got["rf_switch"] == ("rf_switch", {}, _benes(8)) == ("rf_switch", {}, 20)
    assert got["post"] == ("adder", {"bits": 32}, 8)
    assert got["controller"] == ("controller", {}, 1)
    assert rf_inventory(cfg).name == "rf_array 8-port clements SVD processor"


def test_rf_emulator_counts_by_hand():
    # Emulator of the same mesh: one code register per phase code (2 per MZI + the screen: 56 + 8 = 64), a
    # rotator and a mixer per MZI (28 each), a screen rotator per port; the pipeline register carries 8
    # complex samples of 2 x 16 bits plus a valid bit (257 bits).
    cfg = RfArrayConfig(target="emulator")
    got = _by_name(rf_inventory(cfg))
    coef = {"data_bits": 16, "coef_bits": 12}
    assert (cfg.data_bits, cfg.coef_bits) == (16, 12)
    assert got["code_reg"] == ("register", {"bits": cfg.dac_bits}, 64)
    assert got["rotator"] == ("complex_rotator", coef, 28)
    assert got["mixer"] == ("complex_mixer", coef, 28)
    assert got["screen"] == ("complex_rotator", coef, 8)
    assert got["pipeline_reg"][:2] == ("register", {"bits": 2 * 16 * 8 + 1})
    assert got["controller"] == ("controller", {"ge": 400}, 1)
    assert rf_inventory(cfg).name == "rf_array emulator 8-port clements"


def test_lstm_engine_inventory_by_hand():
    # 5 PEs, 4 banks, 16-bit data, 32-bit accumulators: one 5 x 16 = 80-bit weight word per MAC cycle; the
    # 256 KiB work SRAM as 2 ping-pong buffers x 4 banks of 64 KiB; state SRAM h, c and 4H biases for H <= 1024
    # (6 Ki words x 2 B); 2**17 work words -> 17-bit addresses; gates: 3 sigmoids (i, f, o), 2 tanh (g, c),
    # 3 multipliers (f*c, i*g, o*tanh c), one 2 * 16 + 1-bit cell adder.
    from hwsim.lstm_engine import LstmEngineConfig
    from hwsim.lstm_engine import inventory as lstm_inventory

    cfg = LstmEngineConfig(pes=5, banks=4, schedule="packed")
    assert (cfg.data_bits, cfg.acc_bits, cfg.work_sram_bytes, cfg.work_words) == (16, 32, 262144, 2**17)
    got = _by_name(lstm_inventory(cfg))
    nl = {"kind": cfg.nonlinearity, "bits": 16, "lut_bits": cfg.lut_bits}
    # idle-lane gating (default clock): the lanes' operand isolation and the accumulators' clock gates
    assert got["pe_mult"] == ("multiplier", {"a_bits": 16, "b_bits": 16, "gating": "clock"}, 5)
    assert got["pe_acc"] == ("adder", {"bits": 32}, 5)
    assert got["pe_acc_reg"] == ("register", {"bits": 32, "clock_gate": True}, 5)
    for g in ("operand", "none"):
        ug = _by_name(lstm_inventory(cfg.replace(gating=g)))
        assert ug["pe_mult"][1]["gating"] == g and ug["pe_acc_reg"][1] == {"bits": 32, "clock_gate": False}
    assert got["weight_sram"] == ("sram", {"bytes": cfg.weight_sram_bytes, "word_bits": 80}, 1)
    assert got["hidden_sram"] == ("sram", {"bytes": cfg.hidden_sram_bytes, "word_bits": 80}, 1)
    assert got["work_sram"] == ("sram", {"bytes": 65536, "word_bits": 16}, 8)
    assert got["state_sram"] == ("sram", {"bytes": 6 * 1024 * 2, "word_bits": 16}, 1)
    assert got["requant"] == ("requantizer", {"acc_bits": 32, "out_bits": 16}, 5)
    assert got["addr_gen"] == ("adder", {"bits": 17}, 4)
    assert got["gate_add"] == ("adder", {"bits": 16}, 2)
    assert got["sigmoid"] == ("nonlinearity", nl, 3) and got["tanh"] == ("nonlinearity", nl, 2)
    assert got["cell_mult"] == ("multiplier", {"a_bits": 16, "b_bits": 16}, 3)
    assert got["cell_add"] == ("adder", {"bits": 33}, 1)
    assert got["controller"] == ("controller", {"ge": 5000}, 1)
    assert got["dram"] == ("dram", {}, 1)
    # packed schedule: per lane a bank mux (4 banks) and a weight-entry mux (5 entries), 4 address adders
    assert got["pack_operand"] == ("mux", {"inputs": 4, "bits": 16}, 5)
    assert got["pack_weight"] == ("mux", {"inputs": 5, "bits": 16}, 5)
    assert got["pack_addr"] == ("adder", {"bits": 17}, 4)
    # one PE and one bank: the muxes still have 2 inputs, one address adder
    one = _by_name(lstm_inventory(LstmEngineConfig(pes=1, banks=1, schedule="packed")))
    assert (one["pack_operand"][1]["inputs"], one["pack_weight"][1]["inputs"], one["pack_addr"][2]) == (2, 2, 1)
    assert not any(n.startswith("pack_") for n in _by_name(lstm_inventory(LstmEngineConfig(pes=5, banks=4))))


def test_mac_array_requantizers_and_name_by_config():
    # One requantizer per column. The shift requantizer is the plain power-of-two one; requantizer="f32" also
    # builds ONNX Runtime's float32 lanes (and the zero-point correction), priced as the "f32" kind. The
    # inventory's name carries the zero-tile skipping when the bitmap is built.
    shift = mac_inventory(MacArrayConfig(rows=2, cols=3))
    f32 = mac_inventory(MacArrayConfig(rows=2, cols=3, requantizer="f32"))
    req = {c.name: c for c in shift.components}["requant"]
    req32 = {c.name: c for c in f32.components}["requant"]
    assert (req.cls, dict(req.attrs), req.count) == ("requantizer", {"acc_bits": 32, "out_bits": 8}, 3)
    assert (req32.cls, dict(req32.attrs), req32.count) == ("requantizer",
                                                           {"acc_bits": 32, "out_bits": 8, "kind": "f32"}, 3)
    assert req.note == "one requantizer per column"
    assert req32.note.startswith("one requantizer per column (") and "float32" in req32.note
    assert shift.name == "mac_array 2x3 ws int8"
    assert mac_inventory(MacArrayConfig(rows=2, cols=3, skip_zero_tiles=True)).name == (
        "mac_array 2x3 ws int8, zero-tile skipping")


def test_mac_array_pipeline_register_note_names_its_write_width():
    # WS int8: activation (8) + psum (32) bits; a write updates the activation hop and the psum, 40 bits
    reg = {c.name: c for c in mac_inventory(MacArrayConfig(rows=2, cols=2)).components}["pe_pipeline_reg"]
    assert "40 bits" in reg.note and "ws dataflow" in reg.note
