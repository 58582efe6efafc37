"""One processing element of the MAC array, for every weight format and every dataflow (WS, IS, OS).

The product logic is per format: a signed multiplier for int8/int4/int2, an add/skip/subtract select
for ternary, an XNOR for binary (a +-1 product counted into the accumulator), and a barrel shift plus
negate for pow2. Accumulation saturates or wraps after every addition, as the reference specifies.
"""

from amaranth.hdl import ClockSignal, Instance, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.config import MacArrayConfig
from hwsim.errors import HwsimError

__all__ = ["FPGA_PRIMITIVES", "MULT18X18D_SIM_MODEL", "MacPE", "add_with_overflow", "dsp_product", "product",
           "uses_dsp_registers"]

#: The FPGA families whose primitives the PE can instantiate (``MacPE(cfg, fpga=...)``).
FPGA_PRIMITIVES = ("ecp5",)


def product(m: Module, cfg: MacArrayConfig, a_code, w_code):
    """Build the product of one activation code and one weight code; returns a signed(product_bits)."""
    p = Signal(signed(cfg.product_bits))
    fmt = cfg.weight_format
    if fmt == "binary":
        # XNOR of the sign bits: equal signs give +1, different signs -1.
        m.d.comb += p.eq(Mux(~(a_code[0] ^ w_code[0]), 1, -1))
        return p
    a = a_code.as_signed()
    if fmt in ("int8", "int4", "int2"):
        m.d.comb += p.eq(a * w_code.as_signed())
    elif fmt == "ternary":
        w = w_code.as_signed()
        m.d.comb += p.eq(Mux(w == 1, a, Mux(w == -1, -a, 0)))
    elif fmt == "pow2":
        sign, exp = w_code[3], w_code[0:3]
        mag = Signal(signed(cfg.product_bits))
        with m.Switch(exp):
            with m.Case(0):
                m.d.comb += mag.eq(0)
            for e in range(1, 8):
                with m.Case(e):
                    m.d.comb += mag.eq(a << (e - 1))
        m.d.comb += p.eq(Mux(sign, -mag, mag))
    else:  # pragma: no cover - the config rejects other formats
        raise AssertionError(fmt)
    return p


def uses_dsp_registers(cfg: MacArrayConfig, fpga: str | None) -> bool:
    """Whether ``MacPE(cfg, fpga=fpga)`` puts its multiplier's operand registers inside a DSP block: a
    signed-integer format (a true multiplier; binary, ternary and pow2 need none) and no N:M index select
    between the operand register and the multiplier."""
    if fpga is not None and fpga not in FPGA_PRIMITIVES:
        raise HwsimError(f"fpga={fpga!r} is not allowed: expected None or one of {', '.join(FPGA_PRIMITIVES)}")
    return fpga == "ecp5" and cfg.weight_format in ("int8", "int4", "int2") and not cfg.sparse


def dsp_product(m: Module, cfg: MacArrayConfig, a, a_load, b, b_load):
    """``reg(a) * reg(b)`` as one Lattice ECP5 ``MULT18X18D`` with its A and B input registers enabled.

    The two operand registers are the DSP block's own (clock ``CLK0``; A loads when ``a_load``, B when
    ``b_load``; both clear on the domain's synchronous reset), so the path from them through the
    multiplier never leaves the block: the same registers and the same product, cycle for cycle, as the
    fabric registers ``a_m`` / ``stationary`` feeding :func:`product` (``MULT18X18D_SIM_MODEL`` is the
    behavioural model Verilator simulates this with). Both operands are signed codes, sign-extended to the
    block's 18 bits; returns the product's low ``cfg.product_bits`` (exact: a product of two signed codes
    of at most 8 bits fits 16 bits).
    """
    rst = ResetSignal()
    a18, b18, p36 = Signal(signed(18), name="dsp_a"), Signal(signed(18), name="dsp_b"), Signal(36, name="dsp_p")
    m.d.comb += [a18.eq(a.as_signed()), b18.eq(b.as_signed())]
    ports = {
        # the registers: A on CE0, B on CE1, both on CLK0 and RST0 (a reset also enables, so the block's
        # reset acts whether or not its synchronous reset waits for the clock enable)
        "p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTA_CE": "CE0", "p_REG_INPUTA_RST": "RST0",
        "p_REG_INPUTB_CLK": "CLK0", "p_REG_INPUTB_CE": "CE1", "p_REG_INPUTB_RST": "RST0",
        "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE", "p_REG_OUTPUT_CLK": "NONE",
        "p_RESETMODE": "SYNC", "p_GSR": "DISABLED", "p_SOURCEB_MODE": "B_SHIFT", "p_MULT_BYPASS": "DISABLED",
        "p_CAS_MATCH_REG": "FALSE",
        # CLK1-3, CE2-3 and RST1-3 stay unconnected: a DSP block (four MULT18X18D) takes at most four distinct
        # nets on its CLK, CE and RST pins each, a constant counting as one; with two enables per PE, two
        # PEs share a block
        "i_CLK0": ClockSignal(), "i_CE0": a_load | rst, "i_CE1": b_load | rst, "i_RST0": rst,
        "i_SIGNEDA": 1, "i_SIGNEDB": 1, "i_SOURCEA": 0, "i_SOURCEB": 0,
    }
    for i in range(18):
        ports |= {f"i_A{i}": a18[i], f"i_B{i}": b18[i], f"i_C{i}": 0}
    for i in range(36):
        ports[f"o_P{i}"] = p36[i]
    m.submodules += Instance("MULT18X18D", **ports)
    p = Signal(signed(cfg.product_bits))
    m.d.comb += p.eq(p36[:cfg.product_bits].as_signed())
    return p


