"""hwsim simulate's tables keep their columns aligned whatever the cell widths (issue 25)."""

import dataclasses

from hwsim.simulate import format_report, simulate


def test_long_layer_names_keep_the_columns_aligned():
    rep = simulate("digits-mlp", "mac-array-8x8-ws", progress=False)
    rep.layers = [dataclasses.replace(lr, name=f"a_rather_long_layer_name_{i}_from_an_onnx_export")
                  for i, lr in enumerate(rep.layers)]
    lines = format_report(rep).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("layer "))
    table = lines[head:head + 2 + len(rep.layers)]
    assert len({len(line) for line in table}) == 1, "\n".join(table)  # header, rule and rows equally wide
    starts = [table[0].index(col) for col in ("shape", "format", "MACs")]
    for row in table[2:]:
        assert row[starts[0] - 1] == " " and row[starts[1] - 1] == " ", row

