"""Simulation-only Verilog harness around the LSTM engine top (:class:`hwsim.rtl.lstm_step.LstmStepEngine`):
loads its memories, counts busy cycles and dumps results, so no Python runs per clock cycle.

The machinery is the MAC array's (:mod:`hwsim.cosim.harness`): the clock comes from hwsim's Verilator
main (``hwsim/cosim/hdl/free_run_main.cpp``), which free-runs the harness while the testbench holds
``free_run`` high and ``done`` is low, so cocotb runs only at phase boundaries (a load, a run, a dump);
memories move in bulk through binary files and the DPI-C copies of ``memfile_dpi.cpp``; no ``--timing``
build, no ``$readmemh``/``$writememh``. The harness registers every control before it reaches the top
or the harness's own logic (no combinational path from a top-level input into the design), so the
whole harness runs one cycle after the testbench drives a control; every count starts at the
registered control.

The testbench writes the layer's load writes as three memory files (:data:`SEL_FILE`: ``ext_sel``,
:data:`ADDR_FILE`: address, :data:`DATA_FILE`: data; :mod:`hwsim.cosim.memfile` layout): the setup
writes first, then the ``x`` of every step. ``load`` (with ``ld_first == 0`` it first copies the three
files in) writes entries ``ld_first .. ld_first + ld_count - 1`` into the top through its ``ext_*`` port,
one per cycle; ``clear`` with ``load`` clears the top's activity counters. ``start`` (with ``n_stages``
and ``gates``) starts a run; with ``x_load="stream"`` the top's ``i_x`` stream is always valid and
carries the data of entries ``x_first, x_first + 1, ...`` (``n_x`` of them taken). ``cycles`` counts
the cycles ``busy`` is high since the last ``start``. ``dump`` reads ``n_out`` elements of memory ``rsel``
(:data:`hwsim.rtl.lstm_step.EXT_RSEL`) through the ``ext_r*`` port, one per cycle, and writes them to
:data:`OUT_FILE` (one 32-bit word per element). ``done`` falls when a ``load``, ``start`` or ``dump``
is taken and rises when it has finished (the entries written, the top's ``done``, the file written).
Widths come from the metadata (never hard-coded).

The top is generated with ``debug=True``: its simulation-only activity counters
(:data:`hwsim.rtl.lstm_engine.COUNTERS`, :data:`hwsim.rtl.lstm_step.STEP_COUNTERS`,
:data:`hwsim.rtl.lstm_gates.GATE_COUNTERS`, ``cnt_bank_rd``, ``cnt_bank_wr``) are harness outputs. It is
generated through :func:`hwsim.cosim.runner.fast_memory_rtl` (the same design and initial memory
contents, written as loops): the default config's 2 x 256 KiB working and 512 KiB hidden SRAMs otherwise
cost about a minute of Verilog generation and two minutes and 1.3 GB of C++ compile.
"""

from __future__ import annotations

import functools

from hwsim.cosim.harness import BUILD_ARGS, DPI_IMPORTS, DPI_SOURCES, FREE_RUN_MAIN, MAKE_ARGS, memory_load_verilog
from hwsim.cosim.runner import Harness, fast_memory_rtl
from hwsim.rtl.lstm_engine import COUNTERS
from hwsim.rtl.lstm_gates import GATE_COUNTERS
from hwsim.rtl.lstm_step import STEP_COUNTERS, generate_verilog

__all__ = ["ADDR_FILE", "COUNTER_PORTS", "DATA_FILE", "DEFAULT_MEM_DEPTH", "HARNESS_TOP", "OUT_FILE", "SEL_FILE",
           "TEST_MODULE", "harness_verilog", "lstm_engine_harness"]

HARNESS_TOP = "lstm_engine_tb"
TEST_MODULE = "hwsim.cosim.lstm_engine_tb"
SEL_FILE, ADDR_FILE, DATA_FILE, OUT_FILE = "lsel.bin", "laddr.bin", "ldata.bin", "out.bin"
#: Load entries the harness holds (setup writes plus every step's ``x``) unless a caller asks for more.
DEFAULT_MEM_DEPTH = 8192
#: The top's counter outputs the harness exposes.
COUNTER_PORTS = (*COUNTERS, *STEP_COUNTERS, *GATE_COUNTERS, "cnt_bank_rd", "cnt_bank_wr")


def _w(meta: dict, name: str) -> int:
    return int(meta["signature"]["interface"]["members"][name]["width"])