#: A behavioural Verilog model of the ``MULT18X18D`` configurations :func:`dsp_product` instantiates, for
#: simulating the FPGA variant of the RTL in Verilator (``generate_verilog(cfg, fpga="ecp5",
#: sim_models=True)``); never given to synthesis (Yosys has the real primitive). Input registers A and B
#: on ``CLK0`` with the clock enable (``CE0``/``CE1``) their parameters name and the synchronous reset
#: ``RST0`` (a reset wins over the enable; :func:`dsp_product` raises the enable with the reset, so the
#: order does not matter for it); the pipeline and output registers, cascades and shifts are not modelled
#: (the instance leaves them off, and the model stops a simulation that sets them).
MULT18X18D_SIM_MODEL = """
// hwsim: behavioural model of the Lattice ECP5 MULT18X18D subset the FPGA variant instantiates.
module MULT18X18D #(
  parameter REG_INPUTA_CLK = "NONE", parameter REG_INPUTA_CE = "CE0", parameter REG_INPUTA_RST = "RST0",
  parameter REG_INPUTB_CLK = "NONE", parameter REG_INPUTB_CE = "CE0", parameter REG_INPUTB_RST = "RST0",
  parameter REG_INPUTC_CLK = "NONE", parameter REG_INPUTC_CE = "CE0", parameter REG_INPUTC_RST = "RST0",
  parameter REG_PIPELINE_CLK = "NONE", parameter REG_PIPELINE_CE = "CE0", parameter REG_PIPELINE_RST = "RST0",
  parameter REG_OUTPUT_CLK = "NONE", parameter REG_OUTPUT_CE = "CE0", parameter REG_OUTPUT_RST = "RST0",
  parameter RESETMODE = "SYNC", parameter GSR = "ENABLED", parameter SOURCEB_MODE = "B_SHIFT",
  parameter MULT_BYPASS = "DISABLED", parameter CAS_MATCH_REG = "FALSE"
) (
  input A0, A1, A2, A3, A4, A5, A6, A7, A8, A9, A10, A11, A12, A13, A14, A15, A16, A17,
  input B0, B1, B2, B3, B4, B5, B6, B7, B8, B9, B10, B11, B12, B13, B14, B15, B16, B17,
  input C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11, C12, C13, C14, C15, C16, C17,
  input SIGNEDA, SIGNEDB, SOURCEA, SOURCEB,
  input CLK0, CE0, CE1, RST0,  // the control pins dsp_product connects (the model has no others)
  output P0, P1, P2, P3, P4, P5, P6, P7, P8, P9, P10, P11, P12, P13, P14, P15, P16, P17,
  output P18, P19, P20, P21, P22, P23, P24, P25, P26, P27, P28, P29, P30, P31, P32, P33, P34, P35
);
  /* verilator lint_off UNUSEDSIGNAL */
  /* verilator lint_off UNUSEDPARAM */
  wire [17:0] a_in = {A17, A16, A15, A14, A13, A12, A11, A10, A9, A8, A7, A6, A5, A4, A3, A2, A1, A0};
  wire [17:0] b_in = {B17, B16, B15, B14, B13, B12, B11, B10, B9, B8, B7, B6, B5, B4, B3, B2, B1, B0};
  wire ce_a = REG_INPUTA_CE == "CE1" ? CE1 : CE0;
  wire ce_b = REG_INPUTB_CE == "CE1" ? CE1 : CE0;
  initial begin
    if ((REG_INPUTA_CLK != "NONE" && REG_INPUTA_CLK != "CLK0") || (REG_INPUTB_CLK != "NONE" && REG_INPUTB_CLK != "CLK0")
        || (REG_INPUTA_CE != "CE0" && REG_INPUTA_CE != "CE1") || (REG_INPUTB_CE != "CE0" && REG_INPUTB_CE != "CE1")
        || REG_INPUTA_RST != "RST0" || REG_INPUTB_RST != "RST0"
        || REG_INPUTC_CLK != "NONE" || REG_PIPELINE_CLK != "NONE" || REG_OUTPUT_CLK != "NONE"
        || RESETMODE != "SYNC" || MULT_BYPASS != "DISABLED" || SOURCEA || SOURCEB)
      $fatal(1, "MULT18X18D model: configuration not modelled");
  end
  reg [17:0] a_r = 18'd0, b_r = 18'd0;
  always @(posedge CLK0) begin
    if (RST0) a_r <= 18'd0; else if (ce_a) a_r <= a_in;
    if (RST0) b_r <= 18'd0; else if (ce_b) b_r <= b_in;
  end
  wire [17:0] a = REG_INPUTA_CLK == "NONE" ? a_in : a_r;
  wire [17:0] b = REG_INPUTB_CLK == "NONE" ? b_in : b_r;
  wire signed [35:0] sa = SIGNEDA ? {{18{a[17]}}, a} : {18'd0, a};
  wire signed [35:0] sb = SIGNEDB ? {{18{b[17]}}, b} : {18'd0, b};
  wire [35:0] p = sa * sb;
  assign {P35, P34, P33, P32, P31, P30, P29, P28, P27, P26, P25, P24, P23, P22, P21, P20, P19, P18,
          P17, P16, P15, P14, P13, P12, P11, P10, P9, P8, P7, P6, P5, P4, P3, P2, P1, P0} = p;
endmodule
"""


