"""Fine-tune the zoo's ``digits-cnn`` for the ``+ft`` compression specs and write the committed variants.

Run as ``python -m hwsim.models.zoo.finetune_digits [--out DIR] [--only SPEC ...]``. For every spec of
:data:`VARIANTS` it fine-tunes the committed ``digits-cnn.npz`` on the committed training split with
:func:`hwsim.models.training.finetune` (recipe :data:`hwsim.models.training.RECIPE`, seed 0, single-threaded
BLAS) and writes ``DIR/digits-cnn@<spec>.npz`` (``:`` written ``of``), then prints the accuracy of the
compressed model on the test split through the bit-exact reference. A rerun on the same machine writes
byte-identical weights; ``tests/test_training.py`` checks one variant that way.
"""

from __future__ import annotations

import argparse
import os
import time

from hwsim.models import zoo
from hwsim.models.compress import compress
from hwsim.models.graph import save_model
from hwsim.models.training import finetune

__all__ = ["MODEL", "VARIANTS", "main"]

MODEL = "digits-cnn"
#: The committed fine-tuned variants (specs without ``+ft``).
VARIANTS = ("int8", "int4", "int2", "ternary", "binary", "pow2", "prune50+int8", "2:4+int8", "1:4+int8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwsim.models.zoo.finetune_digits",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=zoo.HERE, help="output directory (default: the zoo package directory)")
    ap.add_argument("--only", nargs="+", metavar="SPEC", help="fine-tune only these specs (without +ft)")
    ap.add_argument("--verbose", action="store_true", help="print the loss of every epoch")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    x_tr, y_tr, x_te, y_te = zoo.load_digits_split()
    model = zoo.load(MODEL)
    for spec in args.only or VARIANTS:
        t0 = time.time()
        ft = finetune(model, spec, x_tr, y_tr, verbose=args.verbose)
        secs = time.time() - t0
        path = os.path.join(args.out, f"{MODEL}@{spec.replace(':', 'of')}+ft.npz")
        save_model(ft, path)
        post = compress(model, spec, x_tr[:512]).accuracy(x_te, y_te)
        tuned = compress(ft, spec, x_tr[:512]).accuracy(x_te, y_te)
        print(f"{spec + '+ft':<16} post-training {100 * post:6.2f} %  fine-tuned {100 * tuned:6.2f} %  "
              f"({secs:.1f} s) -> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
