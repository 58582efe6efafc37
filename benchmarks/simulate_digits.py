"""Wall time of the main job: digits-cnn (int8) on an 8x8 WS MAC array over the whole digits test set.

Target (issue 3): under 10 seconds. Usage: python benchmarks/simulate_digits.py
"""

import resource
import time

from hwsim.simulate import simulate

for spec in ("int8", "int4", "binary", "prune50+int8"):
    t0 = time.perf_counter()
    rep = simulate("digits-cnn", "mac-array-8x8-ws", spec, progress=False)
    wall = time.perf_counter() - t0
    print(f"digits-cnn {spec:<14} {rep.test_images} images  {wall:6.2f} s  "
          f"accuracy {100 * rep.accuracy_simulated:5.2f} % "
          f"(bit-exact: {rep.simulated_equals_reference})  {rep.cycles:,} cycles/inference  "
          f"{rep.energy_pj / 1e6:.3f} uJ/inference")
print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
