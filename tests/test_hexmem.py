"""cosim/hexmem.py against a naive Python-integer encoding of the same beats."""

import numpy as np
import pytest
from hwsim.cosim.hexmem import hex_to_lanes, lanes_to_hex


def naive_beats(codes, lane_bits):
    return [sum(int(c) << (i * lane_bits) for i, c in enumerate(row)) for row in codes]


CASES = [(1, 1, 1), (5, 1, 3), (7, 8, 8), (1000, 8, 8), (33, 7, 9), (64, 3, 12), (17, 2, 16), (9, 3, 32),
         (11, 1, 64), (40, 5, 5), (23, 8, 18)]


@pytest.mark.parametrize("beats,lanes,lane_bits", CASES)
def test_round_trip_matches_python_integers(beats, lanes, lane_bits):
    rng = np.random.default_rng(beats * 100 + lanes * 10 + lane_bits)
    hi = 1 << lane_bits
    codes = np.array([[int(rng.integers(0, 1 << 62)) % hi for _ in range(lanes)] for _ in range(beats)],
                     dtype=np.uint64)
    codes[0] = hi - 1  # all ones in the first beat
    want = naive_beats(codes, lane_bits)
    text = lanes_to_hex(codes, lane_bits)
    lines = text.splitlines()
    assert len(lines) == beats and text.endswith("\n")
    assert [int(x, 16) for x in lines] == want
    assert len({len(x) for x in lines}) == 1
    # The reader takes the writer's padded lines and unpadded ones (as $writememh may print them).
    assert np.array_equal(hex_to_lanes(text, beats, lanes, lane_bits), codes)
    unpadded = "".join(f"{v:x}\n" for v in want)
    assert np.array_equal(hex_to_lanes(unpadded, beats, lanes, lane_bits), codes)


def test_reader_skips_comments_takes_prefix_and_rejects_bad_text():
    text = "// memory dump\n0a0b\n// 0x1\nFFff\n0001\n"
    assert hex_to_lanes(text, 2, 2, 8).tolist() == [[0x0b, 0x0a], [0xff, 0xff]]
    assert hex_to_lanes(text, 0, 2, 8).shape == (0, 2)
    with pytest.raises(ValueError, match="holds 3 values, expected at least 4"):
        hex_to_lanes(text, 4, 2, 8)
    with pytest.raises(ValueError, match="'0x12' is not hex"):
        hex_to_lanes("0012\n0x12\n", 2, 2, 8)
    assert lanes_to_hex(np.zeros((0, 3), dtype=np.uint64), 8) == ""


def test_non_contiguous_lanes():
    # Fold slices of a transposed matrix (the OS/IS beat layouts) are not C-contiguous.
    codes = np.arange(48, dtype=np.uint64).reshape(6, 8).T[:, 1:5]
    assert not codes.flags.c_contiguous
    for bits in (8, 7):
        text = lanes_to_hex(codes, bits)
        assert [int(x, 16) for x in text.split()] == naive_beats(codes, bits)
