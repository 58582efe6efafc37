"""Simulation-only Verilog harness around a generated MAC array: the DRAM side and the output sink.

The clock comes from hwsim's Verilator main (``hwsim/cosim/hdl/free_run_main.cpp``, in place of cocotb's):
it toggles the harness's ``clk`` input every 5 ns and, while the testbench holds ``free_run`` high and
``done`` is low, runs clock edges without visiting cocotb's callbacks, so Python runs only at layer
boundaries and no ``--timing`` scheduler is needed. The harness registers the controls (``rst``,
``start``, ``dim_*``, ``shift``, ``relu``) before they reach the top: no combinational path then runs
from a top-level input into the design, so Verilator's per-evaluation input logic stays a few copies
(on the 8x8 benchmark layer that is about a quarter of the simulation time). The top sees each control
one cycle after the testbench drives it; every count starts at the registered ``start``.

The harness plays DRAM exactly as the cycle model assumes: one shared read channel that delivers a beat
whenever its countdown is zero, then waits ``P - 1`` cycles (``P`` = the beat period of the stream that
transferred). Beats come from memories ``wmem``/``amem``; output beats are captured in ``omem`` (sink
always ready); the bias memory ``bmem`` (one value per output channel) answers the top's ``bias_addr``.
``cycles`` counts busy cycles; the other counters (:data:`COUNTERS`) count the top's simulation-only
activity outputs (``dbg_*``: per-PE MAC enables, pipeline hops and stationary loads, SRAM accesses,
compute stalls; with zero-tile skipping the bitmap reads, :data:`SKIP_COUNTERS`), DRAM beats per stream
and requantizer operations (tops with the float32 requantizer: power-of-two and float32 lane passes apart,
by the top's ``dbg_f32``, :data:`F32_COUNTERS`; the harness then also registers the layer inputs
``requant_f32`` and ``zero_point``; tops with ``weight_zero_points`` also the row-sum unit's additions and the
row term's products, :data:`ROW_COUNTERS`, with a zero-point memory ``rzmem.bin`` answering ``bias_addr`` on
``row_zp`` and one more registered layer input, ``zp_rows``), so the testbench can compare every action count
of the cycle model. Keeping this
per-cycle logic in Verilog keeps Python out of the simulation's inner loop.

The memories move in bulk through binary files in the simulator's working directory, not one VPI access
per beat: a cycle with ``load`` high loads ``wmem.bin``, ``amem.bin`` and ``bmem.bin`` (written by the
testbench with :func:`hwsim.cosim.memfile.lanes_to_words`; with zero-tile skipping also the block bitmap
``zmem.bin`` that answers the top's ``ld_blk`` / ``cp_blk`` reads; with the float32 requantizer the scale
memory ``smem.bin``, one float32 per output channel, that answers ``bias_addr`` on the top's ``scale``
beside the bias), a cycle with ``dump`` high writes the
``n_out`` captured beats to ``omem.bin`` (read back by :func:`hwsim.cosim.memfile.words_to_lanes`). The
copies are Verilog loops over the DPI-C functions of ``hwsim/cosim/hdl/memfile_dpi.cpp`` (32-bit words,
:data:`DPI_SOURCES`): on the benchmark layer's 65,535 activation beats about 1 ms, where ``$readmemh``
took about 50 ms and ``$fread`` 13 ms.
Only the ports are visible to VPI (``public_flat_rw`` on the harness), so Verilator keeps its
optimisations inside the DUT.

Every width comes from the metadata JSON written beside the Verilog (never hard-coded).
:func:`mac_array_harness` bundles the harness with its cocotb testbench (``hwsim.cosim.mac_array_tb``)
for the generic runner (:func:`hwsim.cosim.runner.build`).
"""

from __future__ import annotations

import functools

from hwsim.cosim.runner import Harness

from hwsim.errors import HwsimError

__all__ = ["ACT_FILE", "BIAS_FILE", "BLOCK_FILE", "BUILD_ARGS", "COUNTERS", "DEFAULT_MEM_DEPTH", "DPI_SOURCES",
           "F32_COUNTERS", "FREE_RUN_MAIN", "HARNESS_TOP", "MAKE_ARGS", "OUT_FILE", "ROW_COUNTERS", "ROW_ZP_FILE",
           "SCALE_FILE", "SKIP_COUNTERS", "BUF_COUNTERS",
           "TEST_MODULE", "WEIGHT_FILE", "DPI_IMPORTS", "harness_verilog", "mac_array_harness", "memory_load_verilog"]

