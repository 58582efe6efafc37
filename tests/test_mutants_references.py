"""Survivors of the mutation run (docs/testing.md) in the RF emulator's statistics and the LSTM reference's
quantizer, killed against hand values."""

from __future__ import annotations

import numpy as np
import pytest
from hwsim.models import lstm_engine as lref

from hwsim.errors import HwsimError
from hwsim.rf_array import RfArrayConfig, predict_emulator


def test_rf_emulator_stats_fields_by_hand():
    # 8-port emulator streaming 5 vectors: one 8x8 complex matrix-vector product per vector = 4 real MACs per
    # complex MAC: 4 * 64 * 5 = 1,280 MACs; the record is one fold, one group, no stalls, M = vectors.
    cfg = RfArrayConfig(target="emulator")
    st = predict_emulator(cfg, 5)
    assert (st.name, st.m, st.k, st.n, st.groups, st.stall_cycles, st.folds, st.macs) == (
        "mesh", 5, 8, 8, 1, 0, 1, 1280)
    assert st.utilization == 5 / st.cycles  # one vector per cycle at best
    with pytest.raises(HwsimError, match=r"^vectors=0 is not allowed: expected an integer >= 1"):
        predict_emulator(cfg, 0)


def test_lstm_quantize_returns_int64_codes():
    # clamp(rint(x * 2**frac)) to signed 8 bit: 0.3 * 16 = 4.8 -> 5; -20 * 16 -> -320 -> -128; 7.97 -> 127.5 -> 128
    # (ties to even) -> 127.
    q = lref.quantize(np.array([0.3, -20.0, 7.96875]), 4, 8)
    assert q.dtype == np.int64
    assert q.tolist() == [5, -128, 127]
