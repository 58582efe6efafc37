"""``hwsim study compression``: accuracy and cost of every compression spec, post-training vs fine-tuned.

For each spec the zoo's ``digits-cnn`` is compressed twice, post-training (``SPEC``) and with
compression-aware fine-tuning (``SPEC+ft``, the committed variants of :mod:`hwsim.models.training`), and
both run through :func:`hwsim.simulate.simulate` on one accelerator (default ``mac-array-8x8-ws``, whose
int8 PEs run every weight format): accuracy on the 450 digits test images through the bit-exact cycle-level
simulator, cycles and energy of one inference, and the weight storage. The claim it checks is the one of
compression-aware training (BinaryConnect / XNOR-Net, TWN, Zhu & Gupta's gradual pruning, NVIDIA's 2:4
recipe): training with the compression in the loop recovers the accuracy post-training compression loses,
most visibly for binary weights.

Cycles and energy are those of the fine-tuned model (post-training ones are identical: the same formats
and shapes). Pruned weights are still stored and multiplied by this dense array, so pruning saves no
cycles, energy or bytes here; N:M sparse arrays (``mac-array-8x8-ws-2of4``) and zero-tile skipping
(``skip_zero_tiles``) are where it pays off.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

__all__ = ["SPECS", "QUICK_SPECS", "CompressionRow", "CompressionStudy", "run"]

#: The specs of the full study (without ``+ft``).
SPECS = ("int8", "int4", "pow2", "int2", "ternary", "binary", "prune50+int8", "2:4+int8", "1:4+int8")
#: The specs of ``--quick``.
QUICK_SPECS = ("int8", "binary", "2:4+int8")
MODEL = "digits-cnn"
ACCEL = "mac-array-8x8-ws"


@dataclass
class CompressionRow:
    """One spec. Accuracies are fractions of the test set; energy in pJ and cycles per inference."""

    spec: str
    accuracy_post: float
    accuracy_finetuned: float
    cycles: int
    energy_pj: float
    weight_bytes: int
    bit_exact: bool  # simulator logits == reference logits, for both runs


@dataclass
class CompressionStudy:
    """The study's result: rows per spec plus the float accuracy and the accelerator."""

    model: str
    accel: str
    accuracy_float: float
    rows: list[CompressionRow] = field(default_factory=list)

    def format(self) -> str:
        """The table printed by ``hwsim study compression`` (also written to ``compression.md``)."""
        lines = [
            f"Compression study: {self.model} on {self.accel}, 450 digits test images through the bit-exact "
            f"cycle-level simulator (float model {100 * self.accuracy_float:.2f} %)",
            "",
            "| spec | post-training acc. | fine-tuned (+ft) acc. | cycles | energy / inference | weight bytes |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in self.rows:
            lines.append(f"| `{r.spec}` | {100 * r.accuracy_post:.2f} % | {100 * r.accuracy_finetuned:.2f} % | "
                         f"{r.cycles:,} | {r.energy_pj / 1e3:,.1f} nJ | {r.weight_bytes:,} |")
        if not all(r.bit_exact for r in self.rows):
            lines.append("WARNING: simulator != reference for: "
                         + ", ".join(r.spec for r in self.rows if not r.bit_exact))
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def _weight_bytes(model, spec: str) -> int:
    """Dense weight storage of ``model`` compressed with ``spec``: codes of every conv / linear weight."""
    from hwsim.models.ptq import layer_formats, resolve_keep_ends
    from hwsim.models.spec import WEIGHT_BITS, parse_compress_spec

    sp = parse_compress_spec(spec)
    formats = layer_formats(model, sp, resolve_keep_ends(sp, None))
    bits = sum(la.weight.size * WEIGHT_BITS[formats[la.name]] for la in model.compute_layers())
    return -(-bits // 8)


def run(out_dir=None, quick: bool = False, accel: str = ACCEL, specs=None) -> CompressionStudy:
    """Run the study (``quick``: three specs); with ``out_dir``, also write ``compression.md`` there."""
    from hwsim.models import zoo
    from hwsim.simulate import simulate

    specs = tuple(specs or (QUICK_SPECS if quick else SPECS))
    model = zoo.load(MODEL)
    study = CompressionStudy(MODEL, accel, 0.0)
    for spec in specs:
        post = simulate(MODEL, accel, spec, progress=False)
        tuned = simulate(MODEL, accel, f"{spec}+ft", progress=False)
        study.accuracy_float = tuned.accuracy_float
        study.rows.append(CompressionRow(
            spec, post.accuracy_simulated, tuned.accuracy_simulated, tuned.cycles, tuned.energy_pj,
            _weight_bytes(model, spec), post.simulated_equals_reference and tuned.simulated_equals_reference))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
        with open(os.path.join(out_dir, "compression.md"), "w") as f:
            f.write(study.format() + "\n")
    return study
