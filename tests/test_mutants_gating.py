"""Tests written for mutation-run survivors about idle-lane gating (docs/testing.md):

* the LSTM engine's accumulator register is clock-gated, and says so, only with ``gating=clock``
  (docs/cost_inventories.md: `pe_acc_reg`, ``gating=clock``: "clock-gated while the lane is idle", other
  gating: no note);
* an N:M sparse WS array's input and weight buffers under gating: a beat's access touches the words that
  hold its real lanes (rows a multiple of N), counted here by walking the folds with loops (weight beats: the fold's kept-weight
  rows, ``cols`` lanes of code + index bits, the tile's columns real; activation beats: ``rows * M / N``
  lanes, the fold's real reduction steps real).
"""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.config import MacArrayConfig
from hwsim.lstm_engine import LstmEngineConfig
from hwsim.lstm_engine import inventory as lstm_inventory
from hwsim.mac_array import predict_gemm


@pytest.mark.parametrize("gating", ["none", "operand", "clock"])
def test_lstm_accumulator_register_note_follows_clock_gating(gating):
    reg = {c.name: c for c in lstm_inventory(LstmEngineConfig(gating=gating)).components}["pe_acc_reg"]
    assert reg.note == ("clock-gated while the lane is idle" if gating == "clock" else "")


def _cdiv(a, b):
    return -(-a // b)


def _nm_walk(rows, cols, n_keep, m_group, m, k, n, word, gating, m_tile):
    """(input SRAM words, weight SRAM words) written (= read) by one N:M GEMM, by loops over folds and beats."""
    k_step = rows * m_group // n_keep
    lane_w = 8 + (m_group - 1).bit_length()  # int8 code and its index within the group
    inp = wt = 0
    for m0 in range(0, m, m_tile):
        for n0 in range(0, n, cols):
            for k0 in range(0, k, k_step):
                steps = min(k_step, k - k0)
                kept = n_keep * (steps // m_group) + min(n_keep, steps % m_group)
                real_cols = min(cols, n - n0) if gating != "none" else cols
                real_steps = steps if gating != "none" else k_step
                for _ in range(kept):  # weight beats: lanes from lane 0, a word per word touched
                    wt += len({b // word for b in range(real_cols * lane_w)})
                for _ in range(min(m_tile, m - m0)):  # activation beats
                    inp += len({b // word for b in range(real_steps * 8)})
    return inp, wt


@settings(max_examples=60, deadline=None)
@given(rows=st.sampled_from([2, 4, 6]), cols=st.sampled_from([1, 2, 3, 5]), nm=st.sampled_from(["2:4", "1:4"]),
       m=st.integers(1, 9), k=st.integers(1, 23), n=st.integers(1, 11), word=st.sampled_from([8, 16, 24, 64]),
       gating=st.sampled_from(["clock", "operand", "none"]))
def test_nm_buffer_words_equal_a_fold_walk(rows, cols, nm, m, k, n, word, gating):
    cfg = MacArrayConfig(rows=rows, cols=cols, dataflow="ws", sparsity=nm, gating=gating, sram_word_bits=word)
    n_keep, m_group = (int(v) for v in nm.split(":"))
    inp, wt = _nm_walk(rows, cols, n_keep, m_group, m, k, n, word, gating, cfg.fold_steps[0])
    acts = predict_gemm(cfg, m, k, n, mode="sparse").actions
    counts = (acts.pairs() if hasattr(acts, "pairs") else acts).counts
    assert counts[("input_sram", "write")] == counts[("input_sram", "read")] == inp
    assert counts[("weight_sram", "write")] == counts[("weight_sram", "read")] == wt


def _rf_rows_by_gating() -> dict:
    """docs/cost_inventories.md's rf-array rows whose configuration is exactly one gating: {gating: {name: note}}."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "cost_inventories.md").read_text()
    section = text[text.index("## rf-array"):text.index("\n## ", text.index("## rf-array") + 1)]
    out: dict = {}
    for name, gating, note in re.findall(r"^\| `(\w+)` \|[^|]*\|[^|]*\| `gating=(\w+)` \| `([^`]*)` \|$", section,
                                         flags=re.M):
        out.setdefault(gating, {})[name] = note
    return out


@pytest.mark.parametrize("gating", ["none", "clock"])
def test_rf_converter_notes_follow_the_gating_the_reference_gives(gating):
    """Each rf-array component that docs/cost_inventories.md lists for one gating prints that row's note under
    that gating, and the components listed only for ``clock`` (the converters' gates) exist only with it."""
    from hwsim.rf_array import RfArrayConfig
    from hwsim.rf_array import inventory as rf_inventory

    rows = _rf_rows_by_gating()
    assert set(rows) == {"none", "clock"} and {"signal_dac", "adc", "post"} <= set(rows["none"])
    notes = {c.name: c.note for c in rf_inventory(RfArrayConfig(gating=gating)).components}
    for name, note in rows[gating].items():
        assert notes[name] == note, name
    only_clock = set(rows["clock"]) - set(rows["none"])
    assert only_clock == {"signal_dac_gate", "adc_gate"}
    assert (only_clock <= set(notes)) == (gating == "clock")
