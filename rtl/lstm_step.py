"""Amaranth RTL of a whole LSTM time step on the LSTM engine: the stage engine
(:class:`hwsim.rtl.lstm_engine.LstmStageEngine`) runs ``W x`` (every TT/HT stage) and the hidden stage
``U h``, then a gather sequencer streams the ``H`` hidden units' operands from the engine's memories
through the gate unit (:class:`hwsim.rtl.lstm_gates.LstmGateUnit`) and writes ``h'`` and ``c'`` back into
the state memories, where the next step's hidden stage reads ``h``.

Memories (beside the stage engine's two banked working buffers, weight and descriptor memories)
----------------------------------------------------------------------------------------------
* ``umem`` (hidden SRAM): ``U`` as words of ``pes`` entries (row tile ``j``, column ``k`` at word
  ``j*H + k``, the layout of a one-core stage), read by the hidden stage;
* ``hmem``, ``cmem`` (state SRAM): ``h`` and ``c``, ``max_hidden(cfg)`` entries each;
* ``bmem`` (state SRAM): the bias ``b``, 4H entries in row order (gate ``g`` of unit ``j`` at ``g*H + j``);
* a gate descriptor register (:func:`gate_desc_layout`): the gather walk.

Schedule (``busy`` high throughout; the cycle model's :func:`hwsim.lstm_engine.gate_phase_cycles`)
------------------------------------------------------------------------------------------------
1. The stage descriptors run on the stage engine; the last one has ``hid`` set: that stage reads its
   operand from ``hmem`` and its weights from ``umem`` and writes ``zh`` (4H rows, row order) into the
   working buffer the input layer's result ``zx`` is not in. So ``zx`` stays in buffer ``(n-1) % 2`` and
   ``zh`` lands in buffer ``n % 2`` (``n`` descriptors).
2. One hand-over cycle (the stage engine's done cycle): the gather walkers load from the gate descriptor.
3. ``4H`` read cycles, unit ``j`` gate ``g`` in cycle ``4j + g``: one read of each working buffer (``zx``
   of row ``g*H + j`` at its address in the last stage's layout, produced by a mixed-radix walker over the
   output modes; ``zh`` at ``g*H + j``), one ``bmem`` read, and for ``g = 3`` one ``cmem`` read. Four
   walkers (one per gate) rotate through one adder, so each cycle advances one of them.
4. Reads land a cycle later in the operand registers; unit ``j`` enters the gate unit in the cycle after
   its gate-3 data landed, and leaves ``GATE_LATENCY`` (6) cycles later, when ``h'[j]`` and ``c'[j]`` are
   written. The last unit leaves ``8`` cycles after the last read: the gate phase is ``4H + 9`` cycles.

With ``gates`` low at ``start`` only the stage descriptors run (a plain matvec, the stage engine's timing).
With ``x_load="stream"`` every run starts with an XLOAD phase (``busy`` high): ``n_x`` elements taken
from the ``i_x`` stream, one per cycle while it is valid, written to working buffer 0 at addresses
``0 .. n_x - 1``; the stage engine starts in the cycle of the last one (the cycle model's
:func:`hwsim.lstm_engine.x_load_cycles` with a stream that is always valid).
"""

from __future__ import annotations

import math

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from hwsim.rtl.lstm_engine import (
    COUNT_BITS,
    COUNTER_BITS,
    COUNTERS,
    LINT_WAIVERS,
    LstmStageEngine,
    addr_bits,
    desc_layout,
    hidden_words,
)
from hwsim.rtl.lstm_gates import GATE_COUNTERS, LstmGateUnit
from hwsim.rtl.verilog import generate

__all__ = ["EXT_RSEL", "EXT_SEL", "STEP_COUNTERS", "LstmStepEngine", "gate_desc_layout", "generate_verilog",
           "max_hidden"]

#: ``ext_sel`` codes of the step top's load port.
EXT_SEL = {"buf0": 0, "buf1": 1, "wmem": 2, "dmem": 3, "umem": 4, "bmem": 5, "hmem": 6, "cmem": 7, "gdesc": 8}
#: ``ext_rsel`` codes of its read port.
EXT_RSEL = {"buf0": 0, "buf1": 1, "hmem": 2, "cmem": 3}
#: Simulation-only counters the step top adds to the stage engine's and the gate unit's.
STEP_COUNTERS = {
    "cnt_hid_rd": "hidden-SRAM (umem) word reads of the hidden stage",
    "cnt_state_rd": "state-SRAM reads: h by the hidden stage, b and c by the gather",
    "cnt_state_wr": "state-SRAM writes of the gate phase (h' and c')",
    "cnt_gate_addr": "gather address-adder operations: 2 per read cycle (walker, row index), 1 per unit written",
    "cnt_x_addr": "x-stream write-address increments (x_load='stream': one per element loaded)",
}


