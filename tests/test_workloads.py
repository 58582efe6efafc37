"""Layer descriptions and the SCALE-Sim topology importer."""

from __future__ import annotations

from pathlib import Path

import pytest
from hwsim.models.errors import HwsimError

from hwsim.workloads import ConvLayer, GemmLayer, load_scalesim_topology, total_macs

#: SCALE-Sim-format files the repository ships (examples/scalesim/README.md: where the shapes come from)
SCALESIM = Path(__file__).resolve().parents[1] / "examples" / "scalesim"


@pytest.fixture
def resnet18_csv() -> Path:
    return SCALESIM / "Resnet18.csv"


def test_resnet18(resnet18_csv):
    layers = load_scalesim_topology(resnet18_csv)
    assert len(layers) == 21
    by_name = {layer.name: layer for layer in layers}
    conv1 = layers[0]
    assert conv1.name == "Conv1" and conv1.padding == 3
    assert (conv1.out_h, conv1.out_w) == (112, 112)
    assert conv1.gemm_shape == (12544, 147, 64)  # 112*112, 3*7*7, 64
    # 3x3 stride 1 on 56x56, padding 1: 56x56 out, k = 64*9
    assert by_name["Conv2_1a"].gemm_shape == (3136, 576, 64)
    # 3x3 stride 2 on 56x56, padding 1: floor((56 + 2 - 3) / 2) + 1 = 28
    assert by_name["Conv3_1a"].gemm_shape == (784, 576, 128)
    # 1x1 stride 2 shortcut on 56x56, padding 0: floor(55 / 2) + 1 = 28
    s = by_name["Conv3_s"]
    assert s.padding == 0 and (s.out_h, s.out_w) == (28, 28) and s.gemm_shape == (784, 64, 128)
    assert by_name["Conv5_2b"].gemm_shape == (49, 4608, 512)
    fc = by_name["FC"]
    assert fc.gemm_shape == (1, 512, 1000) and fc.padding == 0
    # hand sum: Conv1 112*112*147*64 + FC 512*1000
    assert total_macs([conv1, fc]) == 118_013_952 + 512_000
    assert conv1.macs == 12544 * 147 * 64
    assert all(layer.groups == 1 and layer.batch == 1 for layer in layers)
    # the whole network: ~1.81 GMAC, the well-known ResNet-18 figure
    assert total_macs(layers) == 1_814_073_344


def test_resnet18_no_padding_and_batch(resnet18_csv):
    layers = load_scalesim_topology(resnet18_csv, padding="none", batch=4)
    conv1 = layers[0]
    assert (conv1.out_h, conv1.out_w) == (109, 109)  # floor((224 - 7) / 2) + 1
    assert conv1.gemm_shape == (4 * 109 * 109, 147, 64)
    assert layers[-1].gemm_shape == (4, 512, 1000)


def test_alexnet_spacing(tmp_path):
    layers = load_scalesim_topology(SCALESIM / "alexnet.csv")
    assert [layer.name for layer in layers] == ["Conv1", "Conv2", "Conv3", "Conv4", "Conv5"]
    assert layers[1].gemm_shape == (27 * 27, 96 * 25, 256)


def write(tmp_path, text: str) -> Path:
    p = tmp_path / "topo.csv"
    p.write_text(text)
    return p


HEADER = ("Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, "
          "Strides,\n")


def test_parse_variants(tmp_path):
    p = write(tmp_path, HEADER + "\n  a , 8 , 6 , 3 , 1 , 4 , 2 , 1 ,\nfc,5,5,5,5,3,7,1")
    a, fc = load_scalesim_topology(p)
    assert a.padding == (1, 1, 0, 0) and (a.out_h, a.out_w) == (8, 6)
    assert fc.padding == 0 and fc.gemm_shape == (1, 75, 7)  # filter covers the whole IFMAP