def add_with_overflow(m: Module, cfg: MacArrayConfig, x, y):
    """``x + y`` in a signed acc_bits register, saturating or wrapping as ``cfg.overflow`` says."""
    n = cfg.acc_bits
    wide = Signal(signed(n + 1))
    out = Signal(signed(n))
    m.d.comb += wide.eq(x + y)
    if cfg.overflow == "wrap":
        m.d.comb += out.eq(wide[:n].as_signed())
    elif len(x) <= n and len(y) <= n:
        # Both operands fit signed n bits, so the n+1-bit sum left the n-bit range exactly when its two top
        # bits differ, and then its sign says which end (the same result as comparing with hi/lo, without a
        # carry chain for each comparison).
        hi, lo = (1 << (n - 1)) - 1, -(1 << (n - 1))
        m.d.comb += out.eq(Mux(wide[n] == wide[n - 1], wide[:n].as_signed(), Mux(wide[n], lo, hi)))
    else:
        hi, lo = (1 << (n - 1)) - 1, -(1 << (n - 1))
        m.d.comb += out.eq(Mux(wide > hi, hi, Mux(wide < lo, lo, wide)))
    return out


class MacPE(wiring.Component):
    """A systolic PE.

    Weight-stationary (``cfg.dataflow == "ws"``): holds a weight code loaded through ``w_load``/``w_code``;
    each cycle registers ``psum_out <= ovf(psum_in + (a_valid & a_en ? a*w : 0))`` and passes the
    activation on (``a_out``, one cycle latency). ``a_valid`` travels with the streamed vector (a token,
    set for every PE the vector passes); ``a_en`` says this PE's row holds a real reduction step (0 for the
    padding rows of a ragged fold), so a MAC happens when both are set.

    Input-stationary (``"is"``): the same PE with the operands' roles exchanged: the stationary register
    holds an activation code (``w_code`` is ``act_bits`` wide) and the streamed lane carries weight codes
    (``a_in``/``a_out`` are ``weight_bits`` wide).

    N:M sparse weight-stationary (``cfg.sparse``): ``a_in``/``a_out`` carry the M activations of the PE
    row's group (``M * act_bits``, lane j = reduction step ``g*M + j``), ``w_code`` is the kept weight's
    code with its ``index_bits`` index above it, and the product uses the activation lane the stored index
    selects (an M:1 multiplexer); everything else is the dense WS PE.

    Output-stationary (``"os"``): activations move right and weights move down (both one cycle per PE);
    when ``a_valid``, ``acc <= ovf((a_first ? 0 : acc) + a*w)``.

    Idle-lane gating (``cfg.gating``; ``pe_en`` says the PE holds real work in the current tile: its column
    has a real output, OS: its row too). ``"none"``: ``pe_en`` is ignored. ``"operand"``: the multiplier's
    operand registers (and the stationary register) load only for a real MAC, so an idle slot's multiplier
    and adder see constant inputs. ``"clock"``: also every data register of the PE (streamed operand,
    partial sum or accumulator) holds while ``pe_en`` is low: a synthesis tool turns the enable into a clock
    gate. The token chain (``a_valid_out``, OS ``a_first_out``: one flip-flop each) is never gated, so the
    activity counters observe every slot a vector passes.

    FPGA primitives (``fpga="ecp5"``, the place-and-route flow's variant; :func:`uses_dsp_registers`): the
    multiplier's operand registers are a ``MULT18X18D`` DSP block's input registers (:func:`dsp_product`).
    OS: both streamed operands' registers, the same registers with the same enable. WS/IS: the streamed
    operand's register with its enable; the B register copies the stationary register every cycle (which
    stays in the fabric), equal to it whenever a MAC reads it. Values and cycles are those of ``fpga=None``;
    on an FPGA the path from the operand registers through the multiplier stays inside the DSP block.

    Ports (all registered outputs, one cycle latency)
    -------------------------------------------------
    a_in, a_out : act_bits (IS: weight_bits; N:M: M x act_bits)   streamed code(s)
    a_valid_in, a_valid_out : 1   OS: the activation is real data; WS/IS: the streamed-vector token
    pe_en : 1 (input)      the PE holds real work in the current tile (constant while vectors are in flight)
    WS/IS: a_en : 1; psum_in, psum_out : signed(acc_bits); w_load : 1; w_code : weight_bits (IS: act_bits)
    OS: a_first_in, a_first_out : 1; w_in, w_out : weight_bits; acc : signed(acc_bits)
    """

    def __init__(self, cfg: MacArrayConfig, fpga: str | None = None):
        self.cfg = cfg
        self.fpga = fpga
        self.dsp = uses_dsp_registers(cfg, fpga)
        is_ = cfg.dataflow == "is"
        strm_bits = cfg.weight_bits if is_ else cfg.act_bits * cfg.sparse_nm[1]
        members = {
            "a_in": In(strm_bits),
            "a_valid_in": In(1),
            "a_out": Out(strm_bits),
            "a_valid_out": Out(1),
            "pe_en": In(1),
        }
        if cfg.dataflow in ("ws", "is"):
            members |= {
                "a_en": In(1),
                "psum_in": In(signed(cfg.acc_bits)),
                "psum_out": Out(signed(cfg.acc_bits)),
                "w_load": In(1),
                "w_code": In(unsigned(cfg.act_bits if is_ else cfg.weight_bits + cfg.index_bits)),
            }
        else:
            members |= {
                "a_first_in": In(1),
                "a_first_out": Out(1),
                "w_in": In(unsigned(cfg.weight_bits)),
                "w_out": Out(unsigned(cfg.weight_bits)),
                "acc": Out(signed(cfg.acc_bits)),
            }
        super().__init__(members)

    def real(self):
        """The PE multiplies real data this cycle; a slot a vector passes without it is an idle slot."""
        if self.cfg.dataflow in ("ws", "is"):
            return self.a_valid_in & self.a_en & self.pe_en
        return self.a_valid_in & self.pe_en

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        gate = cfg.gating
        # The PE's data registers, assigned at the end: under gating="clock" only while pe_en (a register
        # enable, which synthesis turns into a clock gate on an ASIC and a clock enable on an FPGA).
        data = []

        def assign(m, stmts, acc=None):
            """The data registers, and (OS) the accumulator when ``acc = (enable, value)``."""
            m.d.sync += stmts
            if acc is not None:
                with m.If(acc[0]):
                    m.d.sync += self.acc.eq(acc[1])
        m.d.sync += self.a_valid_out.eq(self.a_valid_in)
        data.append(self.a_out.eq(self.a_in))
        if cfg.dataflow in ("ws", "is"):
            load = self.w_load if gate == "none" else self.w_load & self.pe_en
            # The multiplier has a register of its own on each side (PE_STAGES = 2): its operand (the streamed
            # code, and the token that gates it) and its product, so a placer can put both beside a DSP block.
            # Operand isolation (gating): the operand changes only for a real MAC.
            a_load = 1 if gate == "none" else self.real()
            mac = Signal(name="mac")
            stationary = Signal(len(self.w_code))
            with m.If(load):
                m.d.sync += stationary.eq(self.w_code)
            if self.dsp:
                # The streamed operand's register is the DSP block's A register; its B register copies the
                # stationary register every cycle (B = stationary one cycle late), so neither register's
                # input comes from logic: the stationary code only changes while the array loads weights
                # (WLOAD), and the fold's first MAC in a PE reads it at least three cycles after its load
                # (the streamed operand's buffer read, its register and the A register lie between), so B
                # equals it whenever a MAC reads it (co-simulation checks every product).
                p = dsp_product(m, cfg, self.a_in, a_load, stationary, 1)
            else:
                a_m = Signal.like(self.a_in, name="a_m")
                if gate == "none":
                    m.d.sync += a_m.eq(self.a_in)
                else:
                    with m.If(a_load):
                        m.d.sync += a_m.eq(self.a_in)
                if cfg.sparse:
                    # Index-driven activation select: the stored index picks lane idx of the group's M
                    # activations.
                    code, idx = stationary[:cfg.weight_bits], stationary[cfg.weight_bits:]
                    p = product(m, cfg, a_m.word_select(idx, cfg.act_bits), code)
                elif cfg.dataflow == "ws":
                    p = product(m, cfg, a_m, stationary)
                else:
                    p = product(m, cfg, stationary, a_m)
            term = Signal(signed(cfg.product_bits))
            data += [mac.eq(self.a_valid_in & self.a_en), term.eq(Mux(mac, p, 0)),
                     self.psum_out.eq(add_with_overflow(m, cfg, self.psum_in, term))]
            if gate == "clock":
                with m.If(self.pe_en):
                    assign(m, data)
            else:
                assign(m, data)
        else:
            m.d.sync += self.a_first_out.eq(self.a_first_in)
            data.append(self.w_out.eq(self.w_in))
            # Registers on both sides of the multiplier, with the flags (PE_STAGES = 2, as in WS).
            valid_m, first_m = Signal(), Signal()
            # operand isolation (gating): an idle PE's accumulator holds (its value is never read)
            load = 1 if gate == "none" else self.real()
            if self.dsp:  # both operand registers inside the DSP block
                p = dsp_product(m, cfg, self.a_in, load, self.w_in, load)
            else:
                a_m, w_m = Signal.like(self.a_in, name="a_m"), Signal.like(self.w_in, name="w_m")
                if gate == "none":
                    m.d.sync += [a_m.eq(self.a_in), w_m.eq(self.w_in)]
                else:
                    with m.If(load):
                        m.d.sync += [a_m.eq(self.a_in), w_m.eq(self.w_in)]
                p = product(m, cfg, a_m, w_m)
            data.append(valid_m.eq(self.a_valid_in if gate == "none" else self.real()))
            p_q = Signal(signed(cfg.product_bits))
            valid_q, first_q = Signal(), Signal()
            base = Signal(signed(cfg.acc_bits))
            m.d.comb += base.eq(Mux(first_q, 0, self.acc))
            acc_next = add_with_overflow(m, cfg, base, p_q)
            data += [first_m.eq(self.a_first_in), p_q.eq(p), valid_q.eq(valid_m), first_q.eq(first_m)]
            if gate == "clock":
                with m.If(self.pe_en):
                    assign(m, data, (valid_q, acc_next))
            else:
                assign(m, data, (valid_q, acc_next))
        return m
