"""Lane arrays to and from the binary memory files of the MAC array harness, vectorized.

The harness loads its DRAM-side memories with ``$fread`` and dumps its output memory with ``$fwrite(fd,
"%u", ...)`` (:mod:`hwsim.cosim.harness`): binary files, about four times faster for the simulator than
``$readmemh`` text (which it parses a character at a time) and read back by NumPy without parsing. A beat
packs ``lanes`` unsigned codes of ``lane_bits`` each, lane 0 in the least significant bits (the layout of
:func:`hwsim.mac_array.pack_lanes`). Both directions work on whole NumPy arrays, with no Python loop per
beat.

* :func:`lanes_to_fread` -- ``codes[beat, lane]`` to the bytes ``$fread(mem, fd)`` loads into a memory
  of ``elem_bits``-bit elements: per element ``ceil(elem_bits / 8)`` bytes, most significant first
  (IEEE 1800-2017 21.3.4.4).
* :func:`fwrite_u_to_lanes` -- what ``$fwrite(fd, "%u", mem[i])`` wrote for consecutive elements of
  ``elem_bits`` bits (per element ``ceil(elem_bits / 32)`` 32-bit words, least significant word first,
  each word little-endian, as Verilator writes them) back to ``codes[beat, lane]``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fwrite_u_to_lanes", "lanes_to_fread"]


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


def lanes_to_fread(codes: np.ndarray, lane_bits: int, elem_bits: int) -> bytes:
    """The ``$fread`` image of ``codes[beat, lane]`` (unsigned, each < ``2**lane_bits``) for a memory of
    ``elem_bits``-bit elements: ``ceil(elem_bits / 8)`` bytes per beat, most significant byte first."""
    codes = _check_codes(codes, lane_bits, elem_bits)
    nbytes = -(-elem_bits // 8)
    return np.ascontiguousarray(_le_bytes(codes, lane_bits, nbytes)[:, ::-1]).tobytes()


def fwrite_u_to_lanes(data: bytes, beats: int, lanes: int, lane_bits: int, elem_bits: int) -> np.ndarray:
    """The first ``beats`` elements of a ``%u`` dump of ``elem_bits``-bit elements as ``codes[beat, lane]``
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
