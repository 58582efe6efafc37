"""Host-side programming of the LSTM step engine: the gate descriptor word the testbench loads.

It plans the input layer's stages with the reference's tensor formats, so it lives beside the
co-simulation, not in ``rtl/`` (which imports configs and constants only); the word's field layout is the
RTL's (:func:`hwsim.rtl.lstm_step.gate_desc_layout`).
"""

from __future__ import annotations

import numpy as np
from hwsim.models import tensor_formats as tf
from hwsim.rtl.lstm_engine import level_deltas
from hwsim.rtl.lstm_step import gate_desc_layout

from hwsim.errors import HwsimError

__all__ = ["pack_gate_descriptor"]


def pack_gate_descriptor(cfg, fmt, order, hidden: int) -> int:
    """The gate descriptor of input layer ``fmt`` (stage order ``order``) and ``hidden`` units.

    The walk visits rows ``r`` of ``W x`` in natural (m1..md) order; its address is ``r``'s position in the
    last stage's output layout (:func:`hwsim.models.tensor_formats.final_permutation`). Raises
    :class:`~hwsim.errors.HwsimError` when ``4 * hidden`` is not the layer's row count or the layer has
    more non-trivial output modes than ``addr_levels``.
    """
    if 4 * hidden != fmt.shape[0]:
        raise HwsimError(f"hidden={hidden} is not allowed for an input layer of {fmt.shape[0]} rows: expected "
                         f"{fmt.shape[0] / 4:g} (4 gates x H rows)")
    stages = tf.plan_stages(fmt, order)
    sizes = fmt.sizes()
    axes = stages[-1].out_axes
    dims = [sizes[a] for a in axes]
    stride = {a: int(np.prod(dims[i + 1:], dtype=np.int64)) for i, a in enumerate(axes)}
    modes = [a for a in (f"m{k + 1}" for k in range(fmt.d)) if sizes[a] > 1]
    if len(modes) > cfg.addr_levels:
        raise HwsimError(f"addr_levels={cfg.addr_levels} is not allowed for the gate gather: expected >= "
                         f"{len(modes)} (the input layer's output modes of size > 1)")
    counts = [sizes[a] for a in reversed(modes)] or [1]  # innermost (last mode) first
    strides = [stride[a] for a in reversed(modes)] or [0]
    counts += [1] * (cfg.addr_levels - len(counts))
    strides += [0] * (cfg.addr_levels - len(strides))
    vals = {}
    for lv, (c, d) in enumerate(zip(counts, level_deltas(counts, strides), strict=True)):
        vals[f"c{lv}"], vals[f"d{lv}"] = c, d
    perm = tf.final_permutation(fmt, order)
    for g in range(4):
        r = g * hidden
        digits, rest = [], r
        for c in counts:
            digits.append(rest % c)
            rest //= c
        addr = sum(x * s for x, s in zip(digits, strides, strict=True))
        if addr != int(perm[r]):  # the strides must reproduce the reference's final permutation
            raise HwsimError(f"gate gather of {fmt.kind} layer {fmt.shape} is not allowed: row {r} maps to "
                             f"{int(perm[r])}, the walk gives {addr}")
        vals[f"a{g}"], vals[f"n{g}"] = addr, r
        for lv, x in enumerate(digits):
            vals[f"x{g}_{lv}"] = x
    vals["H"] = hidden
    word, pos = 0, 0
    for name, bits in gate_desc_layout(cfg):
        word |= (vals[name] & ((1 << bits) - 1)) << pos
        pos += bits
    return word
