"""The deformable unit top for 3x3 deformable conv, depthwise or full, with bounded or square offsets:
controller, line-buffer fill engine, banked line buffer, offset decode (the variant's clamp / square
expansion), the bilinear sampler (:mod:`hwsim.rtl.deform_sampler`), a ``lanes x out_lanes`` MAC stage with
its accumulators, and the requantizer (``max(lanes, out_lanes)`` lanes), with simulation-only activity
counters.

Scope of this RTL (``check_rtl``, ``check_rtl_layer``): kernel 3, stride 1, padding 1, dilation 1, depthwise
(``C_out = C``) or full layers of any ``C`` and ``C_out`` up to ``max_channels`` (``ceil(C / lanes)``
channel blocks; full, ``ceil(C_out / out_lanes)`` output groups), an optional per-output bias, no DCN v2
mask, a bounded offset (free) or dilation (square) with the derived line-buffer height, power-of-two
``banks``, a whole number K of input words (``lanes * act_bits / 8`` bytes) per cycle from DRAM
(``dram_bytes_per_cycle`` = K words; each bank has K write ports, so any K words of a cycle can be
written).

Work (what :func:`hwsim.deform_unit.predict_layer` counts): items (output pixel, tap, channel block) in that
order. The line buffer holds every channel block of a pixel (word ``(pixel word << NBb) | block``). MAC
stage per item: depthwise, ``lanes`` MACs in one cycle (lane ``l``: channel ``j lanes + l``, one product per
saturating addition, multiplier ``(l, l mod out_lanes)`` of the array); full, ``b = ceil(C_out /
out_lanes)`` cycles, cycle ``g`` output group ``g``: each of ``out_lanes`` outputs adds the ``lanes``
products of the block. The reference saturates after every product, in channel order; ``s -> clamp(s + p)``
functions compose to the same form ``s -> clamp(s + c, lo', hi')``, so a tree of ``(c, lo', hi')`` nodes
(log2(lanes) levels) gives exactly the sequential result (wrap: a plain adder tree). The accumulators
(one word of ``max(lanes, out_lanes)`` per block or group) start from the bias at the item (tap 0, block j)
depthwise, (tap 0, block 0) full. Weights and biases come from buffers outside the top (``w_addr`` /
``w_data``: the pixel's MAC cycles read consecutive weight tiles; ``b_addr`` / ``b_data``).

Timing (what :func:`hwsim.deform_unit.predict_layer` predicts, exactly): ``start`` in IDLE latches the layer
(mode, C, C_out, size, shift, relu); ``busy`` is high from the next cycle. FILL0 writes the first window's
rows into the line buffer, K words per cycle (``in_addr`` -> ``in_data``, combinational; a window's last
cycle may write fewer). Then one ROW step
per output row: the sampler runs the row's items; the MAC stage works on item ``k - 1`` while the sampler
fetches item ``k``, and the sampler's ``done`` waits for the MAC's last cycle (``hold``), so a step lasts
``max(a_k, b)``; the sample is used from the sampler in the item's first MAC cycle and from a register in
the others. The fill engine loads the row the next window adds, concurrently; the row ends when both are
finished (``max(comp, fill)``, comp including the last item's ``b`` MAC cycles). Outputs leave on ``o_pix``
(valid only, the sink must always be ready): depthwise, block ``j``'s ``lanes`` outputs the cycle after its
tap-8 MAC; full, the pixel's ``b`` groups of ``out_lanes`` outputs one per cycle after its last MAC cycle
(read from the accumulators before the next pixel's MACs overwrite them). DRAIN: the last pixel's beats
(1 depthwise, ``b`` full), then DONE (``done``): ``1 + b`` cycles. Physical line-buffer rows: the next power
of two >= R + 1 (R rows of the window + the row being loaded).

Idle lanes (``cfg.gating``, docs/idle_lanes.md): input lane ``l`` of block ``j`` is enabled when
``j lanes + l < C``; output lane ``q`` of group ``g`` (full) when ``g out_lanes + q < C_out``. A multiplier
``(l, q)`` is a real MAC when both are (depthwise: multiplier ``(l, l mod out_lanes)`` with lane ``l``
enabled; the others are not slots). ``none``: every lane multiplies, accumulates and is requantized.
``operand``: an idle multiplier's inputs (sample and weight) and an idle requantizer lane's input are forced
to zero (AND isolation). ``clock``: ``operand``, and the idle lanes' accumulator registers do not load (a
clock gate in synthesis). The counters count real MACs (``cnt_mac``) and idle slots (``cnt_mac_idle``:
``lanes`` per depthwise MAC cycle, ``lanes x out_lanes`` per full one, minus the real ones) apart, and the
requantized lanes (per beat: ``lanes`` depthwise / ``out_lanes`` full without gating, the real outputs with
it). The sampler's lanes are enabled likewise from the block of the item it samples (lane ``l`` of block ``j``
when ``j lanes + l < C``): with ``operand`` an idle lane's interpolator inputs are ANDed to zero, with ``clock``
also its partial-sum register holds (:mod:`hwsim.rtl.deform_sampler`); ``cnt_interp`` counts the real lane
interpolations (the enabled lanes of each item the sampler finishes) and ``cnt_interp_idle`` the idle ones
(``lanes`` per item minus the real), under every choice.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from hwsim.models.tables import offset_bound_code
from hwsim.rtl.deform_sampler import COORD_BITS, DIM_BITS, BilinearSampler
from hwsim.rtl.verilog import generate

__all__ = ["ADDR_BITS", "COUNTERS", "LINT_WAIVERS", "OFFSET_BITS", "DeformUnitTop", "generate_verilog",
           "rows_phys", "words_per_cycle"]

#: Simulation-only activity counters (32-bit outputs) and the (component, action) each one counts.
COUNTERS = {"cnt_lb_read": ("line_buffer", "read"), "cnt_lb_write": ("line_buffer", "write"),
            "cnt_sample": ("sampler", "sample"), "cnt_mac": ("mac", "mac"), "cnt_requant": ("requant", "convert"),
            "cnt_off_read": ("offset_buffer", "read"), "cnt_mac_idle": ("mac", "idle"),
            "cnt_interp": ("sampler", "interp"), "cnt_interp_idle": ("sampler", "idle")}
OFFSET_BITS = 16
ADDR_BITS = 24

LINT_WAIVERS = """// Generated by hwsim (deform-unit). Verilator waivers: Amaranth emits intentional mixed-width
// signed arithmetic and case statements without defaults.
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */
/* verilator lint_off CASEINCOMPLETE */
"""


def words_per_cycle(cfg) -> int:
    """Input words (``lanes * act_bits`` bits) the fill engine writes per cycle: ``dram_bytes_per_cycle`` over
    the word's bytes (a whole number inside the RTL's scope, :func:`hwsim.deform_unit.check_rtl`)."""
    return max(1, int(cfg.dram_bytes_per_cycle * 8 // (cfg.lanes * cfg.act_bits)))


def rows_phys(cfg) -> int:
    """Physical line-buffer rows: the next power of two >= the window's R rows + 1."""
    return 1 << cfg.rows_for(1).bit_length()