@pytest.mark.parametrize(
    "text, pattern",
    [
        (HEADER + "Conv1,224,224,7,7,3,64,2,\nConv2,56,56,3,3,64\n",
         r"^.*topo\.csv:3: 6 fields are not allowed: expected 8 \(Layer name, IFMAP Height, "),
        (HEADER + "\nConv1,224,224,7,x,3,64,2,\n",
         r"^.*topo\.csv:3: Filter Width='x' is not allowed: expected an integer >= 1$"),
        (HEADER + "Conv1,224,224,7,7,3,64,0,\n",
         r"^.*topo\.csv:2: Strides='0' is not allowed: expected an integer >= 1$"),
        (HEADER + "Conv1,1,1,2,2,3,64,1,\n",
         r"^.*topo\.csv:2: filter 2x2 is not allowed: expected at most the IFMAP 1x1"),
        ("Conv1,224,224,7,7,3,64,2,\n",
         r"^.*topo\.csv:1: header 'Conv1,224,224,7,7,3,64,2,' is not allowed: expected a SCALE-Sim "),
        (HEADER, r"^.*topo\.csv: a topology without layers is not allowed"),
        ("\n\n", r"^.*topo\.csv: an empty file is not allowed"),
    ],
)
def test_bad_csv(tmp_path, text, pattern):
    with pytest.raises(HwsimError, match=pattern):
        load_scalesim_topology(write(tmp_path, text))


def test_loader_arguments(tmp_path):
    with pytest.raises(HwsimError,
                       match=r"^--topology='.*missing\.csv' is not allowed: cannot read it"):
        load_scalesim_topology(tmp_path / "missing.csv")
    p = write(tmp_path, HEADER + "a,4,4,1,1,1,1,1\n")
    with pytest.raises(HwsimError, match=r"^padding='valid' is not allowed: expected one of same, none$"):
        load_scalesim_topology(p, padding="valid")
    with pytest.raises(HwsimError, match=r"^batch=0 is not allowed: expected an integer >= 1$"):
        load_scalesim_topology(p, batch=0)


def test_conv_layer_shapes():
    dw = ConvLayer("dw", in_h=15, in_w=9, in_c=32, out_c=32, kh=3, kw=3, stride=2, padding=(1, 0, 2, 1),
                   dilation=2, groups=32, batch=3)
    # out_h = floor((15 + 1 - 4 - 1) / 2) + 1 = 6, out_w = floor((9 + 3 - 4 - 1) / 2) + 1 = 4
    assert (dw.out_h, dw.out_w) == (6, 4)
    assert dw.gemm_shape == (3 * 6 * 4, 9, 1)
    assert dw.macs == 32 * 72 * 9
    assert dw.weight_shape == (32, 1, 3, 3) and dw.input_shape == (3, 32, 15, 9)
    assert dw.output_shape == (3, 32, 6, 4)
    g = GemmLayer("fc", m=2, k=3, n=4, shift=5, relu=True)
    assert g.groups == 1 and g.gemm_shape == (2, 3, 4) and g.macs == 24


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: GemmLayer("fc", m=0, k=1, n=1), r"^m=0 is not allowed: expected an integer >= 1$"),
        (lambda: GemmLayer("", m=1, k=1, n=1), r"^name='' is not allowed: expected a non-empty string$"),
        (lambda: GemmLayer("fc", m=1, k=1.0, n=1), r"^k=1\.0 is not allowed: expected an integer >= 1$"),
        (lambda: GemmLayer("fc", 1, 1, 1, shift=48),
         r"^shift=48 is not allowed: expected an integer in \[0, 47\]$"),
        (lambda: GemmLayer("fc", 1, 1, 1, relu=1), r"^relu=1 is not allowed: expected True or False$"),
        (lambda: ConvLayer("c", 8, 8, 6, 4, 3, 3, groups=4),
         r"^groups=4 is not allowed: expected a divisor of in_c=6 and out_c=4$"),
        (lambda: ConvLayer("c", 8, 8, 6, 4, 3, 3, padding=-1),
         r"^padding=-1 is not allowed: expected an integer >= 0 or a tuple"),
        (lambda: ConvLayer("c", 8, 8, 6, 4, 3, 3, stride=True), r"^stride=True is not allowed: "),
        (lambda: ConvLayer("c", 2, 8, 6, 4, 3, 3),
         r"^output size 0x6 is not allowed: expected at least 1x1 \(input 2x8, kernel 3x3, "),
    ],
)
def test_layer_validation(make, pattern):
    with pytest.raises(HwsimError, match=pattern):
        make()
