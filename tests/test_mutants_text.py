"""The notes ``hwsim cost`` prints against the user reference docs/cost_inventories.md (mutation run,
docs/testing.md).

Written for the run's text-only survivors: mutants that reworded, blanked or dropped a component note or the
energy report's leakage note, which no test read. The page is the independent record of what each component
is and what its note says; these tests hold every configuration branch's inventory to it, both ways (a
printed note the page does not list fails, and so does a row no configuration prints). Two notes carry
figures, and are checked against the figures they state: each controller's gate count against the GE its area
is priced at, and the leakage note against the cost table's ``leakage`` entry. The page's list of assumed
figures is checked against the entries whose source is the hwsim-assumption source [3].
"""

from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path

import pytest

from hwsim.config import MacArrayConfig
from hwsim.cost import HWSIM_ASSUMPTION, CostModel, tables_as_dict
from hwsim.deform_unit import DeformUnitConfig
from hwsim.deform_unit import inventory as deform_inventory
from hwsim.lstm_engine import LstmEngineConfig
from hwsim.lstm_engine import inventory as lstm_inventory
from hwsim.mac_array import inventory as mac_inventory
from hwsim.rf_array import RfArrayConfig
from hwsim.rf_array import inventory as rf_inventory
from hwsim.stats import ActionCounts

PAGE = Path(__file__).resolve().parents[1] / "docs" / "cost_inventories.md"
CONFIGS = {"mac-array": MacArrayConfig, "lstm-engine": LstmEngineConfig, "deform-unit": DeformUnitConfig,
           "rf-array": RfArrayConfig}
OC_PREFIX = "offset-conv MAC array"  # deform-unit: the offset-conv MAC array's components (the page's rule)


@dataclasses.dataclass(frozen=True)
class Row:
    family: str
    component: str
    cls: str
    when: str
    note: str | None  # None: '-', no note printed

    def fields(self) -> set[str]:
        """Config fields the 'when' cell names as `field=value` (a row for a field the config lacks does not
        apply)."""
        return set(re.findall(r"`(\w+)=", self.when))

    def matches(self, note: str) -> bool:
        if self.note is None:
            return note == ""
        parts = re.split(r"<[^<>]+>", self.note)
        return re.fullmatch(".+?".join(re.escape(p) for p in parts), note) is not None


def _sections(text: str) -> dict[str, str]:
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            out[title] = ""
        elif title:
            out[title] += line + "\n"
    return out


def _rows() -> list[Row]:
    rows = []
    for family, body in _sections(PAGE.read_text()).items():
        if family not in CONFIGS:
            continue
        for line in body.splitlines():
            m = re.fullmatch(r"\| `(\w+)` \| (\w+) \| [^|]+ \|([^|]*)\| (?:`([^`]+)`|-) \|", line.strip())
            if m:
                rows.append(Row(family, m.group(1), m.group(2), m.group(3).strip(), m.group(4)))
            else:
                assert not line.startswith("| `"), f"unparsed table row in {PAGE.name}: {line}"
    return rows


def _has(cfg_cls, field: str) -> bool:
    return field in {f.name for f in dataclasses.fields(cfg_cls)}


def _inventories():
    """(family, inventory) for every branch of the four inventory functions."""
    for g, sp, rq, sk, gb in itertools.product(("none", "operand", "clock"), ("dense", "2:4"), ("shift", "f32"),
                                               (False, True), (0, 64 * 1024)):
        yield "mac-array", mac_inventory(MacArrayConfig(gating=g, sparsity=sp, requantizer=rq, skip_zero_tiles=sk,
                                                        global_buffer_bytes=gb))
    for df in ("os", "is"):
        yield "mac-array", mac_inventory(MacArrayConfig(dataflow=df, gating="operand"))
    if _has(MacArrayConfig, "weight_zero_points"):  # the row-sum unit: an SRAM on WS, registers on OS/IS
        for df in ("ws", "os", "is"):
            yield "mac-array", mac_inventory(MacArrayConfig(dataflow=df, requantizer="f32", weight_zero_points=True))
    gatings = ("none", "operand", "clock") if _has(LstmEngineConfig, "gating") else (None,)
    for schedule, g in itertools.product(("rows", "packed"), gatings):
        yield "lstm-engine", lstm_inventory(LstmEngineConfig(schedule=schedule, **({"gating": g} if g else {})))
    gatings = ("none", "operand", "clock") if _has(DeformUnitConfig, "gating") else (None,)
    for mod, oa, g in itertools.product((False, True), (False, True), gatings):
        yield "deform-unit", deform_inventory(DeformUnitConfig(modulation=mod, offset_array=oa,
                                                               **({"gating": g} if g else {})))
    gatings = ("none", "clock") if _has(RfArrayConfig, "gating") else (None,)
    for target, mesh, g in itertools.product(("rf", "emulator"), ("clements", "reck"), gatings):
        yield "rf-array", rf_inventory(RfArrayConfig(target=target, mesh=mesh, **({"gating": g} if g else {})))


