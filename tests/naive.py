"""The naive MAC-array model the tests check against: written from the specification only, with plain
Python ints and loops, independent of hwsim (value sets, sequential saturating / wrapping accumulation,
explicit rounding). ``tests/test_behaviour.py`` checks it on hand-worked values."""

from __future__ import annotations

NAIVE_WEIGHT_SETS = {
    "int8": list(range(-128, 128)),
    "int4": list(range(-8, 8)),
    "int2": [-2, -1, 0, 1],
    "ternary": [-1, 0, 1],
    "binary": [-1, 1],
    "pow2": [0] + [s * 2**e for e in range(7) for s in (1, -1)],
}


def naive_act_range(act_bits: int) -> list[int]:
    if act_bits == 1:
        return [-1, 1]
    return list(range(-(2 ** (act_bits - 1)), 2 ** (act_bits - 1)))


def naive_ovf(x: int, acc_bits: int, overflow: str) -> int:
    """``x`` brought into an ``acc_bits`` accumulator by saturating or wrapping."""
    lo, hi = -(2 ** (acc_bits - 1)), 2 ** (acc_bits - 1) - 1
    if overflow == "saturate":
        return min(max(x, lo), hi)
    x %= 2**acc_bits
    return x - 2**acc_bits if x > hi else x


def naive_accumulate(a, w, acc_bits, overflow, n_cols=None):
    """Sequential accumulation over k (overflow applied after every product), as nested lists."""
    m_rows, k_len = len(a), len(w)
    n_cols = len(w[0]) if n_cols is None else n_cols
    out = []
    for m in range(m_rows):
        row = []
        for n in range(n_cols):
            acc = 0
            for k in range(k_len):
                acc = naive_ovf(acc + a[m][k] * w[k][n], acc_bits, overflow)
            row.append(acc)
        out.append(row)
    return out


def naive_round_shift(x: int, s: int, rounding: str) -> int:
    """``x / 2**s`` rounded to the nearest integer, ties up (half_up) or to even (half_even)."""
    if s == 0:
        return x
    q, r = divmod(x, 2**s)  # floor quotient, remainder in [0, 2**s)
    half = 2 ** (s - 1)
    if r > half or (r == half and (rounding == "half_up" or q % 2 == 1)):
        q += 1
    return q


def naive_requant(acc: int, act_bits: int, shift: int, relu: bool, rounding: str) -> int:
    """Binary: sign. Otherwise optional ReLU, rounding shift, clamp to the activation range."""
    if act_bits == 1:
        return 1 if acc >= 0 else -1
    x = max(acc, 0) if relu else acc
    lo, hi = -(2 ** (act_bits - 1)), 2 ** (act_bits - 1) - 1
    return min(max(naive_round_shift(x, shift, rounding), lo), hi)
