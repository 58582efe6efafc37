"""Run SCALE-Sim 3 via its Python API (traces not saved) and time it."""
import sys
import time

from scalesim.scale_sim import scalesim

cfg, topo, layout, out = sys.argv[1:5]
t0 = time.perf_counter()
s = scalesim(save_disk_space=True, verbose=False, config=cfg, topology=topo, layout=layout, input_type_gemm=False)
s.run_scale(top_path=out)
print(f"wall {time.perf_counter()-t0:.2f} s", flush=True)