@pytest.fixture(scope="module")
def printed():
    """{(family, component name): {(class, note)}} over every configuration branch."""
    out = {}
    for family, inv in _inventories():
        for c in inv.components:
            out.setdefault((family, c.name), set()).add((c.cls, c.note))
    return out


def _rows_for(rows, family, name):
    """The page's rows that apply to ``family``'s component ``name`` in this version of the config."""
    if family == "deform-unit" and name.startswith("oc_"):
        family, name = "mac-array", name[3:]
    fields = {f.name for f in dataclasses.fields(CONFIGS[family])}
    return [r for r in rows if r.family == family and r.component == name and r.fields() <= fields]


def test_every_printed_note_is_on_the_reference_page(printed):
    rows = _rows()
    assert {r.family for r in rows} == set(CONFIGS)
    for (family, name), seen in sorted(printed.items()):
        applicable = _rows_for(rows, family, name)
        if not applicable and any(r.family == family and r.component == name for r in rows):
            # only rows for a config field this version lacks (e.g. a gating choice): no note before it
            assert {note for _, note in seen} == {""}, (family, name, seen)
            continue
        assert applicable, f"{family} component {name!r} is missing from {PAGE.name}"
        for cls, note in seen:
            assert cls in {r.cls for r in applicable}, (family, name, cls)
            applicable_cls = [r for r in applicable if r.cls == cls]  # (row_sum_store: an SRAM or registers)
            if family == "deform-unit" and name.startswith("oc_"):
                # the page's rule: the MAC array's note after 'offset-conv MAC array: ', or the prefix alone
                if note == OC_PREFIX:
                    assert any(r.note is None for r in applicable_cls), (name, note)
                    continue
                assert note.startswith(OC_PREFIX + ": "), (name, note)
                note = note[len(OC_PREFIX) + 2:]
            assert any(r.matches(note) for r in applicable_cls), (
                f"{family} {name} prints note {note!r}, which no row of {PAGE.name} states")


def test_every_row_of_the_reference_page_is_printed(printed):
    for r in _rows():
        if not r.fields() <= {f.name for f in dataclasses.fields(CONFIGS[r.family])}:
            continue  # a row for a config field this version does not have
        notes = [n for cls, n in printed.get((r.family, r.component), ()) if cls == r.cls]
        assert any(r.matches(n) for n in notes), f"{PAGE.name}: no configuration prints {r}"


def test_controller_notes_state_the_gate_count_their_area_is_priced_at(printed):
    # Every controller is priced by a gate count the project assumed; its note must say so ('rough') and give
    # that count: area = GE * nand2.area.
    m = CostModel()
    nand2 = m.entry("nand2.area").value
    default_ge = m.entry("controller.ge").value
    checked = 0
    for family, inv in _inventories():
        for c in inv.components:
            if c.cls != "controller":
                continue
            got = re.search(r"\brough (\d+)(k?) GE\b", c.note)
            assert got, (family, c.name, c.note)
            ge = int(got.group(1)) * (1000 if got.group(2) else 1)
            assert m.component_area_um2(c) == pytest.approx(ge * nand2), (family, c.name, c.note)
            assert ge == c.attrs.get("ge", default_ge)
            if "ge" not in c.attrs:
                assert "(controller.ge)" in c.note  # priced at the table entry, which the note names
            checked += 1
    assert checked >= 4


def test_energy_report_leakage_note_is_the_tables_leakage_entry():
    # The cost table's 'leakage' entry (0 pJ, an assumption: leakage is not modelled); every energy report
    # says so in the entry's own value and unit, and the page quotes that note.
    m = CostModel()
    entry = m.entry("leakage")
    assert entry.source == HWSIM_ASSUMPTION
    report = m.energy(mac_inventory(MacArrayConfig(rows=2, cols=2)), ActionCounts({("pe_mac", "mac"): 4}),
                      cycles=10)
    assert report.parts["leakage"] == entry.value
    stated = [re.fullmatch(r"leakage is not modelled \((\S+) (\S+)\)", n) for n in report.notes]
    stated = [s for s in stated if s]
    assert len(stated) == 1
    assert (float(stated[0].group(1)), stated[0].group(2)) == (entry.value, entry.unit)
    assert f"- `{stated[0].group(0)}`" in _sections(PAGE.read_text())["Energy report notes"]


def test_assumed_figures_section_names_every_assumed_entry():
    # Each entry the page calls an assumption has source [3], and every such entry is named.
    import hwsim.deform_unit
    import hwsim.lstm_engine
    import hwsim.rf_array

    for mod in (hwsim.rf_array, hwsim.deform_unit, hwsim.lstm_engine):
        mod._register_classes()  # their table entries are registered with their component classes
    entries = {e["name"]: e["source"] for s in tables_as_dict()["sections"] for e in s["entries"]}
    section = _sections(PAGE.read_text())["Assumed figures"]
    named = {n for n in re.findall(r"`([\w.]+)`", section) if n in entries}
    assumed = {n for n, src in entries.items() if src == HWSIM_ASSUMPTION}
    assert named == assumed
