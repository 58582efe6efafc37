"""Bilinear sampler of the deformable unit: address generation, four-neighbour fetch from a banked line
buffer with conflict scheduling, and fixed-point interpolation of ``lanes`` channels.

Timing (what :mod:`hwsim.deform_unit` predicts): an item (one tap of one output pixel and one channel block
``blk`` of ``lanes`` channels) starts with ``start`` high; its positions must stay stable until ``done``. Each
cycle every pending in-image neighbour whose bank no earlier pending neighbour uses is read (one read per
bank per cycle), so an item takes ``max(1, most neighbours in one bank)`` cycles and ``done`` is high in its
last cycle; while ``hold`` is high (the MAC stage still busy with the previous item, full layers) ``done``
waits, with no reads and the sample kept. ``conflict`` marks the cycles after an item's first that read
(bank conflicts). The banks' read data
come back one cycle after the read; the exact sample ``S = sum w_n x_n`` (weights summing to ``2**(2F)``)
is on ``sample`` in the cycle after ``done`` (``sample_valid``), which is also the next item's first cycle.

Idle lanes (``cfg.gating``, docs/idle_lanes.md): ``lane_en`` marks the item's lanes that hold one of the
layer's channels (the last channel block's lanes beyond ``C`` are idle). ``none``: every lane interpolates
(the padded channels' zeros). ``operand``: an idle lane's neighbour data (one input of each of its four
multipliers; the weights are shared by the lanes) are ANDed to zero, with the enable of the item whose reads
came back (registered with the weights). ``clock``: ``operand``, and an idle lane's partial-sum register
does not load (a clock gate in synthesis); an idle lane's ``sample`` is then not defined (the MAC stage
isolates it) while a real lane's is exact under every choice.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BilinearSampler", "COORD_BITS", "DIM_BITS"]

#: Width of the layer-size inputs (height, width) and of the signed pixel coordinates.
DIM_BITS = 12
COORD_BITS = 15


class BilinearSampler(wiring.Component):
    """Bilinear sampler of ``cfg.lanes`` channels over ``cfg.banks`` line-buffer banks.

    Ports
    -----
    start : In, 1             first cycle of an item
    active : In, 1            an item is being sampled (``done`` is only meaningful with it)
    hold : In, 1              delay ``done`` (the item's reads are over; its sample is kept)
    lane_en : In, lanes       lanes of the item that hold a real channel (idle lanes gated with ``gating``)
    blk : In, bits(NB)        channel block of the item (word ``blk`` of the pixel in the line buffer)
    oy, ox : In, signed 15    nominal integer position of the tap (y - pad + i, x - pad + j), pixels
    dy, dx : In, signed 15+F  the tap's offset in Q format (F = frac_bits), after the variant's clamp
    height, width : In, 12    image size, pixels (neighbours outside read as zero, without a read)
    rd_en : Out, banks        read enable of each bank (one read per bank per cycle)
    rd_addr : Out, banks * AW word address in each bank: ((row mod Rp) * ceil(max_width / banks) + col / banks)
                              * NBP + blk (NBP: the power of two >= the most channel blocks, NB)
    rd_data : In, banks * lanes * act_bits   each bank's read data, one cycle after ``rd_en``
    done : Out, 1             last cycle of the item
    reads : Out, 3            neighbours read this cycle
    conflict : Out, 1         a cycle after the item's first with reads (a bank-conflict cycle)
    sample : Out, lanes * (act_bits + 2F + 1)  signed samples, lane l at [l SB, (l + 1) SB), valid with
    sample_valid : Out, 1     one cycle after ``done``
    """

    def __init__(self, cfg, rows_phys: int):
        self.cfg = cfg
        self.F = cfg.frac_bits
        self.B = cfg.banks
        self.lb = (cfg.banks - 1).bit_length()
        self.rp_bits = (rows_phys - 1).bit_length()
        self.wb = -(-cfg.max_width // cfg.banks)
        self.nb = -(-cfg.max_channels // cfg.lanes)  # channel blocks of the widest layer
        self.nbb = (self.nb - 1).bit_length()  # word of block blk at (pixel word << nbb) | blk
        self.depth = rows_phys * self.wb << self.nbb
        self.aw = max(1, (self.depth - 1).bit_length())
        self.lw = cfg.lanes * cfg.act_bits
        self.sb = cfg.act_bits + 2 * cfg.frac_bits + 1
        super().__init__({
            "start": In(1), "active": In(1), "hold": In(1), "lane_en": In(cfg.lanes), "blk": In(max(1, self.nbb)),
            "oy": In(signed(COORD_BITS)), "ox": In(signed(COORD_BITS)),
            "dy": In(signed(COORD_BITS + self.F)), "dx": In(signed(COORD_BITS + self.F)),
            "height": In(DIM_BITS), "width": In(DIM_BITS),
            "rd_en": Out(self.B), "rd_addr": Out(self.B * self.aw), "rd_data": In(self.B * self.lw),
            "done": Out(1), "reads": Out(3), "conflict": Out(1),
            "sample": Out(cfg.lanes * self.sb), "sample_valid": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, F, B = self.cfg, self.F, self.B
        one = 1 << F
        pw = COORD_BITS + F + 1
        py = Signal(signed(pw))
        px = Signal(signed(pw))
        m.d.comb += [py.eq((self.oy << F) + self.dy), px.eq((self.ox << F) + self.dx)]
        y0 = Signal(signed(pw - F))
        x0 = Signal(signed(pw - F))
        m.d.comb += [y0.eq(py >> F), x0.eq(px >> F)]
        fy = Signal(unsigned(F + 1))
        fx = Signal(unsigned(F + 1))
        if F:
            m.d.comb += [fy.eq(py[:F]), fx.eq(px[:F])]
        wts = [(one - fy) * (one - fx), (one - fy) * fx, fy * (one - fx), fy * fx]

        inside, bank, addr, wsig = [], [], [], []
        for n, (ddy, ddx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            yy = Signal(signed(pw - F + 1), name=f"yy{n}")
            xx = Signal(signed(pw - F + 1), name=f"xx{n}")
            m.d.comb += [yy.eq(y0 + ddy), xx.eq(x0 + ddx)]
            ins = Signal(name=f"in{n}")
            m.d.comb += ins.eq((yy >= 0) & (yy < self.height) & (xx >= 0) & (xx < self.width))
            bk = Signal(max(1, self.lb), name=f"bank{n}")
            if self.lb:
                m.d.comb += bk.eq((xx + (yy << 1))[:self.lb])
            ad = Signal(self.aw, name=f"addr{n}")
            row = yy[:self.rp_bits] if self.rp_bits else Const(0, 1)
            word = row * self.wb + (xx.as_unsigned()[self.lb:COORD_BITS])
            m.d.comb += ad.eq(Cat(self.blk[:self.nbb], word) if self.nbb else word)
            w = Signal(2 * F + 1, name=f"w{n}")
            m.d.comb += w.eq(wts[n])
            inside.append(ins)
            bank.append(bk)
            addr.append(ad)
            wsig.append(w)

        pending = Signal(4)
        now = Signal(4)
        with m.If(self.start):
            m.d.comb += now.eq(Cat(*inside))
        with m.Else():
            m.d.comb += now.eq(pending)
        grant = []
        for n in range(4):
            blocked = Const(0, 1)
            for j in range(n):
                blocked = blocked | (now[j] & (bank[j] == bank[n]))
            g = Signal(name=f"grant{n}")
            m.d.comb += g.eq(now[n] & ~blocked)
            grant.append(g)
        left = Signal(4)
        m.d.comb += left.eq(now & ~Cat(*grant))
        m.d.sync += pending.eq(Mux(self.active, left, 0))
        m.d.comb += [self.done.eq(self.active & (left == 0) & ~self.hold), self.reads.eq(sum(grant)),
                     self.conflict.eq(self.active & ~self.start & (now != 0))]
        for b in range(B):
            en = Const(0, 1)
            for n in range(4):
                en = en | (grant[n] & (bank[n] == b))
            m.d.comb += self.rd_en[b].eq(en)
            sel = Signal(self.aw, name=f"rdaddr{b}")
            for n in reversed(range(4)):
                with m.If(grant[n] & (bank[n] == b)):
                    m.d.comb += sel.eq(addr[n])
            m.d.comb += self.rd_addr[b * self.aw:(b + 1) * self.aw].eq(sel)

        # data of the reads granted last cycle: weight (0 if not granted) and the bank it went to
        gw = [Signal(signed(2 * F + 2), name=f"gw{n}") for n in range(4)]
        gb = [Signal(max(1, self.lb), name=f"gb{n}") for n in range(4)]
        for n in range(4):
            m.d.sync += [gw[n].eq(Mux(grant[n], wsig[n], 0)), gb[n].eq(bank[n])]
        valid = Signal()
        m.d.sync += valid.eq(self.done)
        m.d.comb += self.sample_valid.eq(valid)
        A = cfg.act_bits
        gated, clock_gated = cfg.gating != "none", cfg.gating == "clock"
        en_q = Signal(cfg.lanes)  # lane enables of the item whose read data arrive this cycle
        m.d.sync += en_q.eq(self.lane_en)
        for lane in range(cfg.lanes):
            part = Signal(signed(self.sb), name=f"part{lane}")
            contrib = Const(0, signed(self.sb))
            for n in range(4):
                data = Signal(signed(A), name=f"d{n}_{lane}")
                for b in range(B):
                    with m.If(gb[n] == b):
                        m.d.comb += data.eq(self.rd_data[b * self.lw + lane * A: b * self.lw + (lane + 1) * A])
                if gated:  # operand isolation: an idle lane's multipliers see a constant zero
                    iso = Signal(signed(A), name=f"d_iso{n}_{lane}")
                    m.d.comb += iso.eq(Mux(en_q[lane], data, 0))
                    data = iso
                contrib = contrib + gw[n] * data
            full = Signal(signed(self.sb), name=f"s{lane}")
            m.d.comb += full.eq(part + contrib)
            m.d.comb += self.sample[lane * self.sb:(lane + 1) * self.sb].eq(full)
            # the partial sum loads only for an enabled lane with clock gating (the item's own enable: in its
            # first cycle it clears for the new item, later it adds the item's reads)
            with m.If(self.lane_en[lane] if clock_gated else 1):
                with m.If(self.start):
                    m.d.sync += part.eq(0)
                with m.Else():
                    m.d.sync += part.eq(full)
        return m