def _words(bits: int) -> int:
    return -(-bits // 32)


def harness_verilog(meta: dict, mem_depth: int = DEFAULT_MEM_DEPTH) -> str:
    top = meta["top"]
    ed, db, sb = _w(meta, "ext_data"), _w(meta, "ext_rdata"), _w(meta, "ext_sel")
    pub = "/*verilator public_flat_rw*/"
    cnt = {name: _w(meta, name) for name in COUNTER_PORTS}
    cnt_ports = "".join(f",\n    output wire [{w - 1}:0] {name} {pub}" for name, w in cnt.items())
    cnt_conn = "".join(f", .{name}({name})" for name in cnt)
    stream_x = "i_x" in meta["signature"]["interface"]["members"]
    x_conn = (f", .i_x__valid(1'b1), .i_x__ready(x_ready), .i_x__payload(ldata[xidx][{db - 1}:0]), "
              f".n_x(n_x_q[23:0])" if stream_x else "")
    mems = (("lsel", SEL_FILE, sb), ("laddr", ADDR_FILE, 24), ("ldata", DATA_FILE, ed))
    loads = "\n".join(memory_load_verilog(mem, path, bits, mem_depth) for mem, path, bits in mems)
    word_regs = "".join(f"    reg [{32 * _words(bits) - 1}:0] {mem}_w;\n" for mem, _, bits in mems)
    co = _words(db)
    r_word = f"{{{{{32 * co - db}{{rdata[{db - 1}]}}}}, rdata}}" if 32 * co > db else "rdata"
    r_puts = " ".join(f"hwsim_mem_put({co} * (ridx - 1) + {j}, r_w[{32 * j + 31}:{32 * j}]);" for j in range(co))
    return f"""// Generated by hwsim.cosim.lstm_engine_harness for {top}; simulation only (the clock and free_run come
// from hwsim's Verilator main, free_run_main.cpp).
module {HARNESS_TOP} (
    input  wire clk {pub}, input wire free_run {pub},
    input  wire rst {pub}, input wire load {pub}, input wire clear {pub}, input wire start {pub},
    input  wire dump {pub}, input wire [4:0] n_stages {pub}, input wire gates {pub}, input wire [1:0] rsel {pub},
    input  wire [31:0] ld_first {pub}, input wire [31:0] ld_count {pub}, input wire [31:0] n_out {pub},
    input  wire [31:0] x_first {pub}, input wire [31:0] n_x {pub},
    output reg done {pub},
    output wire [31:0] mem_depth {pub}, output wire [31:0] ldata_bits {pub},
    output reg [63:0] cycles {pub}{cnt_ports}
);
    // Registered controls: no combinational path from a top-level input into the design (see the module doc).
    reg rst_q, load_q, clear_q, start_q, dump_q, gates_q;
    reg [4:0] n_stages_q;
    reg [1:0] rsel_q;
    reg [31:0] ld_first_q, ld_count_q, n_out_q, x_first_q, n_x_q;
    always @(posedge clk) begin
        rst_q <= rst; load_q <= load; clear_q <= clear; start_q <= start; dump_q <= dump; gates_q <= gates;
        n_stages_q <= n_stages; rsel_q <= rsel; ld_first_q <= ld_first; ld_count_q <= ld_count;
        n_out_q <= n_out; x_first_q <= x_first; n_x_q <= n_x;
    end
    assign mem_depth = 32'd{mem_depth};
    assign ldata_bits = 32'd{ed};
    reg [{sb - 1}:0] lsel [0:{mem_depth - 1}];
    reg [23:0] laddr [0:{mem_depth - 1}];
    reg [{ed - 1}:0] ldata [0:{mem_depth - 1}];
{DPI_IMPORTS}    integer nw, i;
{word_regs}    reg [{32 * co - 1}:0] r_w;
    reg loading; reg [31:0] idx; reg [31:0] last; reg dumping; reg [31:0] ridx; reg flush;
    reg [31:0] xidx; wire x_ready;  // x_load="stream": the top's i_x stream, always valid, from x_first on
    wire busy, top_done;
    wire [{db - 1}:0] rdata;
    {top} dut (.clk(clk), .rst(rst_q), .start(start_q), .n_stages(n_stages_q), .gates(gates_q), .busy(busy),
        .done(top_done), .ext_we(loading), .ext_sel(lsel[idx]), .ext_addr(laddr[idx]), .ext_data(ldata[idx]),
        .ext_raddr(ridx[23:0]), .ext_rsel(rsel_q), .ext_rdata(rdata), .dbg_clear(load_q && clear_q){x_conn}{cnt_conn});
    always @(posedge clk) begin
        if (rst_q) begin
            done <= 0; cycles <= 0; loading <= 0; dumping <= 0;
            idx <= 0; last <= 0; ridx <= 0; flush <= 0; xidx <= 0;
        end else begin
            if (load_q) begin
                if (ld_first_q == 0) begin
{loads}
                end
                done <= ld_count_q == 0; loading <= ld_count_q != 0; idx <= ld_first_q;
                last <= ld_first_q + ld_count_q - 1;
            end else if (loading) begin
                if (idx == last) begin loading <= 0; done <= 1; end
                else idx <= idx + 1;
            end
            if (start_q) begin done <= 0; cycles <= 0; end
            else if (busy) cycles <= cycles + 1;
            if (start_q) xidx <= x_first_q;
            else if (x_ready) xidx <= xidx + 1;
            if (top_done) done <= 1;
            if (dump_q) begin
                done <= 0; dumping <= 1; ridx <= 0;
                hwsim_mem_clear({co} * n_out_q);
            end else if (dumping) begin
                if (ridx > 0) begin
                    r_w = {r_word};
                    {r_puts}
                end
                if (ridx == n_out_q) begin dumping <= 0; flush <= 1; end
                else ridx <= ridx + 1;
            end
            if (flush) begin  // a cycle after the last element was put
                if (hwsim_mem_save("{OUT_FILE}") < 0) $fatal(1, "harness: cannot write {OUT_FILE}");
                flush <= 0; done <= 1;
            end
        end
    end
endmodule
"""


@functools.cache
def lstm_engine_harness(mem_depth: int = DEFAULT_MEM_DEPTH) -> Harness:
    """The harness bundled with its cocotb testbench for :func:`hwsim.cosim.runner.build`: hwsim's
    free-running Verilator main, the DPI-C memory copies, no ``--timing`` (the MAC array's machinery)."""
    return Harness(HARNESS_TOP, functools.partial(harness_verilog, mem_depth=mem_depth), TEST_MODULE,
                   rtl=fast_memory_rtl(functools.partial(generate_verilog, debug=True)), build_args=BUILD_ARGS,
                   make_args=MAKE_ARGS, main_cpp=FREE_RUN_MAIN, cpp_sources=DPI_SOURCES)
