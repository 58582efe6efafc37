"""Records and inventories of the second mutation run's survivors (docs/testing.md): the LSTM readout stage's name
and inventory details, the MAC array's global buffer, the RF array's buffer and DRAM, and the closed form's
beat-period cache, each against a hand value."""

from __future__ import annotations

from hwsim.config import MacArrayConfig
from hwsim.lstm_engine import LstmEngineConfig, readout_stats
from hwsim.lstm_engine import inventory as lstm_inventory
from hwsim.mac_array import inventory as mac_inventory
from hwsim.mac_array import predict_gemm_folds
from hwsim.rf_array import RfArrayConfig
from hwsim.rf_array import inventory as rf_inventory


def _by_name(inv) -> dict:
    return {c.name: c for c in inv.components}


def test_readout_stage_is_named_readout():
    assert readout_stats(LstmEngineConfig(pes=4, banks=2), 11, 7).name == "readout"


def test_lstm_inventory_name_notes_and_narrow_srams():
    # 8-bit data (1 byte), a 17-byte working SRAM: 17 words, addresses 0..16 need 5 bits.
    # 16 bytes over 16 banks: 1 byte per bank (two ping-pong buffers: 32 banks priced).
    cfg = LstmEngineConfig(pes=5, banks=4, schedule="packed")
    inv = lstm_inventory(cfg)
    assert inv.name == "lstm-engine TT 5 PEs, 4 banks, int16 data, 32-bit saturate acc, pwl gates, 1000 MHz, " \
                       "packed schedule"
    got = _by_name(inv)
    assert got["weight_sram"].note == "one 5-entry word per MAC cycle"
    assert got["work_sram"].note == "2 ping-pong buffers x 4 banks; priced per bank"
    narrow = _by_name(lstm_inventory(LstmEngineConfig(data_bits=8, acc_bits=16, frac_bits=4, work_sram_bytes=17)))
    assert narrow["addr_gen"].attrs["bits"] == 5
    tiny = _by_name(lstm_inventory(LstmEngineConfig(banks=16, work_sram_bytes=16)))
    assert (tiny["work_sram"].attrs["bytes"], tiny["work_sram"].count) == (1, 32)


def test_mac_array_global_buffer_component():
    # a 64 KiB global buffer beside an array of 128-bit SRAM words: one SRAM of 65,536 bytes, 128-bit words
    cfg = MacArrayConfig(rows=2, cols=2, sram_word_bits=128, global_buffer_bytes=65536)
    gb = _by_name(mac_inventory(cfg))["global_buffer"]
    assert (gb.cls, dict(gb.attrs), gb.count) == ("sram", {"bytes": 65536, "word_bits": 128}, 1)
    assert "global_buffer" not in _by_name(mac_inventory(MacArrayConfig(rows=2, cols=2, global_buffer_bytes=0)))


def test_rf_array_buffer_and_dram():
    # the 16 KiB buffer of 64-bit words (input slice, partial sums, outputs) and the off-chip DRAM, one each
    got = _by_name(rf_inventory(RfArrayConfig()))
    assert (got["buffer"].cls, dict(got["buffer"].attrs), got["buffer"].count) == (
        "sram", {"bytes": 16 * 1024, "word_bits": 64}, 1)
    assert (got["dram"].cls, dict(got["dram"].attrs), got["dram"].count) == ("dram", {}, 1)


def test_closed_form_with_a_cold_beat_period_cache():
    # The closed form caches the DRAM beat periods per (dataflow, shape, widths, bandwidth); from an empty cache
    # it must compute them and give the per-fold model's result.
    from hwsim import mac_array_fast

    cfg = MacArrayConfig(rows=3, cols=2, dram_bytes_per_cycle=0.75)
    mac_array_fast._PERIODS.clear()
    assert mac_array_fast.closed_form_gemm(cfg, 7, 9, 5) == predict_gemm_folds(cfg, 7, 9, 5)
    assert mac_array_fast.closed_form_gemm(cfg, 7, 9, 5) == predict_gemm_folds(cfg, 7, 9, 5)  # now cached


def test_mac_array_notes_say_what_idle_slots_cost():
    # docs/idle_lanes.md: with gating "clock" the PE's pipeline register is clock-gated while the PE is idle; with
    # "operand" only the multiplier's operands are held; with "none" an idle slot is priced as a MAC.
    notes = {}
    for gating in ("none", "operand", "clock"):
        got = _by_name(mac_inventory(MacArrayConfig(rows=2, cols=2, gating=gating)))
        notes[gating] = (got["pe_mac"].note, got["pe_pipeline_reg"].note)
    assert notes["clock"][1] == "activation + psum registers; a write updates 40 bits (ws dataflow); clock-gated " \
                                "while the PE is idle"
    assert notes["operand"][1] == notes["none"][1] == "activation + psum registers; a write updates 40 bits " \
                                                      "(ws dataflow)"
    assert "nothing is gated" in notes["none"][0]
    assert notes["operand"][0].startswith("operand isolation: ")
    assert "operands" in notes["clock"][0] and notes["clock"][0] != notes["operand"][0]