def max_hidden(cfg) -> int:
    """Largest ``H`` the RTL's memories hold: ``U`` (4H x H) fits the hidden SRAM both as entries and as
    ``ceil(4H / pes) * H`` words, and ``4H`` fits a working buffer."""
    H = math.isqrt(max(0, cfg.hidden_sram_bytes // cfg.data_bytes // 4))
    while H > 0 and (-(-4 * H // cfg.pes) * H > hidden_words(cfg) or 4 * H > cfg.work_words):
        H -= 1
    return max(H, 1)


def gate_desc_layout(cfg) -> list[tuple[str, int]]:
    """Gate-descriptor fields ``(name, bits)`` from the least significant bit up: per walker level
    (innermost first) its count ``c`` and address delta ``d``; per gate ``g`` the walker's first address
    ``a{g}``, first row ``n{g}`` (= g*H) and first digits ``x{g}_{level}``; then ``H``."""
    A, L = addr_bits(cfg), cfg.addr_levels
    out = []
    for lv in range(L):
        out += [(f"c{lv}", COUNT_BITS), (f"d{lv}", A + 2)]
    for g in range(4):
        out += [(f"a{g}", A + 1), (f"n{g}", A + 1)] + [(f"x{g}_{lv}", COUNT_BITS) for lv in range(L)]
    return out + [("H", COUNT_BITS)]


class LstmStepEngine(wiring.Component):
    """The LSTM engine top: stage engine, hidden stage, gather and gate unit (module docstring).

    Ports
    -----
    start : In, 1               pulse (while idle): run ``n_stages`` descriptors, then (``gates``) the gate phase
    n_stages : In, 5            descriptors to run (1..16); for a step the last is the hidden stage
    gates : In, 1               sampled with ``start``: run the gate phase after the stages
    busy : Out, 1               high from the first stage's SETUP cycle to the last ``h'``/``c'`` write
    done : Out, 1               high for one cycle after that
    ext_we : In, 1              (idle only) write ``ext_data`` to memory ``ext_sel`` (:data:`EXT_SEL`) at ``ext_addr``
    ext_sel : In, 4
    ext_addr : In, 24
    ext_data : In, max(stage engine's ext_data, gate descriptor bits)
    ext_raddr : In, 24          (idle only) element address to read from ``ext_rsel`` (:data:`EXT_RSEL`)
    ext_rsel : In, 2
    ext_rdata : Out, signed(data_bits)   the element, one cycle after ``ext_raddr``
    i_x : In(stream.Signature(signed(data_bits)))   (``x_load="stream"`` only) the inputs of a run
    n_x : In, 24                (``x_load="stream"`` only) inputs to take at the start of a run, sampled with ``start``

    With ``debug=True``: the stage engine's counters (:data:`hwsim.rtl.lstm_engine.COUNTERS`,
    ``cnt_bank_rd``, ``cnt_bank_wr``, which here also count the gather's working-buffer reads), the gate
    unit's (:data:`hwsim.rtl.lstm_gates.GATE_COUNTERS`) and :data:`STEP_COUNTERS`, all ``Out``, cleared by
    ``dbg_clear`` (``In, 1``). Simulation only.
    """

    def __init__(self, cfg, debug: bool = False):
        self.cfg, self.debug = cfg, debug
        self.gbits = sum(b for _, b in gate_desc_layout(cfg))
        stage_ed = max(cfg.pes * cfg.data_bits, sum(b for _, b in desc_layout(cfg)))
        self.ext_bits = max(stage_ed, self.gbits)
        members = {
            "start": In(1), "n_stages": In(5), "gates": In(1), "busy": Out(1), "done": Out(1),
            "ext_we": In(1), "ext_sel": In(4), "ext_addr": In(24), "ext_data": In(self.ext_bits),
            "ext_raddr": In(24), "ext_rsel": In(2), "ext_rdata": Out(signed(cfg.data_bits)),
        }
        if cfg.x_load == "stream":
            members |= {"i_x": In(stream.Signature(signed(cfg.data_bits))), "n_x": In(24)}
        if debug:
            members |= {"dbg_clear": In(1), **{n: Out(COUNTER_BITS) for n in (*COUNTERS, *STEP_COUNTERS)},
                        **{n: Out(32) for n in GATE_COUNTERS},
                        "cnt_bank_rd": Out(cfg.banks * COUNTER_BITS), "cnt_bank_wr": Out(cfg.banks * COUNTER_BITS)}
        super().__init__(members)

    def elaborate(self, platform):  # noqa: C901 - one sequencer
        cfg = self.cfg
        m = Module()
        P, db, L = cfg.pes, cfg.data_bits, cfg.addr_levels
        A = addr_bits(cfg)
        Hmax = max_hidden(cfg)
        d = signed(db)

        stg = LstmStageEngine(cfg, debug=self.debug, step=True)
        gu = LstmGateUnit(cfg, debug=self.debug)
        m.submodules.stage, m.submodules.gate_unit = stg, gu
        umem = Memory(shape=P * db, depth=hidden_words(cfg), init=[])
        hmem = Memory(shape=d, depth=Hmax, init=[])
        cmem = Memory(shape=d, depth=Hmax, init=[])
        bmem = Memory(shape=d, depth=4 * Hmax, init=[])
        m.submodules.umem, m.submodules.hmem, m.submodules.cmem, m.submodules.bmem = umem, hmem, cmem, bmem
        u_rd, u_wr = umem.read_port(), umem.write_port()
        h_rd, h_wr = hmem.read_port(), hmem.write_port()
        c_rd, c_wr = cmem.read_port(), cmem.write_port()
        b_rd, b_wr = bmem.read_port(), bmem.write_port()

        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        ext = self.ext_we & ~busy

        def ext_to(name):
            return ext & (self.ext_sel == EXT_SEL[name])

        # ---------------------------------------------------------------- stage engine and its loads
        xload = Signal()  # x_load="stream": the XLOAD phase drives the stage engine's load port
        xa, nx_reg = Signal(24), Signal(24)
        xin_we = Signal()
        with m.If(xload):
            if cfg.x_load == "stream":
                m.d.comb += [xin_we.eq(self.i_x.valid), self.i_x.ready.eq(1), stg.ext_we.eq(self.i_x.valid),
                             stg.ext_sel.eq(EXT_SEL["buf0"]), stg.ext_addr.eq(xa),
                             stg.ext_data.eq(self.i_x.payload.as_unsigned())]
        with m.Else():
            m.d.comb += [stg.ext_we.eq(ext & (self.ext_sel < 4)), stg.ext_sel.eq(self.ext_sel[:2]),
                         stg.ext_addr.eq(self.ext_addr), stg.ext_data.eq(self.ext_data[:len(stg.ext_data)])]
        m.d.comb += [stg.ext_raddr.eq(self.ext_raddr), stg.ext_rbuf.eq(self.ext_rsel[0]),
                     stg.n_stages.eq(self.n_stages)]
        m.d.comb += [u_rd.addr.eq(stg.hid_waddr), u_rd.en.eq(stg.hid_ren), stg.hid_w.eq(u_rd.data),
                     u_wr.addr.eq(self.ext_addr), u_wr.data.eq(self.ext_data[:P * db]), u_wr.en.eq(ext_to("umem")),
                     b_wr.addr.eq(self.ext_addr), b_wr.data.eq(self.ext_data[:db]), b_wr.en.eq(ext_to("bmem"))]
        m.d.comb += [h_rd.addr.eq(Mux(stg.busy, stg.hid_raddr, self.ext_raddr)),
                     h_rd.en.eq(Mux(stg.busy, stg.hid_ren, 1)), stg.hid_x.eq(h_rd.data)]
        gdesc = Signal(self.gbits)
        with m.If(ext_to("gdesc")):
            m.d.sync += gdesc.eq(self.ext_data[:self.gbits])
        f, pos = {}, 0
        for name, bits in gate_desc_layout(cfg):
            f[name] = Signal(signed(bits) if name[0] == "d" else bits, name=f"g_{name}")
            m.d.comb += f[name].eq(gdesc[pos:pos + bits])
            pos += bits

        # ---------------------------------------------------------------- gather state
        wa = [Signal(A + 1, name=f"wa{g}") for g in range(4)]  # walker address (zx)
        wx = [[Signal(COUNT_BITS, name=f"wx{g}_{lv}") for lv in range(L)] for g in range(4)]  # walker digits
        nr = [Signal(A + 1, name=f"nr{g}") for g in range(4)]  # row index g*H + j (zh, b)
        g_cur = Signal(2)
        j_cur = Signal(COUNT_BITS)
        oj = Signal(COUNT_BITS)
        gread = Signal()
        gates_en = Signal()
        zsel = Signal()  # working buffer holding zx: (n_stages - 1) % 2; zh is in the other

        # walker 0 advanced (the lowest digit not at its last value increments, the ones inside it clear)
        na = Signal(A + 1)
        nx = [Signal(COUNT_BITS, name=f"nx{lv}") for lv in range(L)]
        m.d.comb += [na.eq(wa[0])] + [nx[lv].eq(wx[0][lv]) for lv in range(L)]
        for lv in range(L):
            inner = Cat(*[wx[0][i] == f[f"c{i}"] - 1 for i in range(lv)]).all() if lv else Const(1, 1)
            cond = inner & (wx[0][lv] != f[f"c{lv}"] - 1)
            with (m.If(cond) if lv == 0 else m.Elif(cond)):
                m.d.comb += [na.eq(wa[0] + f[f"d{lv}"]), nx[lv].eq(wx[0][lv] + 1)]
                m.d.comb += [nx[i].eq(0) for i in range(lv)]

        m.d.comb += [stg.gath_en.eq(gread),
                     stg.gath_addr0.eq(Mux(zsel, nr[0], wa[0])), stg.gath_addr1.eq(Mux(zsel, wa[0], nr[0])),
                     b_rd.addr.eq(nr[0]), b_rd.en.eq(gread)]
        m.d.comb += [c_rd.addr.eq(Mux(gread, j_cur, self.ext_raddr)), c_rd.en.eq(Mux(gread, g_cur == 3, 1))]

        # operands land one cycle after their reads
        rv, rg = Signal(), Signal(2)
        m.d.sync += [rv.eq(gread), rg.eq(g_cur)]
        zx_data = Mux(zsel, stg.gath_data1, stg.gath_data0)
        zh_data = Mux(zsel, stg.gath_data0, stg.gath_data1)
        slot_zx = [Signal(d, name=f"op_zx{g}") for g in range(4)]
        slot_zh = [Signal(d, name=f"op_zh{g}") for g in range(4)]
        slot_b = [Signal(d, name=f"op_b{g}") for g in range(4)]
        slot_c = Signal(d)
        opv = Signal()
        m.d.sync += opv.eq(rv & (rg == 3))
        with m.If(rv):
            with m.Switch(rg):
                for g in range(4):
                    with m.Case(g):
                        m.d.sync += [slot_zx[g].eq(zx_data), slot_zh[g].eq(zh_data), slot_b[g].eq(b_rd.data)]
            with m.If(rg == 3):
                m.d.sync += slot_c.eq(c_rd.data)
        op = gu.i_op.payload
        m.d.comb += [gu.i_op.valid.eq(opv), gu.o_hc.ready.eq(1), op.c.eq(slot_c)]
        m.d.comb += [x for g in range(4) for x in (op.zx[g].eq(slot_zx[g]), op.zh[g].eq(slot_zh[g]),
                                                    op.b[g].eq(slot_b[g]))]

        # results: h'[j], c'[j] written as they leave the gate unit; otherwise the ext port loads
        out_v = gu.o_hc.valid
        m.d.comb += [h_wr.addr.eq(Mux(out_v, oj, self.ext_addr)), h_wr.data.eq(Mux(out_v, gu.o_hc.payload.h,
                                                                                      self.ext_data[:db])),
                     h_wr.en.eq(out_v | ext_to("hmem")),
                     c_wr.addr.eq(Mux(out_v, oj, self.ext_addr)), c_wr.data.eq(Mux(out_v, gu.o_hc.payload.c,
                                                                                      self.ext_data[:db])),
                     c_wr.en.eq(out_v | ext_to("cmem"))]
        with m.If(out_v):
            m.d.sync += oj.eq(oj + 1)

        # ext reads: the stage engine's buffers or the state memories
        rsel_d = Signal(2)
        m.d.sync += rsel_d.eq(self.ext_rsel)
        m.d.comb += self.ext_rdata.eq(Mux(rsel_d == EXT_RSEL["hmem"], h_rd.data,
                                          Mux(rsel_d == EXT_RSEL["cmem"], c_rd.data, stg.ext_rdata)))

        # ---------------------------------------------------------------- sequencer
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += [gates_en.eq(self.gates), zsel.eq(~self.n_stages[0])]
                if cfg.x_load == "stream":
                    with m.If(self.start):
                        m.d.sync += [xa.eq(0), nx_reg.eq(self.n_x)]
                        m.next = "XLOAD"
                else:
                    m.d.comb += stg.start.eq(self.start)
                    with m.If(self.start):
                        m.next = "STAGES"
            with m.State("XLOAD"):
                m.d.comb += [busy.eq(1), xload.eq(1)]
                with m.If(xin_we):
                    m.d.sync += xa.eq(xa + 1)
                    with m.If(xa == nx_reg - 1):  # the last input: the stages start next cycle
                        m.d.comb += stg.start.eq(1)
                        m.next = "STAGES"
            with m.State("STAGES"):
                m.d.comb += busy.eq(stg.busy | (stg.done & gates_en))
                with m.If(stg.done):
                    with m.If(gates_en):  # hand-over cycle: the walkers load from the gate descriptor
                        m.d.sync += [wa[g].eq(f[f"a{g}"]) for g in range(4)]
                        m.d.sync += [nr[g].eq(f[f"n{g}"]) for g in range(4)]
                        m.d.sync += [wx[g][lv].eq(f[f"x{g}_{lv}"]) for g in range(4) for lv in range(L)]
                        m.d.sync += [g_cur.eq(0), j_cur.eq(0), oj.eq(0)]
                        m.next = "GREAD"
                    with m.Else():
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
            with m.State("GREAD"):
                m.d.comb += [busy.eq(1), gread.eq(1)]
                # rotate: walker/row of the next gate to the front, the advanced one to the back
                m.d.sync += [wa[g].eq(wa[g + 1]) for g in range(3)] + [wa[3].eq(na)]
                m.d.sync += [wx[g][lv].eq(wx[g + 1][lv]) for g in range(3) for lv in range(L)]
                m.d.sync += [wx[3][lv].eq(nx[lv]) for lv in range(L)]
                m.d.sync += [nr[g].eq(nr[g + 1]) for g in range(3)] + [nr[3].eq(nr[0] + 1)]
                m.d.sync += g_cur.eq(g_cur + 1)
                with m.If(g_cur == 3):
                    m.d.sync += j_cur.eq(j_cur + 1)
                    with m.If(j_cur == f["H"] - 1):
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += busy.eq(1)
                with m.If(out_v & (oj == f["H"] - 1)):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        if self.debug:
            m.d.comb += [stg.dbg_clear.eq(self.dbg_clear), gu.dbg_clear.eq(self.dbg_clear)]
            for name in (*COUNTERS, "cnt_bank_rd", "cnt_bank_wr"):
                m.d.comb += getattr(self, name).eq(getattr(stg, name))
            for name in GATE_COUNTERS:
                m.d.comb += getattr(self, name).eq(getattr(gu, name))
            W = COUNTER_BITS
            incs = {"cnt_hid_rd": stg.hid_ren,
                    "cnt_state_rd": stg.hid_ren.as_unsigned() + gread + (gread & (g_cur == 3)),
                    "cnt_state_wr": Mux(out_v, 2, 0),
                    "cnt_gate_addr": Mux(gread, 2, 0) + out_v,
                    "cnt_x_addr": xin_we}
            for name, inc in incs.items():
                sig = getattr(self, name)
                m.d.sync += sig.eq(Mux(self.dbg_clear, 0, sig + Const(0, W) + inc))
        return m


def generate_verilog(cfg, debug: bool = False) -> tuple[str, dict]:
    """Verilog of the whole engine (top ``cfg.top_name``: stage engine, hidden stage, gather, gate unit) and
    its metadata; ``debug=True`` adds the simulation-only activity counters the co-simulation compares."""
    from hwsim.rtl.lstm_engine import MAX_STAGES

    top = LstmStepEngine(cfg, debug=debug)
    return generate(cfg, top, LINT_WAIVERS,
                    derived={"desc_bits": sum(b for _, b in desc_layout(cfg)), "desc_layout": desc_layout(cfg),
                             "gate_desc_bits": top.gbits, "gate_desc_layout": gate_desc_layout(cfg),
                             "bank_depth": cfg.bank_depth, "weight_words": cfg.weight_words,
                             "hidden_words": hidden_words(cfg), "max_hidden": max_hidden(cfg),
                             "max_stages": MAX_STAGES, "ext_sel": EXT_SEL, "ext_rsel": EXT_RSEL},
                    debug=debug)
