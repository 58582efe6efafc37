"""The rows x cols systolic grid of :class:`MacPE`, with its input skew and output deskew registers.

Its interface takes and gives aligned (unskewed) vectors, so the controller never deals with skew.
"""

from amaranth.hdl import Array, Cat, Module, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from hwsim.rtl.mac_pe import MacPE

from hwsim.config import MacArrayConfig

__all__ = ["SystolicArray"]


def _delay(m: Module, sig, n: int, name: str):
    """``sig`` delayed by ``n`` register stages."""
    for i in range(n):
        nxt = Signal.like(sig, name=f"{name}_d{i + 1}")
        m.d.sync += nxt.eq(sig)
        sig = nxt
    return sig


class SystolicArray(wiring.Component):
    """A systolic MAC grid.

    Weight-stationary ports (input-stationary: the same with the operands exchanged, so ``a_vec`` lanes
    are ``weight_bits`` wide and carry weight codes, ``w_vec`` lanes are ``act_bits`` wide and carry
    activation codes)
    -----------------------
    a_vec : In, rows x act_bits     one row of the activation tile (lane r multiplies weight row r)
    a_valid : In, 1                 ``a_vec`` is a streamed vector (a token that travels with it)
    lane_en : In, rows              lanes holding a real reduction step (0 for the padding rows of a fold;
                                    constant while a fold's vectors are in flight)
    psum_vec : In, cols x signed(acc_bits)   partial sums entering the top of each column, same cycle
    out_vec : Out, cols x signed(acc_bits)   ``psum + a . W`` for that row, ``rows + cols - 1`` cycles later
    w_load : In, 1; w_row : In; w_vec : In, cols x weight_bits   load one weight row per cycle

    N:M sparse weight-stationary: ``a_vec`` has ``rows * M / N`` lanes (every reduction step of the fold; PE
    row r receives the M lanes of its group ``r // N``, skewed by r); ``w_vec`` lanes are a kept weight's
    code with its ``index_bits`` index above it; ``lane_en`` marks the rows holding a kept weight.

    Output-stationary ports
    -----------------------
    a_vec : In, rows x act_bits; w_vec : In, cols x weight_bits   one reduction step k for the tile
    valid, first : In, 1            ``first`` marks k == 0 (the accumulators restart)
    row_sel : In; acc_row : Out, cols x signed(acc_bits)   accumulator row readout (combinational);
    the last step's products are in the accumulators ``rows + cols - 1`` cycles after it entered.

    Row selects (``w_row``, ``row_sel``) are at least one bit wide, so a one-row array has no zero-width
    signal.

    Idle-lane gating (every dataflow): ``col_en : In, cols`` marks the columns holding a real output of the
    current tile and, OS only, ``row_en : In, rows`` its real rows; a PE holds real work when its column
    (OS: and row) is enabled. What an idle PE does is ``cfg.gating`` (:class:`MacPE`). Both are constant
    while a tile's vectors are in flight.

    ``fpga="ecp5"``: every PE's multiplier operand registers are DSP-block registers (:class:`MacPE`); the
    same values and cycles, for the FPGA flow.

    Debug ports (``debug=True`` only; simulation activity counters, not for synthesis)
    ---------------------------------------------------------------------------------
    dbg_mac : Out, rows*cols        PE (r, c) (bit ``r*cols + c``) multiplies real data this cycle
    dbg_hop : Out, rows*cols        a streamed vector (WS/IS) or reduction step (OS) enters PE (r, c): its
                                    pipeline registers take that vector's activation and psum (weight)
    dbg_wload : Out, rows*cols      PE (r, c) loads its stationary register (always 0 in OS)
    dbg_idle : Out, rows*cols       a vector passes PE (r, c) without a real MAC there (an idle slot)
    dbg_gate : Out, rows*cols       gating="clock": a vector passes PE (r, c) while its registers are gated
    """

    def __init__(self, cfg: MacArrayConfig, debug: bool = False, fpga: str | None = None):
        self.cfg = cfg
        self.debug = debug
        self.fpga = fpga
        R, C = cfg.rows, cfg.cols
        acc = signed(cfg.acc_bits)
        is_ = cfg.dataflow == "is"
        strm_bits, stat_bits = (cfg.weight_bits, cfg.act_bits) if is_ else \
            (cfg.act_bits, cfg.weight_bits + cfg.index_bits)
        members = {
            "a_vec": In(data.ArrayLayout(unsigned(strm_bits), cfg.ws_k_step if cfg.sparse else R)),
            "w_vec": In(data.ArrayLayout(unsigned(stat_bits), C)),
            "col_en": In(C),
        }
        if cfg.dataflow in ("ws", "is"):
            members |= {
                "a_valid": In(1),
                "lane_en": In(R),
                "psum_vec": In(data.ArrayLayout(acc, C)),
                "out_vec": Out(data.ArrayLayout(acc, C)),
                "w_load": In(1),
                "w_row": In(range(max(R, 2))),
            }
        else:
            members |= {
                "valid": In(1),
                "first": In(1),
                "row_sel": In(range(max(R, 2))),
                "acc_row": Out(data.ArrayLayout(acc, C)),
                "row_en": In(R),
            }
        if debug:
            members |= {"dbg_mac": Out(R * C), "dbg_hop": Out(R * C), "dbg_wload": Out(R * C),
                        "dbg_idle": Out(R * C), "dbg_gate": Out(R * C)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, C = cfg.rows, cfg.cols
        pes = [[MacPE(cfg, self.fpga) for _ in range(C)] for _ in range(R)]
        for r in range(R):
            for c in range(C):
                m.submodules[f"pe_{r}_{c}"] = pes[r][c]
                en = self.col_en[c] if cfg.dataflow in ("ws", "is") else self.row_en[r] & self.col_en[c]
                m.d.comb += pes[r][c].pe_en.eq(en)

        if cfg.dataflow in ("ws", "is"):
            sn, sm = cfg.sparse_nm
            for r in range(R):
                if cfg.sparse:
                    g = r // sn
                    lanes = Signal(sm * cfg.act_bits, name=f"agroup{r}")
                    m.d.comb += lanes.eq(Cat(*(self.a_vec[g * sm + j] for j in range(sm))))
                    a = _delay(m, lanes, r, f"askew{r}")
                else:
                    a = _delay(m, self.a_vec[r], r, f"askew{r}")
                v = _delay(m, self.a_valid, r, f"vskew{r}")
                m.d.comb += [pes[r][0].a_in.eq(a), pes[r][0].a_valid_in.eq(v)]
                for c in range(C):
                    m.d.comb += pes[r][c].a_en.eq(self.lane_en[r])
                for c in range(1, C):
                    m.d.comb += [pes[r][c].a_in.eq(pes[r][c - 1].a_out),
                                 pes[r][c].a_valid_in.eq(pes[r][c - 1].a_valid_out)]
                for c in range(C):
                    m.d.comb += [pes[r][c].w_load.eq(self.w_load & (self.w_row == r)),
                                 pes[r][c].w_code.eq(self.w_vec[c])]
            for c in range(C):
                # A PE's product follows its operand by PE_STAGES = 2 cycles: a vector's partial sum enters
                # column c two cycles after its activation reaches the column's first PE.
                m.d.comb += pes[0][c].psum_in.eq(_delay(m, self.psum_vec[c], c + 2, f"pskew{c}"))
                for r in range(1, R):
                    m.d.comb += pes[r][c].psum_in.eq(pes[r - 1][c].psum_out)
                m.d.comb += self.out_vec[c].eq(_delay(m, pes[R - 1][c].psum_out, C - 1 - c, f"deskew{c}"))
        else:
            # Row r's activations are delayed by r, column c's weights by c; the valid/first flags travel
            # with the activations, so every PE sees step k at cycle k + r + c.
            for r in range(R):
                m.d.comb += [pes[r][0].a_in.eq(_delay(m, self.a_vec[r], r, f"askew{r}")),
                             pes[r][0].a_valid_in.eq(_delay(m, self.valid, r, f"vskew{r}")),
                             pes[r][0].a_first_in.eq(_delay(m, self.first, r, f"fskew{r}"))]
                for c in range(1, C):
                    m.d.comb += [pes[r][c].a_in.eq(pes[r][c - 1].a_out),
                                 pes[r][c].a_valid_in.eq(pes[r][c - 1].a_valid_out),
                                 pes[r][c].a_first_in.eq(pes[r][c - 1].a_first_out)]
            for c in range(C):
                m.d.comb += pes[0][c].w_in.eq(_delay(m, self.w_vec[c], c, f"wskew{c}"))
                for r in range(1, R):
                    m.d.comb += pes[r][c].w_in.eq(pes[r - 1][c].w_out)
            rows = Array([Array([pes[r][c].acc for c in range(C)]) for r in range(R)])
            for c in range(C):
                m.d.comb += self.acc_row[c].eq(rows[self.row_sel][c])
        if self.debug:
            ws_like = cfg.dataflow in ("ws", "is")
            # (MacPE.real: the vector meets a real row and column of the tile)
            for r in range(R):
                for c in range(C):
                    pe, i = pes[r][c], r * C + c
                    clock, gated = cfg.gating == "clock", cfg.gating != "none"
                    m.d.comb += [self.dbg_mac[i].eq(pe.real()),
                                 self.dbg_idle[i].eq(pe.a_valid_in & ~pe.real()),
                                 self.dbg_hop[i].eq(pe.a_valid_in & pe.pe_en if clock else pe.a_valid_in),
                                 self.dbg_gate[i].eq(pe.a_valid_in & ~pe.pe_en if clock else 0),
                                 self.dbg_wload[i].eq((pe.w_load & pe.pe_en if gated else pe.w_load)
                                                      if ws_like else 0)]
        return m
