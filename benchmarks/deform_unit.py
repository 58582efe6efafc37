"""deform-unit performance figures: the whole CoDeNet-like deformable layer set at 512x512 input, cycle counts
only, every variant (target < 1 s), and one depthwise 3x3 deformable layer on a 128x128x64 map with
bit-exact values (target < 5 s), each against the direct per-pixel loop of the same layer's first rows
measured in the same run (the ratio is the vectorization's gain)."""

import time

import numpy as np
from hwsim.models import deform_unit as du

from hwsim.deform_unit import DeformLayer, DeformUnitConfig, execute_layer, predict_layer
from hwsim.deform_unit_study import LAYERS, VARIANT_ROWS


def main() -> None:
    t = time.perf_counter()
    n = 0
    for _, kind, dw, mode, bound in VARIANT_ROWS:
        if kind != "dcn":
            continue
        cfg = DeformUnitConfig(offset_mode=mode, offset_bound=bound, max_width=64, max_channels=256)
        for i, (name, c, h) in enumerate(LAYERS):
            predict_layer(cfg, DeformLayer(name, c, h, h, c, depthwise=dw, seed=i))
            n += 1
    print(f"CoDeNet-like layer set at 512x512, {n} layer x variant runs, cycles only: "
          f"{time.perf_counter() - t:.3f} s (target < 1 s)")

    cfg = DeformUnitConfig(offset_mode="free", offset_bound=8.0, max_width=128, max_channels=64)
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(64, 128, 128))
    wt = rng.integers(-128, 128, size=(64, 1, 3, 3))
    raw = du.quantize_offsets(rng.normal(0, 2, size=(18, 128, 128)), cfg.frac_bits)
    t = time.perf_counter()
    vals, st = execute_layer(cfg, x, raw, wt, shift=6)
    fast = time.perf_counter() - t
    print(f"depthwise 3x3 deformable 128x128x64, bit-exact values + exact cycles ({st.detail['unit_cycles']:,}): "
          f"{fast:.2f} s (target < 5 s)")
    # peer: the same values by a direct per-pixel loop on 2 output rows, scaled to 128 rows
    off = du.variant_offsets(cfg.variant(True), raw, 3, 3, frac_bits=cfg.frac_bits)
    t = time.perf_counter()
    one = 1 << cfg.frac_bits
    for y in range(2):
        for xx in range(128):
            for ch in range(64):
                acc = 0
                for k in range(9):
                    i, j = divmod(k, 3)
                    qy = ((y - 1 + i) << cfg.frac_bits) + int(off[2 * k, y, xx])
                    qx = ((xx - 1 + j) << cfg.frac_bits) + int(off[2 * k + 1, y, xx])
                    y0, fy = divmod(qy, one)
                    x0, fx = divmod(qx, one)
                    s = 0
                    for dy, dx, wgt in ((0, 0, (one - fy) * (one - fx)), (0, 1, (one - fy) * fx),
                                        (1, 0, fy * (one - fx)), (1, 1, fy * fx)):
                        if 0 <= y0 + dy < 128 and 0 <= x0 + dx < 128:
                            s += wgt * int(x[ch, y0 + dy, x0 + dx])
                    acc += int(wt[ch, 0, i, j]) * s
    loop = (time.perf_counter() - t) * 64
    print(f"direct per-pixel loop, same layer (2 rows timed, x64): {loop:.0f} s; "
          f"vectorized is x{loop / fast:.0f} faster")


if __name__ == "__main__":
    main()