HARNESS_TOP = "mac_array_tb"
TEST_MODULE = "hwsim.cosim.mac_array_tb"
WEIGHT_FILE, ACT_FILE, OUT_FILE, BIAS_FILE = "wmem.bin", "amem.bin", "omem.bin", "bmem.bin"
#: Zero-tile bitmap (tops with ``skip_zero_tiles``): one bit per weight block, n-tile major, k-fold minor.
BLOCK_FILE = "zmem.bin"
#: Per-output-channel float32 scales (tops with ``requantizer = "f32"``): IEEE-754 bits, one word each.
SCALE_FILE = "smem.bin"
#: Per-output-channel weight zero points (tops with ``weight_zero_points``): signed ``weight_bits`` codes.
ROW_ZP_FILE = "rzmem.bin"
#: Beats each harness memory holds (weights, activations, outputs) unless a caller asks for more.
DEFAULT_MEM_DEPTH = 1 << 14


def _port_width(meta: dict, name: str) -> int:
    members = meta["signature"]["interface"]["members"]
    return int(members[name]["width"])


def _stream_payload_width(meta: dict, name: str) -> int:
    members = meta["signature"]["interface"]["members"][name]["members"]
    return int(members["payload"]["width"])


#: Activity counters of the harness (64-bit outputs), in the order :func:`read_counters` returns them.
COUNTERS = ("cycles", "stall_cycles", "n_weights", "n_acts", "n_out", "requant_ops", "pe_macs", "pe_hops",
            "pe_weight_loads", "input_sram_reads", "input_sram_writes", "weight_sram_reads",
            "weight_sram_writes", "output_sram_reads", "output_sram_writes", "pe_idle_macs", "pe_idle_regs",
            "output_sram_write_words", "output_sram_write_lanes", "out_lanes", "output_sram_read_words",
            "output_sram_read_lanes")
#: Further counters of tops with ``skip_zero_tiles`` (their ``dbg_blk`` output): zero-tile bitmap reads.
SKIP_COUNTERS = ("tile_bitmap_reads",)
#: Further counters of tops with the float32 requantizer: lanes of output beats requantized in float32
#: (``requant_ops`` then counts only the power-of-two lanes').
F32_COUNTERS = ("requant_f32_ops",)
#: Further counters of tops with ``weight_zero_points`` (their ``dbg_row_adds`` / ``dbg_row_lanes``): the row-sum
#: unit's activation additions and the row term's products (real lanes of the output beats of a layer that uses it).
ROW_COUNTERS = ("zp_row_adds", "zp_row_mults")
#: Further counters of tops with idle-lane gating (their ``dbg_{in,wt}_{rd,wr}_{lanes,words}``): input and
#: weight buffer accesses in SRAM words (the word memories enabled) and in real lanes.
BUF_COUNTERS = tuple(f"{buf}_sram_{op}_{unit}" for buf in ("input", "weight") for op in ("read", "write")
                     for unit in ("words", "lanes"))


