"""Lane arrays to and from the binary memory files of the MAC array harness, vectorized.

The harness copies its DRAM-side memories in from, and its output memory out to, binary files through
DPI-C functions (``hwsim/cosim/hdl/memfile_dpi.cpp``, :mod:`hwsim.cosim.harness`): about fifty times
faster for the simulator than ``$readmemh`` text, and read back by NumPy without parsing. One layout both
ways: each element of an ``elem_bits``-bit memory is ``ceil(elem_bits / 32)`` 32-bit words, least
significant word first, each word little-endian (also what Verilator's ``$fwrite(fd, "%u", ...)`` writes).
A beat packs ``lanes`` unsigned codes of ``lane_bits`` each, lane 0 in the least significant bits (the
layout of :func:`hwsim.mac_array.pack_lanes`). Both directions work on whole NumPy arrays, with no Python
loop per beat.

* :func:`lanes_to_words` -- ``codes[beat, lane]`` to a memory file.
* :func:`words_to_lanes` -- the first ``beats`` elements of a memory file back to ``codes[beat, lane]``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["lanes_to_words", "words_to_lanes"]


def _check_codes(codes: np.ndarray, lane_bits: int, elem_bits: int) -> np.ndarray:
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(f"codes of shape {codes.shape} is not allowed: expected [beats, lanes]")
    if not 1 <= lane_bits <= 64 or codes.shape[1] * lane_bits > elem_bits:
        raise ValueError(f"lanes={codes.shape[1]} x lane_bits={lane_bits} is not allowed: "
                         f"expected lane_bits in [1, 64] and at most elem_bits={elem_bits} bits per beat")
    return codes


def _le_bytes(codes: np.ndarray, lane_bits: int, nbytes: int) -> np.ndarray:
    """``codes[beat, lane]`` as ``nbytes`` little-endian bytes per beat (zero-padded)."""
    codes = np.asarray(codes, dtype=np.uint64)
    beats, lanes = codes.shape
    if lane_bits % 8 == 0:  # byte-aligned lanes: a plain reinterpretation
        per = lane_bits // 8
        raw = np.ascontiguousarray(codes, dtype="<u8").view(np.uint8).reshape(beats, lanes, 8)[:, :, :per]
        raw = raw.reshape(beats, lanes * per)
    else:
        bits = ((codes[:, :, None] >> np.arange(lane_bits, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)
        raw = np.packbits(bits.reshape(beats, lanes * lane_bits), axis=1, bitorder="little")
    out = np.zeros((beats, nbytes), dtype=np.uint8)
    out[:, :raw.shape[1]] = raw
    return out


def lanes_to_words(codes: np.ndarray, lane_bits: int, elem_bits: int) -> bytes:
    """The memory file of ``codes[beat, lane]`` (unsigned, each < ``2**lane_bits``) for a memory of
    ``elem_bits``-bit elements: ``ceil(elem_bits / 32)`` little-endian 32-bit words per beat."""
    codes = _check_codes(codes, lane_bits, elem_bits)
    return _le_bytes(codes, lane_bits, 4 * -(-elem_bits // 32)).tobytes()


def words_to_lanes(data: bytes, beats: int, lanes: int, lane_bits: int, elem_bits: int) -> np.ndarray:
    """The first ``beats`` elements of a memory file of ``elem_bits``-bit elements as ``codes[beat, lane]``
    (uint64). Raises ``ValueError`` if ``data`` holds fewer than ``beats`` elements."""
    _check_codes(np.zeros((0, lanes)), lane_bits, elem_bits)
    per = 4 * -(-elem_bits // 32)
    if len(data) < beats * per:
        raise ValueError(f"memory dump holds {len(data) // per} values of {elem_bits} bits, expected at least {beats}")
    raw = np.frombuffer(data, dtype=np.uint8, count=beats * per).reshape(beats, per)
    nbits = lanes * lane_bits
    if lane_bits % 8 == 0:
        step = lane_bits // 8
        wide = np.zeros((beats, lanes, 8), dtype=np.uint8)
        wide[:, :, :step] = raw[:, :lanes * step].reshape(beats, lanes, step)
        return wide.view("<u8").reshape(beats, lanes).astype(np.uint64)
    bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :nbits]
    weights = np.uint64(1) << np.arange(lane_bits, dtype=np.uint64)
    return (bits.reshape(beats, lanes, lane_bits).astype(np.uint64) * weights).sum(axis=2)
