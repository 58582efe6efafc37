"""Compression spec strings: their grammar, parser and the formats they name.

A compression is described by a spec string (:func:`parse_compress_spec`)::

    [svd-rR | svd-eE] + [pruneP | blockRxC-P | N:M] + FORMAT[-pt | -pc]

for example ``int8``, ``int4-pc``, ``binary``, ``prune50+int8``, ``block4x4-50+int8``, ``2:4+int8``,
``svd-r8+int8``, ``svd-e0.9+int8``. Transforms are applied to the float model in the order low-rank
factorization, pruning, quantization.

A trailing ``+ft`` (``binary+ft``, ``int2+ft``, ``2:4+int8+ft``) asks for compression-aware fine-tuning:
the float model is fine-tuned with the pruning masks and the quantizers in the loop
(:mod:`hwsim.models.training`) before it is compressed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hwsim.models.errors import HwsimError

__all__ = ["POW2_MAX_SHIFT", "QUANT_FORMATS", "SPEC_FORMS", "WEIGHT_BITS", "CompressSpec", "parse_compress_spec"]

QUANT_FORMATS = ("int8", "int4", "int2", "binary", "ternary", "pow2")
#: Width of one weight code in bits: the one table (``hwsim.config``, the cost model and the references import it).
WEIGHT_BITS = {"int8": 8, "int4": 4, "int2": 2, "ternary": 2, "binary": 1, "pow2": 4}
#: pow2 weight code: 1 sign bit + 3 exponent bits; exponent code 0 means zero, e >= 1 means 2**(e-1), so the
#: largest shift is 6 (|w| <= 64).
POW2_MAX_SHIFT = 6

SPEC_FORMS = (
    "[svd-rR+|svd-eE+][pruneP+|blockRxC-P+|N:M+]FORMAT[-pt|-pc][+ft] with FORMAT one of "
    + ", ".join(QUANT_FORMATS)
    + " (e.g. int8, int4-pc, binary, prune50+int8, block4x4-50+int8, 2:4+int8, svd-r8+int8, svd-e0.9+int8,"
    " binary+ft, 2:4+int8+ft)"
)


@dataclass(frozen=True)
class CompressSpec:
    """A parsed compression spec (see :func:`parse_compress_spec`)."""

    weight_format: str = "int8"
    per_channel: bool = False
    prune: str | None = None  # "magnitude" | "block" | "nm"
    sparsity: float = 0.0  # fraction pruned, for magnitude / block
    block: tuple[int, int] | None = None  # (rows along K, cols along N)
    nm: tuple[int, int] | None = None  # keep N of every M
    svd_rank: int | None = None
    svd_energy: float | None = None
    finetune: bool = False  # "+ft": compression-aware fine-tuning before compression

    def __str__(self) -> str:
        parts = []
        if self.svd_rank is not None:
            parts.append(f"svd-r{self.svd_rank}")
        if self.svd_energy is not None:
            parts.append(f"svd-e{self.svd_energy:g}")
        pct = f"{100 * self.sparsity:g}"
        if self.prune == "magnitude":
            parts.append(f"prune{pct}")
        elif self.prune == "block":
            parts.append(f"block{self.block[0]}x{self.block[1]}-{pct}")
        elif self.prune == "nm":
            parts.append(f"{self.nm[0]}:{self.nm[1]}")
        fmt = self.weight_format
        if self.per_channel and fmt != "binary":
            fmt += "-pc"
        parts.append(fmt)
        if self.finetune:
            parts.append("ft")
        return "+".join(parts)


_NUM = r"(\d+(?:\.\d+)?)"
_RE_PRUNE = re.compile(rf"prune{_NUM}")
_RE_BLOCK = re.compile(rf"block(\d+)x(\d+)-{_NUM}")
_RE_NM = re.compile(r"(\d+):(\d+)")
_RE_SVD_R = re.compile(r"svd-r(\d+)")
_RE_SVD_E = re.compile(rf"svd-e{_NUM}")
_RE_FMT = re.compile(r"(int8|int4|int2|binary|ternary|pow2)(?:-(pt|pc))?")


def parse_compress_spec(spec) -> CompressSpec:
    """Parse a compression spec string; see the module docstring for the grammar.

    ``pruneP`` prunes P percent of every conv / linear weight by magnitude; ``blockRxC-P`` prunes P
    percent of the R x C blocks of every layer's GEMM weight matrix (R along the reduction K, C along the
    output channels N) by mean squared magnitude; ``N:M`` keeps the N largest of every M consecutive
    weights along K. ``svd-rR`` factorizes layers to rank R, ``svd-eE`` to the smallest rank keeping a
    fraction E of the squared singular values. ``-pt`` (default) quantizes per tensor, ``-pc`` per output
    channel. A trailing ``+ft`` fine-tunes the model with the compression in the loop first (see
    :func:`hwsim.models.training.finetuned`). Bad specs raise HwsimError naming the spec and the allowed forms.
    """
    if isinstance(spec, CompressSpec):
        return spec

    def bad(why: str = ""):
        why = f" ({why})" if why else ""
        return HwsimError(f"compression spec {spec!r} is not allowed{why}: expected {SPEC_FORMS}")

    if not isinstance(spec, str) or not spec.strip():
        raise bad()
    parts = [p.strip() for p in spec.strip().lower().split("+")]
    finetune = len(parts) > 1 and parts[-1] == "ft"
    if finetune:
        parts = parts[:-1]
    m = _RE_FMT.fullmatch(parts[-1])
    if not m:
        raise bad(f"{parts[-1]!r} is not a weight format")
    kw: dict = {"weight_format": m.group(1), "per_channel": m.group(2) == "pc", "finetune": finetune}
    for part in parts[:-1]:
        m = _RE_PRUNE.fullmatch(part) or _RE_BLOCK.fullmatch(part) or _RE_NM.fullmatch(part)
        if m:
            if "prune" in kw:
                raise bad("at most one pruning transform")
            if m.re is _RE_NM:
                n, mm = int(m.group(1)), int(m.group(2))
                if not 1 <= n < mm:
                    raise bad(f"N:M needs 1 <= N < M, got {part!r}")
                kw.update(prune="nm", nm=(n, mm), sparsity=1 - n / mm)
                continue
            pct = float(m.group(m.re.groups))
            if not 0 < pct < 100:
                raise bad(f"the pruned percentage must be in (0, 100), got {pct:g}")
            kw.update(sparsity=pct / 100)
            if m.re is _RE_BLOCK:
                r, c = int(m.group(1)), int(m.group(2))
                if r < 1 or c < 1:
                    raise bad(f"block sizes must be >= 1, got {part!r}")
                kw.update(prune="block", block=(r, c))
            else:
                kw.update(prune="magnitude")
        elif (m := _RE_SVD_R.fullmatch(part)) or (m := _RE_SVD_E.fullmatch(part)):
            if "svd_rank" in kw or "svd_energy" in kw:
                raise bad("at most one svd transform")
            if m.re is _RE_SVD_R:
                r = int(m.group(1))
                if r < 1:
                    raise bad("the svd rank must be >= 1")
                kw["svd_rank"] = r
            else:
                e = float(m.group(1))
                if not 0 < e <= 1:
                    raise bad(f"the svd energy must be in (0, 1], got {e:g}")
                kw["svd_energy"] = e
        else:
            raise bad(f"unknown transform {part!r}")
    if kw["weight_format"] == "binary":
        if "prune" in kw:
            raise bad("binary weights have no zero, so they cannot be pruned")
        if "svd_rank" in kw or "svd_energy" in kw:
            raise bad("binary layers need a ReLU in front, which a low-rank split does not have")
    return CompressSpec(**kw)