def _words(bits: int) -> int:
    """32-bit words per element of a ``bits``-wide memory in a memory file."""
    return -(-bits // 32)


def _load_words(mem: str, path: str, bits: int, depth: int) -> str:
    """Verilog that loads memory ``mem`` (``bits`` wide, ``depth`` deep) from the memory file ``path``."""
    c = _words(bits)
    words = ", ".join(f"hwsim_mem_word({c} * i + {j})" for j in reversed(range(c)))
    return (f'            nw = hwsim_mem_load("{path}");\n'
            f'            if (nw < 0) $fatal(1, "harness: cannot read {path}");\n'
            f'            for (i = 0; i < nw / {c} && i < {depth}; i = i + 1) begin\n'
            f'                {mem}_w = {{{words}}};\n'
            f'                {mem}[i] = {mem}_w[{bits - 1}:0];\n'
            f'            end')


def memory_load_verilog(mem: str, path: str, bits: int, depth: int) -> str:
    """Verilog statements (for an ``always`` block of a harness that declares ``integer nw, i;``, a
    ``reg [32 * ceil(bits / 32) - 1:0] <mem>_w;`` and :data:`DPI_IMPORTS`) that copy the memory file
    ``path`` (:mod:`hwsim.cosim.memfile` layout) into memory ``mem`` of ``bits``-bit words, ``depth`` deep,
    through the DPI-C functions of :data:`DPI_SOURCES`: the MAC array harness's loads, for any harness."""
    return _load_words(mem, path, bits, depth)


def memory_save_verilog(mem: str, path: str, bits: int, count: str) -> str:
    """Verilog statements (for an ``always`` block of a harness declaring ``integer i;``, a
    ``reg [32 * ceil(bits / 32) - 1:0] <mem>_w;`` and :data:`DPI_IMPORTS`) that write the first ``count``
    (a Verilog expression) ``bits``-bit words of memory ``mem`` to the memory file ``path``
    (:mod:`hwsim.cosim.memfile` layout) through the DPI-C functions: the dump of any harness."""
    b32 = 32 * -(-bits // 32)
    words = b32 // 32
    pad = f"{{{b32 - bits}'d0, {mem}[i]}}" if b32 > bits else f"{mem}[i]"
    puts = " ".join(f"hwsim_mem_put({words} * i + {j}, {mem}_w[{32 * j + 31}:{32 * j}]);" for j in range(words))
    return (f"            hwsim_mem_clear({words} * {count});\n"
            f"            for (i = 0; i < {count}; i = i + 1) begin\n"
            f"                {mem}_w = {pad};\n"
            f"                {puts}\n"
            f"            end\n"
            f'            if (hwsim_mem_save("{path}") < 0) $fatal(1, "harness: cannot write {path}");')


#: The DPI-C imports of :data:`DPI_SOURCES` (memfile_dpi.cpp) for a harness module's body.
DPI_IMPORTS = """    import "DPI-C" function int hwsim_mem_load(input string path);
    import "DPI-C" function int unsigned hwsim_mem_word(input int k);
    import "DPI-C" function void hwsim_mem_clear(input int n);
    import "DPI-C" function void hwsim_mem_put(input int k, input int unsigned v);
    import "DPI-C" function int hwsim_mem_save(input string path);
"""


def harness_verilog(meta: dict, mem_depth: int) -> str:
    """Verilog text of the harness for the top described by ``meta`` (from ``generate_verilog(cfg,
    debug=True)``: the counters need the top's ``dbg_*`` outputs)."""
    top = meta["top"]
    d = meta["derived"]
    wb = _stream_payload_width(meta, "i_weights")
    ab = _stream_payload_width(meta, "i_acts")
    ob = _stream_payload_width(meta, "o_out")
    dim = _port_width(meta, "dim_m")
    sh = _port_width(meta, "shift")
    pes = _port_width(meta, "dbg_mac")
    lanes = int(meta["config"]["cols"])
    bias_bits = _port_width(meta, "bias") // lanes
    pw, pa = int(d["weight_beat_period"]), int(d["act_beat_period"])
    aw = max(1, (mem_depth - 1).bit_length())
    bias_lanes = ", ".join(f"bmem[bias_addr[{aw - 1}:0] + {aw}'d{c}]" for c in reversed(range(lanes))) \
        if dim >= aw else ", ".join(f"bmem[{{{aw - dim}'d0, bias_addr}} + {aw}'d{c}]" for c in reversed(range(lanes)))
    members = meta["signature"]["interface"]["members"]
    skip = "ld_blk" in members  # zero-tile skipping: a bitmap memory answers the loader and the compute engine
    f32 = "requant_f32" in members  # float32 requantizer lanes: a scale memory and two more layer inputs
    rows = "zp_rows" in members  # weight zero points: a zero-point memory, one more layer input
    bufs = "dbg_in_rd_lanes" in members  # idle-lane gating: input/weight buffer accesses lane by lane
    names = (COUNTERS + (SKIP_COUNTERS if skip else ()) + (F32_COUNTERS if f32 else ())
             + (ROW_COUNTERS if rows else ()) + (BUF_COUNTERS if bufs else ()))
    buf_sigs = [(f"dbg_{b}_{o}", f"{buf}_sram_{op}") for b, buf in (("in", "input"), ("wt", "weight"))
                for o, op in (("rd", "read"), ("wr", "write"))] if bufs else []
    buf_decl = "".join(f"    wire [{_port_width(meta, sig + '_lanes') - 1}:0] {sig}_lanes;\n"
                       f"    wire [{_port_width(meta, sig + '_words') - 1}:0] {sig}_words;\n" for sig, _ in buf_sigs)
    buf_ports = "".join(f",\n        .{sig}_lanes({sig}_lanes), .{sig}_words({sig}_words)" for sig, _ in buf_sigs)
    buf_count = "".join(
        f"\n            {cnt}_words <= {cnt}_words + {{32'd0, 32'($countones({sig}_words))}};"
        f"\n            {cnt}_lanes <= {cnt}_lanes + {{{64 - _port_width(meta, sig + '_lanes')}'d0, {sig}_lanes}};"
        for sig, cnt in buf_sigs)
    abits = _port_width(meta, "zero_point") if f32 else 0
    scale_lanes = bias_lanes.replace("bmem[", "smem[")
    f32_inputs = (f"    input  wire             requant_f32 /*verilator public_flat_rw*/,\n"
                  f"    input  wire [{abits - 1}:0]       zero_point /*verilator public_flat_rw*/,\n") if f32 else ""
    f32_regs = (f"    reg requant_f32_q;\n    reg [{abits - 1}:0] zero_point_q;\n"
                "    always @(posedge clk) begin\n        requant_f32_q <= requant_f32;\n"
                "        zero_point_q <= zero_point;\n    end\n") if f32 else ""
    f32_decl = f"    reg [31:0] smem [0:{mem_depth - 1}];\n    wire dbg_f32;\n" if f32 else ""
    f32_ports = (f",\n        .requant_f32(requant_f32_q), .zero_point(zero_point_q), .scale({{{scale_lanes}}}), "
                 ".dbg_f32(dbg_f32)") if f32 else ""
    zpb = _port_width(meta, "row_zp") // lanes if rows else 0
    ra_bits = _port_width(meta, "dbg_row_adds") if rows else 0
    rl_bits = _port_width(meta, "dbg_row_lanes") if rows else 0
    row_inputs = "    input  wire             zp_rows /*verilator public_flat_rw*/,\n" if rows else ""
    row_regs = ("    reg zp_rows_q;\n    always @(posedge clk) zp_rows_q <= zp_rows;\n" if rows else "")
    layer_regs = f32_regs + row_regs
    row_decl = (f"    reg [{zpb - 1}:0] rzmem [0:{mem_depth - 1}];\n    wire [{ra_bits - 1}:0] dbg_row_adds;\n"
                f"    wire [{rl_bits - 1}:0] dbg_row_lanes;\n") if rows else ""
    row_decl += buf_decl  # (the buffer counters' wires, declared with the row-sum unit's)
    row_ports = (f",\n        .zp_rows(zp_rows_q), .row_zp({{{bias_lanes.replace('bmem[', 'rzmem[')}}}), "
                 ".dbg_row_adds(dbg_row_adds), .dbg_row_lanes(dbg_row_lanes)") if rows else ""
    row_count = (f"\n            zp_row_adds <= zp_row_adds + {{{64 - ra_bits}'d0, dbg_row_adds}};"
                 f"\n            if (o_valid) zp_row_mults <= zp_row_mults + {{{64 - rl_bits}'d0, dbg_row_lanes}};"
                 ) if rows else ""
    # Output lanes requantized and sent per beat: dbg_lanes (the tile's real columns with idle-lane gating).
    requant_count = ("""                if (dbg_f32) requant_f32_ops <= requant_f32_ops + {48'd0, dbg_lanes_w};
                else requant_ops <= requant_ops + {48'd0, dbg_lanes_w};""" if f32 else
                     "                requant_ops <= requant_ops + {48'd0, dbg_lanes_w};")
    lane_bits = _port_width(meta, "dbg_lanes")
    sram_wb = int(meta["config"]["sram_word_bits"])
    counters = "\n".join(f"    output reg  [63:0]      {name:<18} /*verilator public_flat_rw*/,"
                         for name in names)
    blk = _port_width(meta, "ld_blk") if skip else 0
    zmem_decl = f"""    reg zmem [0:{mem_depth - 1}];
    wire [{blk - 1}:0] ld_blk, cp_blk;
    wire [1:0] dbg_blk;
""" if skip else ""
    zmem_ports = (f",\n        .ld_blk(ld_blk), .ld_blk_zero(zmem[ld_blk[{aw - 1}:0]]), .cp_blk(cp_blk), "
                  f".cp_blk_zero(zmem[cp_blk[{aw - 1}:0]]), .dbg_blk(dbg_blk)") if skip else ""
    zmem_count = ("\n            tile_bitmap_reads <= tile_bitmap_reads + {62'd0, dbg_blk[0]} + "
                  "{62'd0, dbg_blk[1]};") if skip else ""
    mems = [("wmem", WEIGHT_FILE, wb), ("amem", ACT_FILE, ab), ("bmem", BIAS_FILE, bias_bits)] \
        + ([("zmem", BLOCK_FILE, 1)] if skip else []) + ([("smem", SCALE_FILE, 32)] if f32 else []) \
        + ([("rzmem", ROW_ZP_FILE, zpb)] if rows else [])
    # A load leaves the memory past the file's end as it was (as $readmemh would).
    load_text = "\n".join(_load_words(mem, f, bits, mem_depth) for mem, f, bits in mems)
    word_regs = "".join(f"    reg [{32 * _words(bits) - 1}:0] {mem}_w;\n" for mem, _, bits in mems + [("omem", "", ob)])
    co = _words(ob)
    o_pad = f"{{{32 * co - ob}'d0, omem[i]}}" if 32 * co > ob else "omem[i]"
    o_puts = " ".join(f"hwsim_mem_put({co} * i + {j}, omem_w[{32 * j + 31}:{32 * j}]);" for j in range(co))
    resets = " ".join(f"{name} <= 64'd0;" for name in names)
    return f"""// Generated by hwsim.cosim.harness for {top}; simulation only (the clock and free_run come from
// hwsim's Verilator main, free_run_main.cpp).
module {HARNESS_TOP} (
    input  wire             clk     /*verilator public_flat_rw*/,
    input  wire             free_run /*verilator public_flat_rw*/,
    input  wire             rst     /*verilator public_flat_rw*/,
    input  wire             start   /*verilator public_flat_rw*/,
    input  wire             load    /*verilator public_flat_rw*/,
    input  wire             dump    /*verilator public_flat_rw*/,
    input  wire [{dim - 1}:0]      dim_m   /*verilator public_flat_rw*/,
    input  wire [{dim - 1}:0]      dim_k   /*verilator public_flat_rw*/,
    input  wire [{dim - 1}:0]      dim_n   /*verilator public_flat_rw*/,
    input  wire [{sh - 1}:0]       shift   /*verilator public_flat_rw*/,
    input  wire             relu    /*verilator public_flat_rw*/,
{f32_inputs}{row_inputs}    output wire             busy    /*verilator public_flat_rw*/,
    output wire             done    /*verilator public_flat_rw*/,
{counters}
    output wire [31:0]      mem_depth /*verilator public_flat_rw*/,
    output wire [31:0]      wbeat_bits /*verilator public_flat_rw*/,
    output wire [31:0]      abeat_bits /*verilator public_flat_rw*/,
    output wire [31:0]      obeat_bits /*verilator public_flat_rw*/,
    output wire [31:0]      osram_bits /*verilator public_flat_rw*/
);
    // Registered controls: no combinational path from a top-level input into the top (see the module doc).
    reg rst_q, start_q, relu_q;
    reg [{dim - 1}:0] dim_m_q, dim_k_q, dim_n_q;
    reg [{sh - 1}:0] shift_q;
    always @(posedge clk) begin
        rst_q <= rst;
        start_q <= start;
        relu_q <= relu;
        dim_m_q <= dim_m;
        dim_k_q <= dim_k;
        dim_n_q <= dim_n;
        shift_q <= shift;
    end
{layer_regs}    // Widths the testbench converts access counts with (from the top's metadata, never hard-coded there).
    assign mem_depth = 32'd{mem_depth};
    assign wbeat_bits = 32'd{wb};
    assign abeat_bits = 32'd{ab};
    assign obeat_bits = 32'd{ob};
    assign osram_bits = 32'd{lanes * bias_bits};
    reg [{wb - 1}:0] wmem [0:{mem_depth - 1}];
    reg [{ab - 1}:0] amem [0:{mem_depth - 1}];
    reg [{ob - 1}:0] omem [0:{mem_depth - 1}];
    reg [{bias_bits - 1}:0] bmem [0:{mem_depth - 1}];
{zmem_decl}{f32_decl}{row_decl}    // Bulk memory copies (memfile_dpi.cpp): 32-bit words, least significant first.
    import "DPI-C" function int hwsim_mem_load(input string path);
    import "DPI-C" function int unsigned hwsim_mem_word(input int k);
    import "DPI-C" function void hwsim_mem_clear(input int n);
    import "DPI-C" function void hwsim_mem_put(input int k, input int unsigned v);
    import "DPI-C" function int hwsim_mem_save(input string path);
    integer nw, i;
{word_regs}    reg [15:0] countdown;
    wire dram_valid = (countdown == 16'd0);
    wire w_ready, a_ready, o_valid;
    wire [{ob - 1}:0] o_payload;
    wire [{dim - 1}:0] bias_addr;
    wire [{pes - 1}:0] dbg_mac, dbg_hop, dbg_wload, dbg_idle, dbg_gate;
    wire [{lane_bits - 1}:0] dbg_lanes;
    wire [5:0] dbg_sram;
    wire dbg_stall;
    wire [31:0] n_mac = $countones(dbg_mac);
    wire [31:0] n_hop = $countones(dbg_hop);
    wire [31:0] n_wload = $countones(dbg_wload);
    wire [31:0] n_idle = $countones(dbg_idle);
    wire [31:0] n_gate = $countones(dbg_gate);
    wire [15:0] dbg_lanes_w = {{{16 - lane_bits}'d0, dbg_lanes}};
    // Words of sram_word_bits = {sram_wb} an output-buffer write (or read) touches: those holding its valid lanes
    // (lanes 0 .. dbg_lanes-1 of {bias_bits} bits each; a partly written word is one word access).
    wire [31:0] o_wr_words = ({{16'd0, dbg_lanes_w}} * 32'd{bias_bits} + 32'd{sram_wb - 1}) / 32'd{sram_wb};

    {top} dut (
        .clk(clk), .rst(rst_q), .start(start_q), .busy(busy), .done(done),
        .dim_m(dim_m_q), .dim_k(dim_k_q), .dim_n(dim_n_q), .shift(shift_q), .relu(relu_q),
        .i_weights__valid(dram_valid), .i_weights__ready(w_ready),
        .i_weights__payload(wmem[n_weights[{aw - 1}:0]]),
        .i_acts__valid(dram_valid), .i_acts__ready(a_ready),
        .i_acts__payload(amem[n_acts[{aw - 1}:0]]),
        .o_out__valid(o_valid), .o_out__ready(1'b1), .o_out__payload(o_payload),
        .bias_addr(bias_addr), .bias({{{bias_lanes}}}),
        .dbg_mac(dbg_mac), .dbg_hop(dbg_hop), .dbg_wload(dbg_wload), .dbg_sram(dbg_sram),
        .dbg_idle(dbg_idle), .dbg_gate(dbg_gate), .dbg_lanes(dbg_lanes),
        .dbg_stall(dbg_stall){zmem_ports}{f32_ports}{row_ports}{buf_ports}
    );

    always @(posedge clk) begin
        if (load) begin
{load_text}
        end
        if (dump && n_out != 64'd0) begin
            hwsim_mem_clear({co} * n_out[31:0]);
            for (i = 0; i < n_out[31:0]; i = i + 1) begin
                omem_w = {o_pad};
                {o_puts}
            end
            if (hwsim_mem_save("{OUT_FILE}") < 0) $fatal(1, "harness: cannot write {OUT_FILE}");
        end
    end

    always @(posedge clk) begin
        if (rst_q || start_q) begin
            countdown <= 16'd0;
            {resets}
        end else begin
            if (dram_valid && w_ready) begin
                n_weights <= n_weights + 64'd1;
                countdown <= 16'd{pw - 1};
            end else if (dram_valid && a_ready) begin
                n_acts <= n_acts + 64'd1;
                countdown <= 16'd{pa - 1};
            end else if (countdown != 16'd0) begin
                countdown <= countdown - 16'd1;
            end
            if (busy) cycles <= cycles + 64'd1;
            if (o_valid) begin
                omem[n_out[{aw - 1}:0]] <= o_payload;
                n_out <= n_out + 64'd1;
                out_lanes <= out_lanes + {{48'd0, dbg_lanes_w}};
{requant_count}
            end
            stall_cycles <= stall_cycles + {{63'd0, dbg_stall}};
            pe_macs <= pe_macs + {{32'd0, n_mac}};
            pe_hops <= pe_hops + {{32'd0, n_hop}};
            pe_weight_loads <= pe_weight_loads + {{32'd0, n_wload}};
            input_sram_reads <= input_sram_reads + {{63'd0, dbg_sram[0]}};
            input_sram_writes <= input_sram_writes + {{63'd0, dbg_sram[1]}};
            weight_sram_reads <= weight_sram_reads + {{63'd0, dbg_sram[2]}};
            weight_sram_writes <= weight_sram_writes + {{63'd0, dbg_sram[3]}};
            output_sram_reads <= output_sram_reads + {{63'd0, dbg_sram[4]}};
            output_sram_writes <= output_sram_writes + {{63'd0, dbg_sram[5]}};
            pe_idle_macs <= pe_idle_macs + {{32'd0, n_idle}};
            pe_idle_regs <= pe_idle_regs + {{32'd0, n_gate}};
            if (dbg_sram[5]) begin
                output_sram_write_words <= output_sram_write_words + {{32'd0, o_wr_words}};
                output_sram_write_lanes <= output_sram_write_lanes + {{48'd0, dbg_lanes_w}};
            end
            if (dbg_sram[4]) begin
                output_sram_read_words <= output_sram_read_words + {{32'd0, o_wr_words}};
                output_sram_read_lanes <= output_sram_read_lanes + {{48'd0, dbg_lanes_w}};
            end{zmem_count}{row_count}{buf_count}
        end
    end
endmodule
"""


#: Verilator arguments of every family's harness build (no ``--timing``: the clock is the main's).
BUILD_ARGS = ("--timescale", "1ns/1ps")
#: C++ optimisation of the verilated model (the wheel's default is ``-Os``), part of the build-cache key.
MAKE_ARGS = ("OPT_FAST=-O3",)
#: The Verilator main of every family's harness (in place of cocotb's): the clock, the free run and one
#: BLAS thread (see its header).
FREE_RUN_MAIN = "free_run_main.cpp"
#: C++ sources compiled with the harness: the DPI-C memory copies.
DPI_SOURCES = ("memfile_dpi.cpp",)


def mac_array_harness(mem_depth: int = DEFAULT_MEM_DEPTH) -> Harness:
    """The MAC array's :class:`~hwsim.cosim.runner.Harness`: this Verilog harness with memories of
    ``mem_depth`` beats around the top with its debug outputs, driven by the cocotb testbench
    ``hwsim.cosim.mac_array_tb``."""
    from hwsim.rtl.mac_array import generate_verilog

    if isinstance(mem_depth, bool) or not isinstance(mem_depth, int) or not 2 <= mem_depth <= 1 << 24:
        raise HwsimError(f"mem_depth={mem_depth!r} is not allowed: expected an integer in [2, {1 << 24}]")
    return Harness(HARNESS_TOP, functools.partial(harness_verilog, mem_depth=mem_depth), TEST_MODULE,
                   "mac_array_tb.py", rtl=functools.partial(generate_verilog, debug=True),
                   build_args=BUILD_ARGS, make_args=MAKE_ARGS, main_cpp=FREE_RUN_MAIN, cpp_sources=DPI_SOURCES)