class DeformUnitTop(wiring.Component):
    """3x3 deformable unit, depthwise or full (see the module docstring for scope and timing).

    Ports
    -----
    start : In, 1                  in IDLE, starts a layer
    depthwise : In, 1              1: depthwise (C_out = C), 0: full (every output sums every input channel)
    chans, chans_out : In, bits(max_channels)   C and C_out, 1..max_channels, latched at ``start``
    height, width : In, 12         input (= output) size in pixels, latched at ``start``
    shift : In, 6                  output shift (the accumulator is shifted by shift + 2F), latched
    relu : In, 1                   max(acc, 0) before the shift, latched
    square : In, 1                 free-mode configs only: run square-shape offsets (field 0 of off_data is
                                   the dilation) on the same line buffer, latched; square configs ignore it
    in_addr : Out, 24              first input word the fill engine reads: pixel (r, c) block j at
                                   (r W + c) NB + j (NB = ceil(C / lanes) words per pixel, raster order)
    in_data : In, K * lanes * act_bits   words in_addr .. in_addr + K - 1 (K = :func:`words_per_cycle`; word
                                   i at [i lanes A, ...), its channel j lanes + l at lane l; beyond C zero), same
                                   cycle
    off_addr : Out, 24             output pixel y * width + x whose raw offsets are read
    off_data : In, n_off * 16      raw Q-format offsets (free: dy, dx of taps 0..8; square: the dilation)
    w_addr : Out, 24               weight tile of this MAC cycle: the pixel's k-th MAC cycle reads tile k
                                   (tap, then block, then output group: (t NB + j) G + g; depthwise G = 1)
    w_data : In, lanes * out_lanes * wb   that tile, same cycle: full, field q lanes + l = weight of output
                                   g out_lanes + q and input j lanes + l; depthwise, field l = weight of
                                   channel j lanes + l (the others unused); signed, zero beyond C / C_out
    b_addr : Out, 12               bias word: depthwise the block j, full the output group g
    b_data : In, max(lanes, out_lanes) * acc_bits   its biases (lane l: channel j lanes + l, or output
                                   g out_lanes + l), at the accumulator's scale, signed
    o_pix : Out stream, max(lanes, out_lanes) * act_bits   outputs (no back-pressure): depthwise one beat per
                                   (pixel, block) of ``lanes`` channels, full one per (pixel, group) of
                                   ``out_lanes`` outputs, raster order
    busy : Out, 1                  high from the cycle after ``start`` to ``done``
    done : Out, 1                  one-cycle pulse in the last busy cycle
    cnt_* : Out, 32                activity counters (:data:`COUNTERS`, ``cnt_stall``, ``cnt_conflict``),
                                   cleared at ``start``
    """

    def __init__(self, cfg):
        self.cfg = cfg
        self.n_off = 1 if cfg.offset_mode == "square" else 18
        self.al = max(cfg.lanes, cfg.out_lanes)
        self.k_words = words_per_cycle(cfg)
        cb = cfg.max_channels.bit_length()
        super().__init__({
            "start": In(1), "depthwise": In(1), "chans": In(cb), "chans_out": In(cb),
            "height": In(DIM_BITS), "width": In(DIM_BITS), "shift": In(6), "relu": In(1), "square": In(1),
            "in_addr": Out(ADDR_BITS), "in_data": In(self.k_words * cfg.lanes * cfg.act_bits),
            "off_addr": Out(ADDR_BITS), "off_data": In(self.n_off * OFFSET_BITS),
            "w_addr": Out(ADDR_BITS), "w_data": In(cfg.lanes * cfg.out_lanes * cfg.weight_bits),
            "b_addr": Out(DIM_BITS), "b_data": In(self.al * cfg.acc_bits),
            "o_pix": Out(stream.Signature(self.al * cfg.act_bits)),
            "busy": Out(1), "done": Out(1),
            **{name: Out(32) for name in (*COUNTERS, "cnt_stall", "cnt_conflict")},
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        F, A, L, Q, WB, ACC = cfg.frac_bits, cfg.act_bits, cfg.lanes, cfg.out_lanes, cfg.weight_bits, cfg.acc_bits
        AL = self.al
        R = cfg.rows_for(1)
        half = (R - 1) // 2
        rp = rows_phys(cfg)
        smp = m.submodules.sampler = BilinearSampler(cfg, rp)
        CB = cfg.max_channels.bit_length() + 1  # channel counts and bases (base + lanes)
        nbb = smp.nbb
        BB = max(1, nbb)
        gmax = -(-cfg.max_channels // Q)
        depth_acc = max(smp.nb, gmax)
        ab = max(1, (depth_acc - 1).bit_length())
        gated, clock_gated = cfg.gating != "none", cfg.gating == "clock"

        # ------------------------------------------------------------------ line buffer banks
        lb = (cfg.banks - 1).bit_length()
        writes = []
        for b in range(cfg.banks):
            mem = Memory(shape=L * A, depth=smp.depth, init=[])
            m.submodules[f"lb_bank{b}"] = mem
            rd = mem.read_port()
            m.d.comb += [rd.en.eq(smp.rd_en[b]), rd.addr.eq(smp.rd_addr[b * smp.aw:(b + 1) * smp.aw]),
                         smp.rd_data[b * smp.lw:(b + 1) * smp.lw].eq(rd.data)]
            writes.append([mem.write_port() for _ in range(self.k_words)])

        # ------------------------------------------------------------------ registers
        H, W = Signal(DIM_BITS), Signal(DIM_BITS)
        C, CO = Signal(CB), Signal(CB)
        dw = Signal()
        shift, relu = Signal(6), Signal()
        square = Signal(init=int(cfg.offset_mode == "square"))
        y, x, t = Signal(DIM_BITS), Signal(DIM_BITS), Signal(4)
        ti, tj = Signal(2), Signal(2)
        blk, chb = Signal(BB), Signal(CB)  # the sampler's channel block and its first channel
        blk_last = Signal()
        m.d.comb += blk_last.eq(chb + L >= C)
        fr, fc, target = Signal(DIM_BITS + 1), Signal(DIM_BITS), Signal(DIM_BITS + 1)
        fblk, fchb, fptr = Signal(BB), Signal(CB), Signal(ADDR_BITS)
        item_start = Signal()
        cstate = Signal(2)  # 0 sampling, 1 tail (MAC of the last item), 2 compute done
        fill_on = Signal()

        # fill engine: K words (a word: one channel block of one pixel) per cycle while fill_on, those of rows
        # below target; word i of the cycle is the i-th after (fr, fc, fblk), written through port i of its bank
        K = self.k_words
        pos = [(fr, fc, fblk, fchb)]
        for i in range(K):
            r0, c0, b0, h0 = pos[-1]
            r1, c1, b1, h1 = (Signal(DIM_BITS + 1, name=f"fr{i + 1}"), Signal(DIM_BITS, name=f"fc{i + 1}"),
                              Signal(BB, name=f"fblk{i + 1}"), Signal(CB, name=f"fchb{i + 1}"))
            blast = h0 + L >= C
            m.d.comb += [r1.eq(Mux(blast & (c0 == W - 1), r0 + 1, r0)),
                         c1.eq(Mux(blast, Mux(c0 == W - 1, 0, c0 + 1), c0)),
                         b1.eq(Mux(blast, 0, b0 + 1)), h1.eq(Mux(blast, 0, h0 + L))]
            pos.append((r1, c1, b1, h1))
        wvalid = [Signal(name=f"fill_w{i}") for i in range(K)]
        m.d.comb += [wvalid[i].eq(fill_on & (pos[i][0] < target)) for i in range(K)]
        writing = Signal(range(K + 1))
        m.d.comb += writing.eq(sum(wvalid))
        m.d.comb += self.in_addr.eq(fptr)
        for i in range(K):
            ri, ci, bi, _ = pos[i]
            bank = (ci + (ri << 1))[:lb] if lb else Const(0, 1)
            row = ri[:(rp - 1).bit_length()] if rp > 1 else Const(0, 1)
            word = row * smp.wb + (ci >> lb)
            for b, ports in enumerate(writes):
                wr = ports[i]
                m.d.comb += [wr.en.eq(wvalid[i] & (bank == b)), wr.addr.eq(Cat(bi[:nbb], word) if nbb else word),
                             wr.data.eq(self.in_data[i * L * A:(i + 1) * L * A])]
        fill_last = Signal()
        m.d.comb += fill_last.eq(pos[K][0] >= target)
        with m.If(writing != 0):
            m.d.sync += fptr.eq(fptr + writing)
            for n in range(1, K + 1):  # the position after the last word written
                with m.If(writing == n):
                    m.d.sync += [fr.eq(pos[n][0]), fc.eq(pos[n][1]), fblk.eq(pos[n][2]), fchb.eq(pos[n][3])]

        # offsets of the current pixel, decoded by the variant
        m.d.comb += self.off_addr.eq(y * W + x)
        E = COORD_BITS + F
        dy, dx = Signal(signed(E)), Signal(signed(E))
        bq = offset_bound_code(cfg.offset_bound, F)
        # square shape: the dilation (field 0) clamped to [0, bound], rounded unless fractional, expanded per tap
        d = Signal(signed(E))
        raw = self.off_data[:OFFSET_BITS].as_signed()
        m.d.comb += d.eq(Mux(raw > bq, bq, Mux(raw < 0, 0, raw)))
        if not cfg.square_fractional:
            dr = Signal(signed(E))
            rounded = ((d + ((1 << F) >> 1)) >> F) << F
            m.d.comb += dr.eq(Mux(rounded > ((bq >> F) << F), (bq >> F) << F, rounded))
        else:
            dr = d
        e = Signal(signed(E))
        m.d.comb += e.eq(dr - (1 << F))
        sq_dy, sq_dx = Mux(ti == 0, -e, Mux(ti == 2, e, 0)), Mux(tj == 0, -e, Mux(tj == 2, e, 0))
        if cfg.offset_mode == "free":
            # free offsets (dy, dx of tap t) clamped to [-bound, bound]; the latched ``square`` input selects
            # the square shape instead (its window fits in the free mode's taller line buffer)
            free = []
            for lsb in (0, 1):
                r = self.off_data.word_select(Cat(Const(lsb, 1), t), OFFSET_BITS).as_signed()
                free.append(Mux(r > bq, bq, Mux(r < -bq, -bq, r)))
            m.d.comb += [dy.eq(Mux(square, sq_dy, free[0])), dx.eq(Mux(square, sq_dx, free[1]))]
        else:
            m.d.comb += [dy.eq(sq_dy), dx.eq(sq_dx)]

        # MAC stage: item k's b = ceil(C_out / out_lanes) cycles (depthwise 1) follow its sampling; the sampler
        # holds item k + 1's ``done`` until the MAC's last cycle of item k (a step = max(a, b) cycles)
        mac_valid, mac_first = Signal(), Signal()
        mac_t, mac_blk, mac_chb, mac_blast = Signal(4), Signal(BB), Signal(CB), Signal()
        mac_g, mac_gb = Signal(ab), Signal(CB)  # output group and its first output (full)
        mac_glast = Signal()
        m.d.comb += mac_glast.eq(dw | (mac_gb + Q >= CO))
        hold = Signal()
        m.d.comb += hold.eq(mac_valid & ~mac_glast)
        # the sampler's lanes holding a real channel: all but the last block's lanes beyond C
        smp_real = Signal(CB)
        m.d.comb += [smp_real.eq(Mux(blk_last, C - chb, L)),
                     smp.lane_en.eq(Cat(*(smp_real > lane for lane in range(L))))]
        m.d.comb += [smp.start.eq(item_start), smp.active.eq(self.busy & (cstate == 0)), smp.hold.eq(hold),
                     smp.blk.eq(blk), smp.oy.eq(y - 1 + ti), smp.ox.eq(x - 1 + tj), smp.dy.eq(dy),
                     smp.dx.eq(dx), smp.height.eq(H), smp.width.eq(W)]
        item_done = Signal()
        m.d.comb += item_done.eq(smp.done)
        last_item = Signal()
        m.d.comb += last_item.eq((x == W - 1) & (t == 8) & blk_last)
        with m.If(item_done):
            m.d.sync += [mac_valid.eq(1), mac_first.eq(1), mac_t.eq(t), mac_blk.eq(blk), mac_chb.eq(chb),
                         mac_blast.eq(blk_last), mac_g.eq(0), mac_gb.eq(0)]
        with m.Elif(mac_valid):
            m.d.sync += mac_first.eq(0)
            with m.If(mac_glast):
                m.d.sync += mac_valid.eq(0)
            with m.Else():
                m.d.sync += [mac_g.eq(mac_g + 1), mac_gb.eq(mac_gb + Q)]
        # the sample: from the sampler in the item's first MAC cycle, held for the others
        s_reg = Signal(L * smp.sb)
        samp = Signal(L * smp.sb)
        m.d.comb += samp.eq(Mux(mac_first, smp.sample, s_reg))
        with m.If(mac_first):
            m.d.sync += s_reg.eq(smp.sample)
        # weights: the pixel's MAC cycles read consecutive tiles
        w_ptr = Signal(ADDR_BITS)
        m.d.comb += self.w_addr.eq(Mux(mac_first & (mac_t == 0) & (mac_blk == 0), 0, w_ptr))
        with m.If(mac_valid):
            m.d.sync += w_ptr.eq(self.w_addr + 1)
        acc_idx = Signal(ab)
        m.d.comb += [acc_idx.eq(Mux(dw, mac_blk, mac_g)), self.b_addr.eq(acc_idx)]
        use_bias = Signal()
        m.d.comb += use_bias.eq((mac_t == 0) & (dw | (mac_blk == 0)))
        in_real, out_real = Signal(CB), Signal(CB)
        m.d.comb += [in_real.eq(Mux(mac_blast, C - mac_chb, L)), out_real.eq(Mux(dw | ~mac_glast, Q, CO - mac_gb))]
        in_en = Signal(L)
        out_en = Signal(Q)
        m.d.comb += [in_en.eq(Cat(*(in_real > lane for lane in range(L)))),
                     out_en.eq(Cat(*(out_real > q for q in range(Q))))]

        # accumulators: one word of max(lanes, out_lanes) per channel block (depthwise) or output group (full)
        accm = Memory(shape=AL * ACC, depth=depth_acc, init=[])
        m.submodules.acc = accm
        acc_rd, em_rd = accm.read_port(domain="comb"), accm.read_port(domain="comb")
        acc_wr = accm.write_port(granularity=ACC)
        m.d.comb += [acc_rd.addr.eq(acc_idx), acc_wr.addr.eq(acc_idx)]
        lo, hi = -(1 << (ACC - 1)), (1 << (ACC - 1)) - 1
        saturate = cfg.overflow == "saturate"

        def clamp(v, a, b):
            return Mux(v < a, a, Mux(v > b, b, v))

        prod = {}
        for lane in range(L):
            s = samp[lane * smp.sb:(lane + 1) * smp.sb].as_signed()
            for q in range(Q):
                wf = self.w_data[(q * L + lane) * WB:(q * L + lane + 1) * WB].as_signed()
                if q == lane % Q:  # depthwise: this multiplier is lane's, with field l of the tile
                    wf = Mux(dw, self.w_data[lane * WB:(lane + 1) * WB].as_signed(), wf)
                    en = Mux(dw, in_en[lane], in_en[lane] & out_en[q])
                else:
                    wf = Mux(dw, 0, wf)
                    en = ~dw & in_en[lane] & out_en[q]
                si, wi = Signal(signed(smp.sb), name=f"s_iso{lane}_{q}"), Signal(signed(WB), name=f"w_iso{lane}_{q}")
                if gated:  # operand isolation: an idle multiplier sees constant zeros
                    m.d.comb += [si.eq(Mux(en, s, 0)), wi.eq(Mux(en, wf, 0))]
                else:
                    m.d.comb += [si.eq(s), wi.eq(wf)]
                p = Signal(signed(smp.sb + WB), name=f"p{lane}_{q}")
                m.d.comb += p.eq(si * wi)
                prod[lane, q] = p

        news = []
        for a in range(AL):
            base = Signal(signed(ACC), name=f"base{a}")
            m.d.comb += base.eq(Mux(use_bias, self.b_data[a * ACC:(a + 1) * ACC].as_signed(),
                                    acc_rd.data[a * ACC:(a + 1) * ACC].as_signed()))
            new = Signal(signed(ACC), name=f"new{a}")
            dw_new = full_new = Const(0, signed(ACC))
            if a < L:  # depthwise lane a: one product per addition
                tot = Signal(signed(ACC + 2), name=f"dsum{a}")
                m.d.comb += tot.eq(base + prod[a, a % Q])
                dw_new = clamp(tot, lo, hi) if saturate else tot[:ACC].as_signed()
            if a < Q:  # full output a: the lanes' products in channel order, each addition saturated
                if saturate:
                    # s -> clamp(s + c, lo', hi') composes to the same form: a tree of (c, lo', hi')
                    nodes = [(prod[lane, a], Const(lo, signed(ACC)), Const(hi, signed(ACC))) for lane in range(L)]
                    while len(nodes) > 1:
                        nxt = []
                        for i in range(0, len(nodes) - 1, 2):
                            (c1, l1, h1), (c2, l2, h2) = nodes[i], nodes[i + 1]
                            c12 = Signal(signed(len(c1) + 1), name=f"tc{a}_{len(nodes)}_{i}")
                            l12, h12 = Signal(signed(ACC), name=f"tl{a}_{len(nodes)}_{i}"), \
                                Signal(signed(ACC), name=f"th{a}_{len(nodes)}_{i}")
                            m.d.comb += [c12.eq(c1 + c2), l12.eq(clamp(l1 + c2, l2, h2)),
                                         h12.eq(clamp(h1 + c2, l2, h2))]
                            nxt.append((c12, l12, h12))
                        if len(nodes) % 2:
                            nxt.append(nodes[-1])
                        nodes = nxt
                    c, lo_t, hi_t = nodes[0]
                    ftot = Signal(signed(max(ACC, len(c)) + 1), name=f"fsum{a}")
                    m.d.comb += ftot.eq(base + c)
                    full_new = clamp(ftot, lo_t, hi_t)
                else:
                    ftot = Signal(signed(ACC + L.bit_length() + smp.sb + WB), name=f"fsum{a}")
                    m.d.comb += ftot.eq(base + sum(prod[lane, a] for lane in range(L)))
                    full_new = ftot[:ACC].as_signed()
            m.d.comb += new.eq(Mux(dw, dw_new, full_new))
            news.append(new)
            if clock_gated:  # idle lanes' accumulator registers hold
                lane_on = Mux(dw, in_en[a] if a < L else 0, out_en[a] if a < Q else 0)
            else:
                lane_on = 1
            m.d.comb += acc_wr.en[a].eq(mac_valid & lane_on)
        m.d.comb += acc_wr.data.eq(Cat(*news))

        # outputs: depthwise, block j's word the cycle after its tap-8 MAC; full, the pixel's groups one per
        # cycle after its last MAC cycle (each read before the next pixel's MAC overwrites it)
        em_valid, em_idx, em_base = Signal(), Signal(ab), Signal(CB)
        em_last = Signal()
        m.d.comb += em_last.eq(dw | (em_base + Q >= CO))
        with m.If(mac_valid & (mac_t == 8) & (dw | (mac_blast & mac_glast))):
            m.d.sync += [em_valid.eq(1), em_idx.eq(Mux(dw, mac_blk, 0)), em_base.eq(Mux(dw, mac_chb, 0))]
        with m.Elif(em_valid & ~em_last):
            m.d.sync += [em_idx.eq(em_idx + 1), em_base.eq(em_base + Q)]
        with m.Else():
            m.d.sync += em_valid.eq(0)
        m.d.comb += em_rd.addr.eq(em_idx)
        em_real = Signal(CB)
        m.d.comb += em_real.eq(Mux(dw, Mux(em_base + L >= C, C - em_base, L), Mux(em_last, CO - em_base, Q)))

        # requantizer: relu, round-shift by shift + 2F, clamp to act_bits
        outs = []
        sh = Signal(7)
        m.d.comb += sh.eq(shift + 2 * F)
        alo, ahi = -(1 << (A - 1)), (1 << (A - 1)) - 1
        for lane in range(AL):
            fin = em_rd.data[lane * ACC:(lane + 1) * ACC].as_signed()
            v = Signal(signed(ACC), name=f"rq_in{lane}")
            zero = relu & (fin < 0)
            if gated:  # an idle requantizer lane's input is held at zero
                zero = zero | ~(em_real > lane)
            m.d.comb += v.eq(Mux(zero, 0, fin))
            q = Signal(signed(ACC + 1), name=f"rq_q{lane}")
            hbit = Signal(ACC + 1, name=f"rq_half{lane}")
            m.d.comb += hbit.eq((Const(1, ACC + 2) << sh) >> 1)
            m.d.comb += q.eq((v + hbit.as_signed()) >> sh)
            if cfg.rounding == "half_even":
                rem = Signal(ACC + 1, name=f"rq_rem{lane}")
                m.d.comb += rem.eq(v.as_unsigned() & ((Const(1, ACC + 1) << sh) - 1))
                q2 = Signal(signed(ACC + 1), name=f"rq_q2{lane}")
                m.d.comb += q2.eq(Mux((sh != 0) & (rem == hbit) & q[0], q - 1, q))
                q = q2
            o = Signal(signed(A), name=f"rq_out{lane}")
            m.d.comb += o.eq(Mux(q > ahi, ahi, Mux(q < alo, alo, q)))
            outs.append(o)
        m.d.comb += [self.o_pix.valid.eq(em_valid), self.o_pix.payload.eq(Cat(*outs))]

        # ------------------------------------------------------------------ controller
        start_ok = Signal()
        m.d.comb += start_ok.eq(self.start & ~self.busy)
        row_end = Signal()
        comp_end = Signal()
        m.d.comb += comp_end.eq(((cstate == 1) & mac_glast) | (cstate == 2))
        with m.FSM():
            with m.State("IDLE"):
                with m.If(start_ok):
                    m.d.sync += [H.eq(self.height), W.eq(self.width), shift.eq(self.shift), relu.eq(self.relu),
                                 C.eq(self.chans), CO.eq(Mux(self.depthwise, self.chans, self.chans_out)),
                                 dw.eq(self.depthwise),
                                 square.eq(self.square if cfg.offset_mode == "free" else 1),
                                 y.eq(0), fr.eq(0), fc.eq(0), fblk.eq(0), fchb.eq(0), fptr.eq(0), fill_on.eq(1),
                                 target.eq(Mux(R - half > self.height, self.height, R - half)), cstate.eq(2)]
                    m.d.sync += [getattr(self, c).eq(0) for c in (*COUNTERS, "cnt_stall", "cnt_conflict")]
                    m.next = "FILL0"
            with m.State("FILL0"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += self.cnt_stall.eq(self.cnt_stall + 1)
                with m.If(fill_last):
                    self._enter_row(m, y, x, t, ti, tj, blk, chb, item_start, cstate, target, H, R, half)
                    m.next = "ROW"
            with m.State("ROW"):
                m.d.comb += [self.busy.eq(1), row_end.eq(comp_end & fill_last)]
                with m.If(cstate == 2):
                    m.d.sync += self.cnt_stall.eq(self.cnt_stall + 1)
                with m.If((cstate == 1) & mac_glast):
                    m.d.sync += cstate.eq(2)
                m.d.sync += item_start.eq(0)
                with m.If((cstate == 0) & item_done):
                    with m.If(last_item):
                        m.d.sync += cstate.eq(1)
                    with m.Else():
                        m.d.sync += item_start.eq(1)
                        with m.If(~blk_last):
                            m.d.sync += [blk.eq(blk + 1), chb.eq(chb + L)]
                        with m.Else():
                            m.d.sync += [blk.eq(0), chb.eq(0)]
                            with m.If(t == 8):
                                m.d.sync += [t.eq(0), ti.eq(0), tj.eq(0), x.eq(x + 1)]
                            with m.Else():
                                m.d.sync += t.eq(t + 1)
                                with m.If(tj == 2):
                                    m.d.sync += [tj.eq(0), ti.eq(ti + 1)]
                                with m.Else():
                                    m.d.sync += tj.eq(tj + 1)
                with m.If(row_end):
                    with m.If(y == H - 1):
                        m.d.sync += fill_on.eq(0)
                        m.next = "DRAIN"
                    with m.Else():
                        m.d.sync += y.eq(y + 1)
                        self._enter_row(m, y + 1, x, t, ti, tj, blk, chb, item_start, cstate, target, H, R, half)
            with m.State("DRAIN"):  # the last pixel's outputs (1 beat depthwise, b full)
                m.d.comb += self.busy.eq(1)
                with m.If(~em_valid | em_last):
                    m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += [self.busy.eq(1), self.done.eq(1)]
                m.next = "IDLE"

        # ------------------------------------------------------------------ activity counters
        n_mac = Signal(2 * CB)
        m.d.comb += n_mac.eq(Mux(dw, in_real, in_real * out_real))
        with m.If(~start_ok):
            m.d.sync += [
                self.cnt_lb_read.eq(self.cnt_lb_read + Mux(smp.active, smp.reads, 0)),
                self.cnt_lb_write.eq(self.cnt_lb_write + writing),
                self.cnt_sample.eq(self.cnt_sample + item_done),
                self.cnt_interp.eq(self.cnt_interp + Mux(item_done, smp_real, 0)),
                self.cnt_interp_idle.eq(self.cnt_interp_idle + Mux(item_done, L - smp_real, 0)),
                self.cnt_mac.eq(self.cnt_mac + Mux(mac_valid, n_mac, 0)),
                self.cnt_mac_idle.eq(self.cnt_mac_idle + Mux(mac_valid, Mux(dw, L, L * Q) - n_mac, 0)),
                self.cnt_requant.eq(self.cnt_requant + Mux(em_valid, em_real if gated else Mux(dw, L, Q), 0)),
                self.cnt_off_read.eq(self.cnt_off_read + Mux(item_start & (t == 0) & (blk == 0),
                                                             Mux(square, 1, self.n_off), 0)),
                self.cnt_conflict.eq(self.cnt_conflict + smp.conflict),
            ]
        return m

    @staticmethod
    def _enter_row(m, y_next, x, t, ti, tj, blk, chb, item_start, cstate, target, H, R, half):
        """Start output row ``y_next``: first item, and the fill target of the row after it."""
        m.d.sync += [x.eq(0), t.eq(0), ti.eq(0), tj.eq(0), blk.eq(0), chb.eq(0), item_start.eq(1), cstate.eq(0)]
        nxt = y_next + 1 + R - half  # hi of the window of row y_next + 1 (top = y - half)
        m.d.sync += target.eq(Mux(y_next + 1 >= H, target, Mux(nxt > H, H, nxt)))


def generate_verilog(cfg) -> tuple[str, dict]:
    """Verilog of the unit top ``cfg.top_name`` and its metadata (config, ports, derived geometry).

    ``cfg`` must be inside the RTL's scope: the family's ``rtl_check`` (:func:`hwsim.deform_unit.check_rtl`),
    which ``hwsim generate``, ``hwsim synth`` and the co-simulation runner call first."""
    top = DeformUnitTop(cfg)
    return generate(cfg, top, LINT_WAIVERS, signature=None,
                    derived={"rows": cfg.rows_for(1), "rows_phys": rows_phys(cfg), "n_off": top.n_off,
                             "counters": {k: list(v) for k, v in COUNTERS.items()}})
