"""benchmarks/mutation.py's equivalence list: entries are matched by function and changed lines, not by
mutmut's number (which shifts whenever the function changes)."""

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import mutation  # noqa: E402

DIFF = """--- hwsim/lstm_engine.py
+++ hwsim/lstm_engine.py
@@ -29,7 +29,7 @@
         Component("state_sram", "sram", {}, 1,
-        Component("dram", "dram", {}),
+        Component("dram", "dram", ),
         Component("requant", "requantizer", {}, P),
"""


def test_fingerprint_ignores_the_number_and_the_indentation():
    a = mutation.fingerprint("hwsim.lstm_engine.x_inventory__mutmut_253", DIFF)
    b = mutation.fingerprint("hwsim.lstm_engine.x_inventory__mutmut_284", DIFF.replace("        Comp", "    Comp"))
    assert a == b == ("hwsim.lstm_engine.x_inventory",
                      '- Component("dram", "dram", {}),\n+ Component("dram", "dram", ),')


def test_fingerprint_tells_other_functions_and_other_changes_apart():
    a = mutation.fingerprint("hwsim.lstm_engine.x_inventory__mutmut_253", DIFF)
    assert mutation.fingerprint("hwsim.deform_unit.x_inventory__mutmut_253", DIFF) != a
    assert mutation.fingerprint("hwsim.lstm_engine.x_inventory__mutmut_253", DIFF.replace('"dram", ),', '"dram", None),')) != a


def test_every_listed_equivalent_has_its_diff_and_a_reason():
    text = mutation.EQUIVALENT_DOC.read_text()
    headings = re.findall(r"^### `([^`]+)`", text, flags=re.M)
    entries = mutation.equivalent_entries()
    assert len(headings) == len(set(headings)) == len(entries)  # every heading parsed, no two alike
    for name, body in re.findall(r"^### `([^`]+)`\n```diff\n.*?\n```\n(.*?)(?=^#|\Z)", text, flags=re.M | re.S):
        assert body.strip(), f"{name}: no reason given"
    for (func, lines), name in entries.items():
        assert name.startswith(func + "__mutmut_")
        kinds = {ln[0] for ln in lines.splitlines()}
        assert kinds == {"-", "+"}, f"{name}: the diff block needs the removed and the added lines"
