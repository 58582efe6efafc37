"""DRAM timing in closed form: bursts, banks, row-buffer hits and misses, refresh.

A transfer is a list of *runs*, each a contiguous byte range ``[addr, addr + nbytes)`` of one tensor in
DRAM (:mod:`hwsim.memory` makes them: a band of feature-map rows, a chunk of weights, an output band).
The controller serves the runs in order, open-page, with this address map (row : bank : column, as
Ramulator's ``RoBaCo``)::

    page = addr // page_bytes        bank = page % banks        row = page // banks

so consecutive pages of a run sit in consecutive banks. The time of a run, in ns:

* **first access** (the run's first page is a row miss): ``tRP + tRCD + tCL`` before its first data;
* **data**: every burst of ``burst_bytes`` (aligned; a run that starts or ends inside a burst moves the
  whole burst, and those bytes are counted) occupies the data bus ``t_burst``;
* **page switch** inside a run: the next page is in another bank, whose ACT the controller issues when the
  previous page's first burst goes out (one page of look-ahead), so the switch exposes
  ``max(0, tRP + tRCD - bursts(previous page) * t_burst)``;
* **refresh**: all-bank refresh takes the channel for ``tRFC`` every ``tREFI``; a layer's transfers of
  busy time ``T`` (starting right after a refresh) finish after ``T + r * tRFC``, ``r`` the refreshes
  that start before the data is done: the k-th starts at ``k * tREFI``, when ``k * tREFI - (k - 1) * tRFC``
  ns of data have moved, so ``r = max(0, ceil((T - tRFC) / (tREFI - tRFC)) - 1)`` (the data is treated
  as divisible at the refresh boundary).

Not modelled (documented assumptions): reads and writes share the bus with no turnaround (tWTR, tRTW),
``tRRD`` / ``tFAW`` and same-bank ``tRC`` limits (a run revisits a bank only after ``banks`` pages),
several channels (``channels`` multiplies the bus width: the runs are striped across channels burst by
burst), and queueing or reordering in the controller. ``tests/test_memory.py`` checks the closed form
against a burst-by-burst simulation of exactly this controller.

The built-in parts (``lpddr4``, ``ddr3``, ``hbm2``, the ``--dram`` choices of the cost model) take their
timing from the JEDEC speed bins as transcribed in Ramulator (CMU-SAFARI/ramulator ``src/LPDDR4.h``,
ramulator2 ``src/dram/impl/DDR3.cpp`` and ``HBM2.cpp``); a YAML file with the same fields describes any
other part (:func:`load_dram_spec`). ``fixed`` keeps the old model: a fixed number of bytes per cycle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["DRAM_SPECS", "DramSpec", "burst_count", "busy_ns", "load_dram_spec", "refreshes", "resolve_dram_spec",
           "transfer_ns"]


@dataclass(frozen=True)
class DramSpec:
    """One DRAM channel (or ``channels`` identical ones striped burst by burst). Times in ns."""

    name: str
    burst_bytes: int  # bytes of one burst on one channel (bus width x burst length)
    t_burst: float  # ns the data bus is busy per burst
    page_bytes: int  # row-buffer (page) size of one bank as seen by the channel
    banks: int
    t_rcd: float
    t_rp: float
    t_cl: float
    t_rfc: float
    t_refi: float
    channels: int = 1
    source: str = ""

    def __post_init__(self):
        for f in ("burst_bytes", "page_bytes", "banks", "channels"):
            v = getattr(self, f)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise HwsimError(f"dram {f}={v!r} is not allowed: expected an integer >= 1")
        for f in ("t_burst", "t_rcd", "t_rp", "t_cl", "t_rfc", "t_refi"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise HwsimError(f"dram {f}={v!r} is not allowed: expected a finite number of ns >= 0")
        if self.t_burst <= 0:
            raise HwsimError(f"dram t_burst={self.t_burst!r} is not allowed: expected a number of ns > 0")
        if self.page_bytes % self.burst_bytes:
            raise HwsimError(f"dram page_bytes={self.page_bytes} is not allowed: expected a multiple of "
                             f"burst_bytes={self.burst_bytes}")
        if self.t_refi and self.t_rfc >= self.t_refi:
            raise HwsimError(f"dram t_rfc={self.t_rfc!r} is not allowed: expected less than t_refi={self.t_refi!r} "
                             "(the channel would never be free)")

    @property
    def peak_bytes_per_ns(self) -> float:
        return self.channels * self.burst_bytes / self.t_burst

    def describe(self) -> str:
        return (f"{self.name}: {self.channels} x {self.burst_bytes} B bursts every {self.t_burst:g} ns "
                f"({self.peak_bytes_per_ns:g} GB/s peak), {self.banks} banks of {self.page_bytes} B pages, "
                f"tRP/tRCD/tCL {self.t_rp:g}/{self.t_rcd:g}/{self.t_cl:g} ns, tRFC {self.t_rfc:g} ns every "
                f"tREFI {self.t_refi:g} ns")


#: The built-in parts. Clock counts from the Ramulator speed tables converted at the part's tCK.
DRAM_SPECS = {
    # LPDDR4-3200, one x16 channel, 8 Gb die: tCK 0.625 ns, BL16 = 32 B over 8 tCK; nRCD 29, nRPpb 27,
    # nCL 32 (Ramulator LPDDR4_3200, from JESD209-4 table 89); tRFCab 280 ns (8 Gb), tREFI 3.904 us;
    # 8 banks, 2 KB pages (1024 columns x 16 bit).
    "lpddr4": DramSpec("lpddr4", burst_bytes=32, t_burst=8 * 0.625, page_bytes=2048, banks=8,
                       t_rcd=29 * 0.625, t_rp=27 * 0.625, t_cl=32 * 0.625, t_rfc=280.0, t_refi=3904.0,
                       source="JEDEC JESD209-4 LPDDR4-3200 x16 (Ramulator src/LPDDR4.h speed table); 8 Gb die"),
    # DDR3-1600K (11-11-11), a 64-bit DIMM of x8 4 Gb chips: tCK 1.25 ns, BL8 = 64 B over 4 tCK; tRFC 260 ns
    # (4 Gb), tREFI 7.8 us; 8 banks, 8 KB pages (8 chips x 1 KB).
    "ddr3": DramSpec("ddr3", burst_bytes=64, t_burst=4 * 1.25, page_bytes=8192, banks=8,
                     t_rcd=11 * 1.25, t_rp=11 * 1.25, t_cl=11 * 1.25, t_rfc=260.0, t_refi=7800.0,
                     source="JEDEC JESD79-3 DDR3-1600K, 64-bit DIMM of x8 4 Gb chips (ramulator2 DDR3.cpp)"),
    # HBM2 2 Gbps, one 64-bit pseudo channel: tCK 1 ns, BL4 = 32 B over 2 tCK; nRCD 7, nRP 7, nCL 7,
    # tRFC 160 ns, tREFI 3.9 us (ramulator2 HBM2_2Gbps); 16 banks (4 groups x 4), 1 KB pages.
    "hbm2": DramSpec("hbm2", burst_bytes=32, t_burst=2.0, page_bytes=1024, banks=16,
                     t_rcd=7.0, t_rp=7.0, t_cl=7.0, t_rfc=160.0, t_refi=3900.0,
                     source="JEDEC JESD235 HBM2 2 Gbps pseudo channel (ramulator2 HBM2.cpp HBM2_2Gbps)"),
}

_FIELDS = tuple(f.name for f in fields(DramSpec))
_REQUIRED = tuple(f for f in _FIELDS if f not in ("name", "channels", "source"))


def load_dram_spec(path) -> DramSpec:
    """A :class:`DramSpec` from a YAML or JSON file with the fields of :class:`DramSpec` (times in ns);
    a missing, unknown or impossible field is one line naming it."""
    import yaml

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as e:
        raise HwsimError(f"--dram={str(path)!r} is not allowed: cannot read it ({e.strerror}); expected one of "
                         f"{', '.join(DRAM_SPECS)} or a DRAM parameter file") from None
    except yaml.YAMLError as e:
        raise HwsimError(f"--dram={str(path)!r} is not allowed: not YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise HwsimError(f"--dram={str(path)!r} is not allowed: expected a mapping of the fields "
                         f"{', '.join(_REQUIRED)}")
    unknown = sorted(set(map(str, data)) - set(_FIELDS))
    if unknown:
        raise HwsimError(f"{p.name}: field {unknown[0]!r} is not allowed: expected one of {', '.join(_FIELDS)}")
    missing = [f for f in _REQUIRED if f not in data]
    if missing:
        raise HwsimError(f"{p.name}: field {missing[0]!r} is missing: expected all of {', '.join(_REQUIRED)} "
                         "(times in ns)")
    data.setdefault("name", p.stem)
    try:
        return DramSpec(**data)
    except HwsimError as e:
        raise HwsimError(f"{p.name}: {e}") from None


def resolve_dram_spec(dram) -> DramSpec | None:
    """``dram`` as a :class:`DramSpec`: a built-in name, a parameter file, a spec, or ``"fixed"`` (None: the
    fixed-bandwidth model)."""
    if isinstance(dram, DramSpec):
        return dram
    if dram == "fixed":
        return None
    if isinstance(dram, str) and dram in DRAM_SPECS:
        return DRAM_SPECS[dram]
    if isinstance(dram, str | Path) and (str(dram).endswith((".yaml", ".yml", ".json")) or Path(dram).exists()):
        return load_dram_spec(dram)
    raise HwsimError(f"--dram={dram!r} is not allowed: expected one of {', '.join(DRAM_SPECS)}, fixed, or a "
                     "DRAM parameter file (.yaml)")


def _runs(addr, nbytes) -> tuple[np.ndarray, np.ndarray]:
    a = np.atleast_1d(np.asarray(addr, dtype=np.int64))
    n = np.atleast_1d(np.asarray(nbytes, dtype=np.int64))
    a, n = np.broadcast_arrays(a, n)
    if (a < 0).any() or (n < 0).any():
        raise HwsimError("DRAM run with a negative address or size is not allowed: expected >= 0")
    keep = n > 0
    return a[keep], n[keep]


def burst_count(spec: DramSpec, addr, nbytes) -> int:
    """Bursts the runs ``[addr, addr + nbytes)`` move (aligned bursts; each channel's burst counts once)."""
    a, n = _runs(addr, nbytes)
    bb = spec.burst_bytes * spec.channels
    return int((((a + n - 1) // bb) - (a // bb) + 1).sum())


def busy_ns(spec: DramSpec, addr, nbytes) -> float:
    """Data-bus busy time of the runs, in ns, before refresh (first-access latency, bursts, exposed page
    switches); vectorized over the runs."""
    a, n = _runs(addr, nbytes)
    if a.size == 0:
        return 0.0
    bb = spec.burst_bytes * spec.channels  # bytes per burst slot across the striped channels
    pb = spec.page_bytes * spec.channels
    first_b, last_b = a // bb, (a + n - 1) // bb
    bursts = last_b - first_b + 1
    first_p, last_p = a // pb, (a + n - 1) // pb
    pages = last_p - first_p + 1
    per_page = pb // bb
    b0 = np.where(pages == 1, bursts, (first_p + 1) * per_page - first_b)  # bursts in the first page
    act = spec.t_rp + spec.t_rcd
    exposed = (np.where(pages >= 2, np.maximum(0.0, act - b0 * spec.t_burst), 0.0)
               + np.maximum(pages - 2, 0) * max(0.0, act - per_page * spec.t_burst))
    first = act + spec.t_cl
    return float((first + bursts * spec.t_burst + exposed).sum())


def refreshes(spec: DramSpec, t_busy: float) -> int:
    """All-bank refreshes inside a transfer of busy time ``t_busy`` ns that starts right after one."""
    if spec.t_refi <= 0 or t_busy <= spec.t_refi:
        return 0
    return max(0, math.ceil((t_busy - spec.t_rfc) / (spec.t_refi - spec.t_rfc)) - 1)


def transfer_ns(spec: DramSpec, addr, nbytes) -> float:
    """Time of the runs ``[addr, addr + nbytes)`` served in order, refresh included, in ns."""
    t = busy_ns(spec, addr, nbytes)
    return t + refreshes(spec, t) * spec.t_rfc


def as_dict(spec: DramSpec) -> dict:
    return asdict(spec)
