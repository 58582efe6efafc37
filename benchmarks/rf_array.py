"""rf-array performance figures: Clements decomposition + reconstruction of a random 64x64 unitary (target
< 0.5 s), Reck for comparison, and one accuracy-vs-error sweep of the tt-rfnn study (20 magnitudes x 10
seeds, target < 60 s; training excluded)."""

import time

import numpy as np
from hwsim.models import rf_mesh

from hwsim import rf_array_study as S


def main() -> None:
    u = rf_mesh.random_unitary(64, 0)
    for style in rf_mesh.MESH_STYLES:
        t = time.perf_counter()
        mesh = rf_mesh.decompose(u, style)
        err = float(np.max(np.abs(mesh.matrix() - u)))
        print(f"{style} 64x64 decompose + reconstruct: {time.perf_counter() - t:.3f} s (max error {err:.2e})")
    xtr, ytr, xte, yte = S.load_digits_split()
    nets = {k: S.train(k, xtr, ytr, epochs=150) for k in ("dense", "tt")}
    meshes = {k: S.map_network(v) for k, v in nets.items()}
    mags = S.ERROR_SWEEPS["phase_noise"][2]
    for name in nets:
        t = time.perf_counter()
        S.sweep({name: nets[name]}, {name: meshes[name]}, xte, yte, "phase_noise", mags, 10)
        print(f"{name} network, phase-noise sweep {len(mags)} magnitudes x 10 seeds: {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
