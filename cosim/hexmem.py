"""Lane arrays to and from ``$readmemh`` / ``$writememh`` text, vectorized.

The harnesses load their DRAM-side memories from hex files and dump their output memories to hex files
(:mod:`hwsim.cosim.tb_util`). A beat packs ``lanes`` unsigned codes of ``lane_bits`` each, lane 0 in the
least significant bits (the layout of :func:`hwsim.mac_array.pack_lanes`). Converting tens of thousands of
beats through Python integers costs more than simulating them, so both directions here work on whole
NumPy arrays: bits are packed with :func:`numpy.packbits`, and hex digits come from ``bytes.hex`` /
a 256-entry lookup table, with no Python loop per beat.

* :func:`lanes_to_hex` -- ``codes[beat, lane]`` to ``$readmemh`` text, one beat per line, each line
  ``2 * ceil(lanes * lane_bits / 8)`` hex digits (leading zeros included; ``$readmemh`` accepts them).
* :func:`hex_to_lanes` -- ``$writememh`` text (one value per line, optional ``//`` comment lines, as
  Verilator and Icarus write) back to ``codes[beat, lane]``.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["hex_to_lanes", "lanes_to_hex"]

# ASCII code -> nibble value (-1: not a hex digit).
_NIBBLE = np.full(256, -1, dtype=np.int16)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i


def _pack_bytes(codes: np.ndarray, lane_bits: int) -> np.ndarray:
    """``codes[beat, lane]`` as little-endian bytes ``[beat, nbytes]``."""
    codes = np.asarray(codes, dtype=np.uint64)
    beats, lanes = codes.shape
    if lane_bits % 8 == 0 and lane_bits <= 64:  # byte-aligned lanes: a plain reinterpretation
        per = lane_bits // 8
        raw = np.ascontiguousarray(codes, dtype="<u8").view(np.uint8).reshape(beats, lanes, 8)[:, :, :per]
        return np.ascontiguousarray(raw.reshape(beats, lanes * per))
    bits = ((codes[:, :, None] >> np.arange(lane_bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bits.reshape(beats, lanes * lane_bits), axis=1, bitorder="little")


def lanes_to_hex(codes: np.ndarray, lane_bits: int) -> str:
    """``$readmemh`` text of ``codes[beat, lane]`` (unsigned, each < ``2**lane_bits``), one beat per line."""
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes of shape {codes.shape} is not allowed: expected [beats, lanes]")
    if codes.shape[0] == 0:
        return ""
    raw = _pack_bytes(codes, lane_bits)[:, ::-1]  # most significant byte first on each line
    width = 2 * raw.shape[1]
    digits = np.frombuffer(np.ascontiguousarray(raw).tobytes().hex().encode(), dtype=np.uint8)
    lines = np.empty((raw.shape[0], width + 1), dtype=np.uint8)
    lines[:, :width] = digits.reshape(raw.shape[0], width)
    lines[:, width] = ord("\n")
    return lines.tobytes().decode()


def hex_to_lanes(text: str, beats: int, lanes: int, lane_bits: int) -> np.ndarray:
    """The first ``beats`` values of ``$writememh`` ``text`` as ``codes[beat, lane]`` (uint64).

    Raises ``ValueError`` if the text holds fewer than ``beats`` values or a value is not hex.
    """
    if beats == 0:
        return np.zeros((0, lanes), dtype=np.uint64)
    raw = text.encode()
    width = raw.find(b"\n")
    if width > 0 and b"//" not in raw and b" " not in raw and len(raw) >= beats * (width + 1) \
            and len(raw) % (width + 1) == 0:  # the usual case: equal-width lines, read in place
        lines = np.frombuffer(raw, dtype=np.uint8).reshape(-1, width + 1)
        fixed = bool(np.all(lines[:, width] == ord("\n")))
    else:
        fixed = False
    if fixed:
        chars = lines[:beats, :width]
    else:
        if "//" in text:
            text = re.sub(r"//[^\n]*", "", text)
        words = text.split()
        if len(words) < beats:
            raise ValueError(f"memory dump holds {len(words)} values, expected at least {beats}")
        words = words[:beats]
        width = max(len(w) for w in words)
        chars = np.frombuffer("".join(w.rjust(width, "0") for w in words).encode(), dtype=np.uint8)
        chars = chars.reshape(beats, width)
    nib = _NIBBLE[chars]
    if np.any(nib < 0):
        bad = bytes(chars[int(np.argwhere(nib < 0)[0][0])]).decode(errors="replace")
        raise ValueError(f"memory dump value {bad!r} is not hex")
    if width % 2:  # an odd digit count: a leading zero nibble
        nib = np.concatenate([np.zeros((beats, 1), dtype=nib.dtype), nib], axis=1)
    be = (nib[:, 0::2] << 4 | nib[:, 1::2]).astype(np.uint8)  # big-endian bytes per beat
    nbits = lanes * lane_bits
    need = (nbits + 7) // 8
    le = be[:, ::-1]
    if le.shape[1] < need:
        le = np.concatenate([le, np.zeros((beats, need - le.shape[1]), dtype=np.uint8)], axis=1)
    le = np.ascontiguousarray(le[:, :need])
    if lane_bits % 8 == 0 and lane_bits <= 64:
        per = lane_bits // 8
        wide = np.zeros((beats, lanes, 8), dtype=np.uint8)
        wide[:, :, :per] = le.reshape(beats, lanes, per)
        return wide.view("<u8").reshape(beats, lanes).astype(np.uint64)
    bits = np.unpackbits(le, axis=1, bitorder="little")[:, :nbits]
    weights = np.uint64(1) << np.arange(lane_bits, dtype=np.uint64)
    return (bits.reshape(beats, lanes, lane_bits).astype(np.uint64) * weights).sum(axis=2)
