"""cosim/memfile.py against a naive Python-integer encoding of the same beats: 32-bit little-endian words
per element, least significant word first (memfile_dpi.cpp's layout, also Verilator's %u)."""

import numpy as np
import pytest
from hwsim.cosim.memfile import lanes_to_words, words_to_lanes


def naive_beats(codes, lane_bits):
    return [sum(int(c) << (i * lane_bits) for i, c in enumerate(row)) for row in codes]


def naive_words(values, elem_bits):
    """ceil(elem_bits / 32) 32-bit words per element, least significant word first, little-endian."""
    return b"".join(v.to_bytes(4 * -(-elem_bits // 32), "little") for v in values)


# (beats, lanes, lane_bits, elem_bits): byte-aligned and odd lanes, elements wider than the lanes, 1-bit
# bitmaps, 32/64-bit edges and wide (multi-word) beats.
CASES = [(1, 1, 1, 1), (5, 1, 3, 3), (7, 8, 8, 64), (1000, 8, 8, 64), (33, 7, 9, 63), (64, 3, 12, 40),
         (17, 2, 16, 32), (9, 3, 32, 96), (11, 1, 64, 64), (40, 5, 5, 25), (23, 8, 18, 144), (6, 16, 8, 128),
         (3, 1, 20, 32), (4, 4, 4, 17)]


@pytest.mark.parametrize("beats,lanes,lane_bits,elem_bits", CASES)
def test_images_match_python_integers(beats, lanes, lane_bits, elem_bits):
    rng = np.random.default_rng(beats * 1000 + lanes * 100 + lane_bits + elem_bits)
    hi = 1 << lane_bits
    codes = np.array([[int(rng.integers(0, 1 << 62)) * 7 % hi for _ in range(lanes)] for _ in range(beats)],
                     dtype=np.uint64)
    codes[0] = hi - 1  # all ones in the first beat
    want = naive_beats(codes, lane_bits)
    image = naive_words(want, elem_bits)
    assert lanes_to_words(codes, lane_bits, elem_bits) == image
    assert np.array_equal(words_to_lanes(image, beats, lanes, lane_bits, elem_bits), codes)
    # A longer file (the whole memory) reads its first `beats` elements.
    longer = image + naive_words([5, 6], elem_bits)
    assert np.array_equal(words_to_lanes(longer, beats, lanes, lane_bits, elem_bits), codes)


def test_bad_shapes_and_short_dumps():
    with pytest.raises(ValueError, match="holds 1 values of 64 bits, expected at least 2"):
        words_to_lanes(bytes(8), 2, 8, 8, 64)
    with pytest.raises(ValueError, match=r"lanes=3 x lane_bits=8 is not allowed"):
        lanes_to_words(np.zeros((2, 3), dtype=np.uint64), 8, 16)
    with pytest.raises(ValueError, match=r"shape \(4,\) is not allowed"):
        lanes_to_words(np.zeros(4, dtype=np.uint64), 8, 64)
    assert lanes_to_words(np.zeros((0, 3), dtype=np.uint64), 8, 24) == b""
    assert words_to_lanes(b"", 0, 2, 8, 16).shape == (0, 2)


def test_non_contiguous_lanes():
    # Fold slices of a transposed matrix (the OS/IS beat layouts) are not C-contiguous.
    codes = np.arange(48, dtype=np.uint64).reshape(6, 8).T[:, 1:5]
    assert not codes.flags.c_contiguous
    for bits in (8, 7):
        assert lanes_to_words(codes, bits, 4 * bits) == naive_words(naive_beats(codes, bits), 4 * bits)
