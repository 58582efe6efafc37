"""Top level of the MAC array: double-buffered SRAMs, DRAM-side loader, fold controller, requantizer.

The top takes a whole GEMM ``out[M, N] = requant(A[M, K] @ W[K, N])`` (a conv arrives lowered by im2col on
the DRAM side) and folds it onto the array itself. Two engines run concurrently:

* the **loader** fetches each fold's weight rows (``i_weights``) and activation vectors (``i_acts``) into the
  free half of the double-buffered weight and input SRAMs, strictly weights first, then activations;
* the **compute engine** waits until the fold's half is full, runs it through the array, frees the half,
  and after the last reduction fold of an output tile drains the tile through the requantizer to
  ``o_out``.

Fold order is ``for m0 (step m_tile): for n0 (step cols): for k0 (step k_step)``, with ``m_tile =
cfg.m_tile, k_step = rows`` in WS and ``m_tile = rows, k_step = cfg.k_chunk`` in OS. IS runs the WS machinery on
the transposed GEMM ``out.T[N, M] = W.T[N, K] @ A.T[K, M]``: activations are stationary, weights stream, and
fold order is ``for n0 (step cfg.is_m_tile): for m0 (step cols): for k0 (step rows)``. Beat layouts (lane i
is bits ``[i*w, (i+1)*w)``):

* WS weight beat j of fold (k0, n0): ``W[k0 + j, n0 + c]`` in lane c (``kt = min(rows, K - k0)`` beats);
  activation beat i: ``A[m0 + i, k0 + r]`` in lane r (``mt = min(m_tile, M - m0)`` beats).
* OS weight beat j: ``W[k0 + j, n0 + c]`` in lane c; activation beat j: ``A[m0 + r, k0 + j]`` in lane r
  (``kt = min(k_chunk, K - k0)`` beats each).
* IS activation beat j of fold (k0, m0), first: ``A[m0 + c, k0 + j]`` in lane c (``kt`` beats); weight beat i,
  second: ``W[k0 + r, n0 + i]`` in lane r (``min(is_m_tile, N - n0)`` beats).
* Output beat i of tile (m0, n0): ``out[m0 + i, n0 + c]`` in lane c; IS: ``out[m0 + c, n0 + i]`` in lane c
  (one output channel per beat). Lanes beyond N (IS: beyond M; and beyond K, M in the inputs) are padding:
  inputs there are don't-care, outputs there are undefined.
* Bias: read combinationally through ``bias_addr``/``bias`` from a parameter memory of one signed
  ``acc_bits`` value per output channel (see :class:`MacArray`).

Float32 requantizer (``cfg.requantizer = "f32"``, quantized ONNX models with float scales and zero points):
the top also has ONNX Runtime's float32 requantizer lanes
(:class:`~hwsim.rtl.f32_requantizer.PipelinedF32Requantizer`) beside the power-of-two ones, and a layer
chooses one with the layer input ``requant_f32`` (latched on ``start`` like ``shift`` and ``relu``). The
per-output-channel float32 scale comes the way the bias comes: a second read-only parameter memory beside
the top answers the same ``bias_addr`` on ``scale`` (lanes as the bias's), combinationally; the output zero
point is a layer input (``zero_point``, latched on ``start``: ONNX's output zero point is per tensor). The
zero-point column constant ``-zx * sum_k w[k, n]`` rides in the bias (the DRAM side adds it, as the model
does, :func:`hwsim.models.mac_array.zero_point_correction`), so the array still multiplies plain integers
and the f32 lane's correction adder is the bias adder. Both lanes have the same two register stages, so a
layer's cycles are the same on either and on a ``shift`` array (``hwsim.mac_array`` predicts one timing).
With ``requantizer = "shift"`` none of this is generated (the Verilog is that of the shift-only top).

Weights with zero points (``cfg.weight_zero_points``, f32 tops): the row term ``-z_w[n] * sum_k a[m, k]``
cannot ride in the bias (it depends on the output row), so the top has a **row-sum unit**. A layer input
``zp_rows`` (latched on ``start``) turns it on; the weight zero points come from a third read-only parameter
memory beside the top, answering ``bias_addr`` on ``row_zp`` like the bias. Each output row's activation sum
is accumulated over the K folds exactly as the partial sums are, from the activations already on their way
to the array (real lanes only; the first fold clears it):

* WS: while the n-tile ``n0 = 0`` of an m-tile streams, row i's activation beat (its ``kt`` real lanes) is
  summed and added into ``rsbuf[i]``, a memory of ``m_tile`` row sums beside the output buffer, read with
  the beat and written two cycles later; every n-tile's drain reads ``rsbuf[i]`` beside the output buffer's
  row i. ``m * k`` additions.
* OS: ``rows`` row-sum registers; while the n-tile ``n0 = 0`` streams, lane r of each activation beat is
  added into register r; the drain selects the register of the row it drains. ``m * k`` additions.
* IS: ``cols`` row-sum registers (one per lane: lane c is output row ``m0 + c``); WLOAD adds each stationary
  activation beat as it loads it into the PEs, so every output-channel tile (``is_m_tile`` channels, which
  reloads the activations) sums them again: ``m * k * ceil(n / is_m_tile)`` additions.

Each float32 lane then subtracts ``row_zp * rowsum`` after the bias, with the accumulator's saturate/wrap
rule (:func:`hwsim.rtl.f32_requantizer.subtract_row_term`), in the same combinational stage: no extra
cycle, since the sums are complete before the tile drains. An idle lane (beyond the tile's real
columns) and a layer without ``zp_rows`` see a zero weight zero point. Without ``weight_zero_points`` none of
this is generated.

N:M sparse WS (``cfg.sparsity = "N:M"``): a fold covers ``k_step = rows * M / N`` reduction steps and its
weight beats are its ``kt = N * (L // M) + min(N, L % M)`` kept-weight rows (row ``g*N + s`` = slot s of
group g; lane c: the code in the low ``weight_bits``, its index within the group above it; see
``hwsim.mac_array.nm_compress``); activation beat i carries ``A[m0 + i, k0 + j]`` in lane j for all
``k_step`` steps, and PE row r selects from its group's M lanes by the stored index.

Dense layers on an N:M array need no mode bit: the DRAM side lays them out as the N:M layer with M - N zero
steps inserted after every N real ones (``hwsim.mac_array.nm_dense_layout``) and starts the top with
``dim_k = M * (K // N) + K % N``; its K real steps are exactly the kept-weight rows, so the array takes the
dense number of reduction steps (indices point at the real steps, activation beats carry zeros in the
inserted lanes).

Zero-tile skipping (``cfg.skip_zero_tiles``, WS): the top gets two more port pairs, ``ld_blk``/``ld_blk_zero``
and ``cp_blk``/``cp_blk_zero`` (see :class:`MacArray`), through which the loader and the compute engine read
the layer's block bitmap (one bit per weight block, address ``n-tile * k-folds + k-fold``, restarting at
every m-tile). A zero block is passed over in one WAIT cycle by either engine (no beats, no half, no
compute); the compute engine's ``started`` flag makes the first executed fold of a tile start from zero
partial sums, a tile drains after its last k-fold whether that fold ran or not, and a tile with no executed
fold drains zero accumulators (no output-buffer read).

Cycle timing (exactly what ``hwsim.mac_array`` predicts) is documented there.
"""

import json
from pathlib import Path
from types import SimpleNamespace

from amaranth.hdl import Array, Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from hwsim.rtl.f32_requantizer import F32_STAGES, PipelinedF32Requantizer
from hwsim.rtl.mac_pe import MULT18X18D_SIM_MODEL, uses_dsp_registers
from hwsim.rtl.requantizer import REQUANT_STAGES, PipelinedRequantizer
from hwsim.rtl.systolic_array import SystolicArray
from hwsim.rtl.verilog import generate

from hwsim.config import MAC_DRAIN_STAGES, MAC_STREAM_STAGES, MacArrayConfig

__all__ = ["DRAIN_STAGES", "STREAM_STAGES", "LINT_WAIVERS", "MacArray", "generate_verilog", "write_verilog"]

#: Register stages between an accumulator row and the output register in DRAIN: the row's register (the
#: output buffer's read data, OS: the selected accumulator row) and the requantizer's two stages. Each adds
#: one cycle to every tile's drain (``hwsim.mac_array`` counts them); they cut the path from the output
#: buffer's block RAM through bias, ReLU, rounding shift and clamp into pieces an FPGA clocks at >= 100 MHz.
DRAIN_STAGES = 1 + REQUANT_STAGES
#: Register stages between a streamed buffer read and the array (the operand, its valid token and the
#: partial sums entering the columns): one more cycle per fold in STREAM (WS/IS) or FLUSH (OS).
STREAM_STAGES = 1
#: Register stages a PE adds (around its multiplier): more cycles per fold in STREAM / FLUSH.
PE_STAGES = 2
assert STREAM_STAGES + PE_STAGES == MAC_STREAM_STAGES and DRAIN_STAGES == MAC_DRAIN_STAGES  # the cycle model's
assert F32_STAGES == REQUANT_STAGES  # the float32 lanes take the drain's cycles of the shift lanes

#: Verilator lint waivers prepended to every generated file. Amaranth sizes arithmetic by its own rules
#: and emits operands of unequal width (e.g. a 16-bit product added into a 33-bit sum, or a wide
#: intermediate assigned to a narrower register after explicit slicing), and its FSMs decode only the
#: state codes they use (CASEINCOMPLETE on ``casez (..._state)``; unused codes are unreachable). Exactly
#: these three warnings are waived, nothing else.
LINT_WAIVERS = """// Generated by hwsim. Verilator waivers: Amaranth emits intentional mixed-width arithmetic and
// FSM decoders that cover only the reachable state codes.
/* verilator lint_off WIDTHEXPAND */
/* verilator lint_off WIDTHTRUNC */
/* verilator lint_off CASEINCOMPLETE */
"""


class _Folds:
    """Fold counters (m0, n0, k0) stepping through one layer in the documented order."""

    def __init__(self, m: Module, name: str, cfg: MacArrayConfig, dims, m_step: int, k_step: int):
        w = cfg.dim_bits + 1
        M, K, N = dims
        self.m0 = Signal(w, name=f"{name}_m0")
        self.n0 = Signal(w, name=f"{name}_n0")
        self.k0 = Signal(w, name=f"{name}_k0")
        self.kt = Signal(w, name=f"{name}_kt")
        self.mt = Signal(w, name=f"{name}_mt")
        self.last_k = Signal(name=f"{name}_last_k")
        self.last = Signal(name=f"{name}_last")
        k_rem, m_rem = K - self.k0, M - self.m0
        last_n = self.n0 + cfg.cols >= N
        last_m = self.m0 + m_step >= M
        steps = Mux(k_rem > k_step, k_step, k_rem)
        self.kl = self.kt  # the fold's reduction steps (N:M: before compression; registered like kt)
        if cfg.sparse and cfg.gating != "none":
            self.kl = Signal(w, name=f"{name}_kl")
            m.d.sync += self.kl.eq(steps)
        if cfg.sparse:  # kept-weight rows of the fold's steps: N per full group of M, min(N, L) for a tail of L
            sn, sm = cfg.sparse_nm
            lg = sm.bit_length() - 1
            tail = Signal(range(sm), name=f"{name}_tail")
            m.d.comb += tail.eq(steps[:lg])
            steps = (steps >> lg) * sn + Mux(tail > sn, sn, tail)
        # kt and mt are registered (one cycle after the counters: every state that reads them comes at least a
        # cycle after the fold's counters were set), so their subtract-and-compare is off the engines' paths.
        self.mt_next = Mux(m_rem > m_step, m_step, m_rem)  # what mt becomes (for registers derived from it)
        self.m_rem, self.m_full = m_rem, m_rem > m_step
        m.d.sync += [self.kt.eq(steps), self.mt.eq(self.mt_next)]
        # The reduction steps and output columns left from the fold (kt = min(k_rem, k_step) without N:M, nt =
        # min(n_rem, cols)): a step r < k_step is real when k_rem > r, a column c < cols when n_rem > c.
        self.k_rem = k_rem
        # The tile's real columns (output channels; IS: output rows), for the idle-lane enables.
        self.nt = Signal(range(cfg.cols + 1), name=f"{name}_nt")
        n_rem = N - self.n0
        self.n_rem = n_rem
        m.d.sync += self.nt.eq(Mux(n_rem > cfg.cols, cfg.cols, n_rem))
        # So are the last-fold flags, except with zero-tile skipping, whose WAIT state advances the counters
        # and reads the flags in back-to-back cycles.
        last_n_q = Signal(name=f"{name}_last_n")
        flags = m.d.comb if cfg.skip_zero_tiles else m.d.sync
        flags += [
            self.last_k.eq(self.k0 + k_step >= K),
            last_n_q.eq(last_n),
            self.last.eq((self.k0 + k_step >= K) & last_n & last_m),
        ]
        self._last_n, self._m_step, self._k_step, self._cols = last_n_q, m_step, k_step, cfg.cols
        # Zero-tile skipping: the fold's weight block (n-tile * k-folds + k-fold), restarting every m-tile.
        self.blk = Signal(2 * (cfg.dim_bits + 1), name=f"{name}_blk") if cfg.skip_zero_tiles else None

    def reset(self):
        return [self.m0.eq(0), self.n0.eq(0), self.k0.eq(0)] + ([self.blk.eq(0)] if self.blk is not None else [])

    def advance(self, m: Module):
        if self.blk is not None:
            m.d.sync += self.blk.eq(Mux(self.last_k & self._last_n, 0, self.blk + 1))
        with m.If(self.last_k):
            m.d.sync += self.k0.eq(0)
            with m.If(self._last_n):
                m.d.sync += [self.n0.eq(0), self.m0.eq(self.m0 + self._m_step)]
            with m.Else():
                m.d.sync += self.n0.eq(self.n0 + self._cols)
        with m.Else():
            m.d.sync += self.k0.eq(self.k0 + self._k_step)


def _word_groups(bits: int, word_bits: int) -> list[tuple[int, int]]:
    """Bit ranges ``[lo, hi)`` of the SRAM words of a ``bits``-wide beat (the last may be narrower)."""
    return [(lo, min(bits, lo + word_bits)) for lo in range(0, bits, word_bits)]


def _buffer_beats(cfg: MacArrayConfig) -> tuple:
    """``(name, lanes, lane_bits)`` of the input (``in``) and weight (``wt``) buffers' beats."""
    wl = cfg.weight_bits + cfg.index_bits
    if cfg.dataflow == "is":
        return ("in", cfg.cols, cfg.act_bits), ("wt", cfg.rows, wl)
    return ("in", cfg.ws_k_step if cfg.dataflow == "ws" else cfg.rows, cfg.act_bits), ("wt", cfg.cols, wl)


class _LaneBuffer:
    """A double-buffered input or weight buffer of one beat per row, written by ``stream``\'s payload.

    Without idle-lane gating one memory ``name`` of whole beats. With it one memory per SRAM word of the
    beat (``name`` alone when the beat is one word, else ``name0 .. name{G-1}``, ``sram_word_bits`` wide,
    the last the beat's remainder), each with its own write and read enable: an access enables the word
    memories holding a bit of its real lanes (``wr_lanes`` / ``rd_lanes``, lanes 0 .. n-1; word 0 always
    holds lane 0, a real lane of every access). A word is the SRAM's unit of access (the cost model prices
    one word per access of any of its lanes), so the beat is split no finer. Split, ``wr``/``rd`` have
    ``addr``, ``en`` and ``data`` like a memory port's; ``wr_words``/``rd_words`` are the word memories'
    enables. One memory (``split`` false): ``mem``, whose ports the caller makes and hands to :meth:`whole`.
    """

    def __init__(self, m: Module, name: str, stream_in, depth: int, gated: bool, word_bits: int):
        width = len(stream_in.payload.as_value())
        lanes = len(stream_in.payload)
        lane_bits = width // lanes
        groups = _word_groups(width, word_bits) if gated else [(0, width)]
        self.wr_lanes = Signal(range(lanes + 1), name=f"{name}_wr_lanes")
        self.rd_lanes = Signal(range(lanes + 1), name=f"{name}_rd_lanes")
        self.split = len(groups) > 1
        if not self.split:  # the caller takes the ports (:meth:`whole`)
            m.submodules[name] = self.mem = Memory(shape=unsigned(width), depth=depth, init=[])
            return
        self.wr = SimpleNamespace(addr=Signal(range(depth), name=f"{name}_waddr"), en=Signal(name=f"{name}_wen"),
                                  data=Signal(width, name=f"{name}_wdata"))
        self.rd = SimpleNamespace(addr=Signal(range(depth), name=f"{name}_raddr"), en=Signal(name=f"{name}_ren"),
                                  data=Signal(width, name=f"{name}_rdata"))
        self.wr_words = Signal(len(groups), name=f"{name}_wwords")
        self.rd_words = Signal(len(groups), name=f"{name}_rwords")
        for g, (lo, hi) in enumerate(groups):
            m.submodules[f"{name}{g}"] = mem = Memory(shape=unsigned(hi - lo), depth=depth, init=[])
            wp, rp = mem.write_port(), mem.read_port()
            first = lo // lane_bits  # the first lane with a bit in this word: the word is used when it is real
            m.d.comb += [self.wr_words[g].eq(self.wr.en & (self.wr_lanes > first) if g else self.wr.en),
                         self.rd_words[g].eq(self.rd.en & (self.rd_lanes > first) if g else self.rd.en),
                         wp.addr.eq(self.wr.addr), wp.data.eq(self.wr.data[lo:hi]), wp.en.eq(self.wr_words[g]),
                         rp.addr.eq(self.rd.addr), rp.en.eq(self.rd_words[g]), self.rd.data[lo:hi].eq(rp.data)]


    def whole(self, wr, rd):
        """The one memory's ports (a beat of one word, or no gating)."""
        self.wr, self.rd, self.wr_words, self.rd_words = wr, rd, wr.en, rd.en


class MacArray(wiring.Component):
    """The MAC array accelerator top (WS, IS or OS), built from one :class:`MacArrayConfig`.

    Ports
    -----
    start : In, 1          pulse for one cycle while idle; latches ``dim_*``, ``shift``, ``relu``
    busy : Out, 1          high from the cycle after ``start`` until the last output beat is accepted
    done : Out, 1          one-cycle pulse in the cycle after the last busy cycle
    dim_m, dim_k, dim_n : In, dim_bits   GEMM shape, each >= 1
    shift : In, range(acc_bits); relu : In, 1     requantization of this layer
    i_weights : In stream, payload cols x weight_bits (IS: rows x weight_bits)   weight rows, per fold
    i_acts : In stream, payload rows x act_bits (IS: cols x act_bits)            activation vectors, per fold
    o_out : Out stream, payload cols x act_bits          requantized output rows, per tile
    bias_addr : Out, dim_bits      output channel of lane 0 of the beat being requantized (see below)
    bias : In, cols x signed(acc_bits)   ``bias[bias_addr + c]`` in lane c, combinationally (a read-only
                                   parameter memory beside the top, not DRAM traffic; lanes beyond N are
                                   don't-care). Added to the accumulator with its saturate/wrap step in
                                   the requantizer stage, at no extra cycle. WS/OS: ``bias_addr = n0`` of
                                   the tile and every lane is used; IS: ``bias_addr`` is the channel of the
                                   output row being drained and lane 0 is used for every lane. A layer
                                   without bias reads zeros.

    With ``cfg.requantizer == "f32"`` (see the module docstring):

    requant_f32 : In, 1            this layer uses the float32 lanes (latched on ``start``)
    zero_point : In, signed(act_bits)   the layer's output zero point (latched on ``start``; f32 layers)
    scale : In, cols x 32          ``scale[bias_addr + c]`` (IEEE-754 float32 bits, positive normal) in lane c,
                                   combinationally, read like ``bias`` (IS: lane 0 for every lane); shift
                                   layers: don't-care

    With ``cfg.weight_zero_points`` (see the module docstring):

    zp_rows : In, 1                this layer's weights have zero points: run the row-sum unit (latched on
                                   ``start``; f32 layers)
    row_zp : In, cols x signed(weight_bits)   ``row_zp[bias_addr + c]``, the weight zero point of output
                                   channel ``bias_addr + c`` (signed codes: uint8 shifted by -128),
                                   combinationally, read like ``bias`` (IS: lane 0 for every lane)

    With ``cfg.skip_zero_tiles`` (WS) the top also reads the layer's zero-block bitmap combinationally:

    ld_blk, cp_blk : Out, 2*(dim_bits+1)   block (n-tile * k-folds + k-fold, per m-tile) of the loader's /
                                   compute engine's current fold
    ld_blk_zero, cp_blk_zero : In, 1       that block's weights are all zero (the fold is skipped)

    With ``debug=True`` the top also has simulation-only activity outputs (they are not part of the
    synthesized design; ``generate_verilog(cfg)`` leaves them out):

    dbg_mac, dbg_hop, dbg_wload : Out, rows*cols   per-PE real MAC, pipeline-register update, stationary load
    dbg_idle, dbg_gate : Out, rows*cols   per-PE idle slot (a vector passes without a real MAC), and under
                          ``gating="clock"`` a vector passing a PE whose registers are gated
    dbg_lanes : Out, range(cols + 1)   output lanes written and requantized: the tile's real columns (IS: its
                          real output rows) with gating, every lane without
    dbg_sram : Out, 6     this cycle's SRAM accesses (one access = one beat-wide word): bit 0 input
                          SRAM read, 1 input write, 2 weight read, 3 weight write, 4 output read,
                          5 output write (IS: the input SRAM holds the stationary activations and the
                          weight SRAM the streamed weights)
    dbg_in_rd_lanes, dbg_in_wr_lanes, dbg_wt_rd_lanes, dbg_wt_wr_lanes : Out   (gating ``operand``/``clock``)
                          real lanes of this cycle's input / weight buffer read / write (0 without one)
    dbg_in_rd_words, dbg_in_wr_words, dbg_wt_rd_words, dbg_wt_wr_words : Out, one bit per word memory of the
                          buffer's beat (gated): the word memories that access enables
    dbg_stall : Out, 1    the compute engine waits for its buffer half to fill
    dbg_f32 : Out, 1      (``requantizer == "f32"``) the layer runs on the float32 lanes (the latched
                          ``requant_f32``: output beats count as float32 requantizations)
    dbg_blk : Out, 2      (``skip_zero_tiles``) bitmap reads this cycle: bit 0 the loader's, bit 1 the compute
                          engine's (the WAIT cycle in which the block's bit decides skip or run; one per fold)
    dbg_row_adds : Out, range(max(rows, cols) + 1)   (``weight_zero_points``) activations added into row sums
                          this cycle
    dbg_row_lanes : Out, range(cols + 1)   (``weight_zero_points``) real output lanes of the beat on ``o_out``
                          whose row term is formed (the tile's real columns; IS: real output rows), 0 without
                          ``zp_rows``
    """

    def __init__(self, cfg: MacArrayConfig, debug: bool = False, fpga: str | None = None):
        self.dsp = uses_dsp_registers(cfg, fpga)
        self.m_step, self.k_step = cfg.fold_steps  # raises for an IS config whose SRAMs hold no IS tile
        assert not self.dsp or cfg.dataflow == "os" or self.k_step == cfg.rows  # dense WS/IS: kt = min(k_rem, rows)
        self.cfg = cfg
        self.debug = debug
        self.fpga = fpga
        R, C = cfg.rows, cfg.cols
        is_ = cfg.dataflow == "is"
        members = {
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "dim_m": In(cfg.dim_bits),
            "dim_k": In(cfg.dim_bits),
            "dim_n": In(cfg.dim_bits),
            "shift": In(range(cfg.acc_bits)),
            "relu": In(1),
            "i_weights": In(stream.Signature(data.ArrayLayout(unsigned(cfg.weight_bits + cfg.index_bits),
                                                              R if is_ else C))),
            "i_acts": In(stream.Signature(data.ArrayLayout(unsigned(cfg.act_bits),
                                                           C if is_ else cfg.ws_k_step))),
            "o_out": Out(stream.Signature(data.ArrayLayout(unsigned(cfg.act_bits), C))),
            "bias_addr": Out(cfg.dim_bits),
            "bias": In(data.ArrayLayout(signed(cfg.acc_bits), C)),
        }
        if cfg.skip_zero_tiles:
            blk = 2 * (cfg.dim_bits + 1)
            members |= {"ld_blk": Out(blk), "ld_blk_zero": In(1), "cp_blk": Out(blk), "cp_blk_zero": In(1)}
        if cfg.requantizer == "f32":
            members |= {"requant_f32": In(1), "zero_point": In(signed(cfg.act_bits)),
                        "scale": In(data.ArrayLayout(unsigned(32), C))}
        if cfg.weight_zero_points:
            members |= {"zp_rows": In(1), "row_zp": In(data.ArrayLayout(signed(cfg.weight_bits), C))}
        if debug:
            members |= {"dbg_mac": Out(R * C), "dbg_hop": Out(R * C), "dbg_wload": Out(R * C),
                        "dbg_idle": Out(R * C), "dbg_gate": Out(R * C), "dbg_lanes": Out(range(C + 1)),
                        "dbg_sram": Out(6), "dbg_stall": Out(1)}
            if cfg.skip_zero_tiles:
                members |= {"dbg_blk": Out(2)}
            if cfg.requantizer == "f32":
                members |= {"dbg_f32": Out(1)}
            if cfg.weight_zero_points:
                members |= {"dbg_row_adds": Out(range(max(R, C) + 1)), "dbg_row_lanes": Out(range(C + 1))}
            if cfg.gating != "none":  # input/weight buffer accesses lane by lane (idle-lane gating)
                for buf, lanes, lane_bits in _buffer_beats(cfg):
                    groups = _word_groups(lanes * lane_bits, cfg.sram_word_bits)
                    for op in ("rd", "wr"):
                        members |= {f"dbg_{buf}_{op}_lanes": Out(range(lanes + 1)),
                                    f"dbg_{buf}_{op}_words": Out(len(groups))}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        R, C = cfg.rows, cfg.cols
        df = cfg.dataflow
        ws_like = df in ("ws", "is")
        is_ = df == "is"
        m_step, k_step = self.m_step, self.k_step
        s_half = R if ws_like else k_step     # stationary rows (WS/IS) / weight rows (OS) per buffer half
        v_half = m_step if ws_like else k_step  # streamed vectors (WS/IS) / activation vectors (OS) per half
        # The first stream of a fold fills the stationary buffer, the second the streamed one.
        first_in, second_in = (self.i_acts, self.i_weights) if is_ else (self.i_weights, self.i_acts)

        m.submodules.array = array = SystolicArray(cfg, debug=self.debug, fpga=self.fpga)
        m.submodules.requant = requant = PipelinedRequantizer(cfg, C)
        f32 = cfg.requantizer == "f32"
        if f32:
            m.submodules.f32_requant = frq = PipelinedF32Requantizer(cfg, C)  # not "requant_f32": the port
        # Named after what they hold: the weight buffer holds weights, the activation buffer activations.
        gated = cfg.gating != "none"
        sb = _LaneBuffer(m, "abuf" if is_ else "wbuf", first_in, 2 * s_half, gated, cfg.sram_word_bits)
        vb = _LaneBuffer(m, "wbuf" if is_ else "abuf", second_in, 2 * v_half, gated, cfg.sram_word_bits)
        if sb.split:
            s_wr, s_rd = sb.wr, sb.rd
        else:  # one memory (ports named here, as before the split existed)
            s_wr, s_rd = sb.mem.write_port(), sb.mem.read_port()
            sb.whole(s_wr, s_rd)
        if vb.split:
            v_wr, v_rd = vb.wr, vb.rd
        else:
            v_wr, v_rd = vb.mem.write_port(), vb.mem.read_port()
            vb.whole(v_wr, v_rd)

        # Layer registers, latched on start. IS folds the transposed GEMM (N x K) x (K x M).
        M, K, N = (Signal(cfg.dim_bits, name=n) for n in ("M", "K", "N"))
        fold_dims = (N, K, M) if is_ else (M, K, N)
        shift = Signal(range(cfg.acc_bits))
        relu = Signal()
        full = [Signal(name="full0"), Signal(name="full1")]
        starting = Signal()
        finish = Signal()
        m.d.comb += starting.eq(self.start & ~self.busy)
        m.d.sync += self.done.eq(finish)
        with m.If(starting):
            m.d.sync += [M.eq(self.dim_m), K.eq(self.dim_k), N.eq(self.dim_n),
                         shift.eq(self.shift), relu.eq(self.relu), self.busy.eq(1),
                         full[0].eq(0), full[1].eq(0)]
        with m.If(finish):
            m.d.sync += self.busy.eq(0)
        m.d.comb += [requant.shift.eq(shift), requant.relu.eq(relu)]
        if f32:  # the layer's requantizer choice and output zero point, latched like shift and relu
            use_f32 = Signal(name="use_f32")
            zp = Signal(signed(cfg.act_bits), name="out_zp")
            with m.If(starting):
                m.d.sync += [use_f32.eq(self.requant_f32), zp.eq(self.zero_point)]
            m.d.comb += [frq.zero_point.eq(zp), frq.relu.eq(relu)]
        wzp = cfg.weight_zero_points
        if wzp:  # weight zero points: the row-sum unit runs for this layer (latched like requant_f32)
            use_rows = Signal(name="use_rows")
            with m.If(starting):
                m.d.sync += use_rows.eq(self.zp_rows)
            rsb = cfg.row_sum_bits
            row_adds = Signal(range(max(R, C) + 1), name="row_adds")  # row-sum additions this cycle

        def lane_params(c: int, src: int):
            """Requantizer lane ``c`` takes the bias (and, f32, the scale; with weight zero points the zero
            point, zero in an idle lane or a layer without the row term) of parameter lane ``src``."""
            m.d.comb += requant.bias[c].eq(self.bias[src])
            if f32:
                m.d.comb += [frq.corr[c].eq(self.bias[src]), frq.scale[c].eq(self.scale[src])]
            if wzp:
                m.d.comb += frq.row_zp[c].eq(Mux(use_rows & lane_ok[c], self.row_zp[src], 0))

        # ---------------------------------------------------------------- loader
        skip = cfg.skip_zero_tiles
        ld_blk_rd, cp_blk_rd = Signal(), Signal()  # the engines' bitmap reads (debug counters only)
        lf = _Folds(m, "ld", cfg, fold_dims, m_step, k_step)
        if skip:
            m.d.comb += self.ld_blk.eq(lf.blk)
        lhalf = Signal()
        lcnt = Signal(cfg.dim_bits + 1)
        n_second = lf.mt if ws_like else lf.kt
        set_full = Signal()
        m.d.comb += [s_wr.data.eq(first_in.payload), v_wr.data.eq(second_in.payload),
                     s_wr.addr.eq(Mux(lhalf, s_half, 0) + lcnt), v_wr.addr.eq(Mux(lhalf, v_half, 0) + lcnt)]
        with m.FSM(name="loader"):
            with m.State("IDLE"):
                with m.If(starting):
                    m.d.sync += [*lf.reset(), lhalf.eq(0), lcnt.eq(0)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                if skip:  # a zero weight block: no beats, no half; on to the next fold in one cycle
                    m.d.comb += ld_blk_rd.eq(self.ld_blk_zero | ~Mux(lhalf, full[1], full[0]))
                    with m.If(self.ld_blk_zero):
                        lf.advance(m)
                        with m.If(lf.last):
                            m.next = "IDLE"
                    with m.Elif(~Mux(lhalf, full[1], full[0])):
                        m.next = "WEIGHTS"
                else:
                    with m.If(~Mux(lhalf, full[1], full[0])):
                        m.next = "WEIGHTS"
            with m.State("WEIGHTS"):  # the stationary operand (IS: activations)
                m.d.comb += first_in.ready.eq(1)
                with m.If(first_in.valid):
                    m.d.comb += s_wr.en.eq(1)
                    m.d.sync += lcnt.eq(lcnt + 1)
                    with m.If(lcnt == lf.kt - 1):
                        m.d.sync += lcnt.eq(0)
                        m.next = "ACTS"
            with m.State("ACTS"):  # the streamed operand (IS: weights)
                m.d.comb += second_in.ready.eq(1)
                with m.If(second_in.valid):
                    m.d.comb += v_wr.en.eq(1)
                    m.d.sync += lcnt.eq(lcnt + 1)
                    with m.If(lcnt == n_second - 1):
                        m.d.sync += [lcnt.eq(0), lhalf.eq(~lhalf)]
                        m.d.comb += set_full.eq(1)
                        lf.advance(m)
                        with m.If(lf.last):
                            m.next = "IDLE"
                        with m.Else():
                            m.next = "WAIT"

        # ---------------------------------------------------------------- compute engine
        cf = _Folds(m, "cp", cfg, fold_dims, m_step, k_step)
        # Idle-lane gating: the real lanes of the buffers' beats (hwsim.mac_array.buffer_lanes), which decide
        # the word memories a write (loader's fold) or a read (compute engine's fold) enables. Stationary
        # (WS/OS weight rows, IS activation rows): the tile's real columns. Streamed: WS activations the fold's
        # reduction steps, IS weights its kept rows, OS activations the tile's rows.
        def strm_real(f):
            return f.kl if df == "ws" else (f.kt if is_ else f.mt)
        for b, (wl, rl) in ((sb, (lf.nt, cf.nt)), (vb, (strm_real(lf), strm_real(cf)))):
            if gated and (b.split or self.debug):
                m.d.comb += [b.wr_lanes.eq(wl), b.rd_lanes.eq(rl)]
        if skip:
            m.d.comb += self.cp_blk.eq(cf.blk)
        chalf = Signal()
        cnt = Signal(cfg.dim_bits + 2)
        clear_full = Signal()
        for h in range(2):
            with m.If(set_full & (lhalf == h)):
                m.d.sync += full[h].eq(1)
            with m.If(clear_full & (chalf == h)):
                m.d.sync += full[h].eq(0)

        # Idle-lane gating: columns of the tile with a real output (the PEs' col_en, the requantizer lanes'
        # input hold and the output buffer's lane write enables).
        lane_ok = Signal(C, name="lane_ok")
        for c in range(C):
            if self.dsp:  # registered beside nt, from the counters nt is: the same value, no compare on the
                # paths into the DSP blocks' clock enables
                m.d.sync += lane_ok[c].eq(cf.n_rem > c)
            else:
                m.d.comb += lane_ok[c].eq(cf.nt > c)
            m.d.comb += array.col_en[c].eq(lane_ok[c])

        out = self.o_out
        adv = Signal()
        m.d.comb += [adv.eq(~out.valid | out.ready), requant.en.eq(adv)]
        if f32:
            m.d.comb += frq.en.eq(adv)
        # The drain pipeline: acc_q holds the row entering the requantizer; v_pipe[i] says stage i holds a row.
        acc_q = Signal(data.ArrayLayout(signed(cfg.acc_bits), C))
        v_pipe = [Signal(name=f"drain_v{i}") for i in range(DRAIN_STAGES)]
        for c in range(C):
            m.d.comb += requant.acc[c].eq(acc_q[c])
            if f32:
                m.d.comb += frq.acc[c].eq(acc_q[c])
        lanes_out = Mux(use_f32, frq.out.as_value(), requant.out.as_value()) if f32 else requant.out

        def drain_step(row_valid):
            """On ``adv``: rows move one stage along the drain pipeline into the output register."""
            m.d.sync += [out_reg.eq(lanes_out), v_pipe[0].eq(row_valid), out.valid.eq(v_pipe[-1]),
                         *(v_pipe[i].eq(v_pipe[i - 1]) for i in range(1, DRAIN_STAGES))]
        out_reg = Signal(C * cfg.act_bits)
        m.d.comb += out.payload.eq(out_reg)
        sent = Signal(cfg.dim_bits + 1)
        issued = Signal(cfg.dim_bits + 1)
        stall = Signal()
        # Reads happen only when their data is used (explicit read enables; also the access counts).
        s_rd_en, v_rd_en, o_rd_en, o_wr_en = Signal(), Signal(), Signal(), Signal()

        def end_of_fold():
            cf.advance(m)
            with m.If(cf.last):
                m.d.comb += finish.eq(1)
                m.next = "IDLE"
            with m.Else():
                m.next = "WAIT"

        # The streamed operand enters the array one cycle after its buffer read, through a register
        # (STREAM_STAGES; OS: the weights too), so no path runs from a block RAM through a multiplier.
        a_q = Signal.like(v_rd.data)
        m.d.sync += a_q.eq(v_rd.data)
        m.d.comb += [s_rd.addr.eq(Mux(chalf, s_half, 0) + cnt), s_rd.en.eq(s_rd_en),
                     v_rd.addr.eq(Mux(chalf, v_half, 0) + cnt), v_rd.en.eq(v_rd_en),
                     array.a_vec.eq(a_q)]
        if ws_like:
            m.d.comb += array.w_vec.eq(s_rd.data)
        else:
            w_q = Signal.like(s_rd.data)
            m.d.sync += w_q.eq(s_rd.data)
            m.d.comb += array.w_vec.eq(w_q)

        def idle_and_wait(first_state: str):
            with m.State("IDLE"):
                with m.If(starting):
                    m.d.sync += [*cf.reset(), chalf.eq(0), cnt.eq(0)]
                    m.next = "WAIT"
            with m.State("WAIT"):
                if skip:  # a zero weight block: nothing to compute; a tile's last k-fold still drains it
                    m.d.comb += cp_blk_rd.eq(self.cp_blk_zero | Mux(chalf, full[1], full[0]))
                    with m.If(self.cp_blk_zero):
                        with m.If(cf.last_k):
                            m.d.sync += [issued.eq(0), sent.eq(0)]
                            m.next = "DRAIN"
                        with m.Else():
                            end_of_fold()
                    with m.Else():
                        m.d.comb += stall.eq(~Mux(chalf, full[1], full[0]))
                        with m.If(Mux(chalf, full[1], full[0])):
                            m.d.sync += cnt.eq(0)
                            m.next = first_state
                else:
                    m.d.comb += stall.eq(~Mux(chalf, full[1], full[0]))
                    with m.If(Mux(chalf, full[1], full[0])):
                        m.d.sync += cnt.eq(0)
                        m.next = first_state

        def count_sent(last_row):
            with m.If(out.valid & out.ready):
                m.d.sync += sent.eq(sent + 1)
                with m.If(sent == last_row):
                    end_of_fold()

        if ws_like:
            if gated:
                # Idle-lane gating: one memory per lane (obuf0 .. obuf{C-1}), each with its own write and read
                # enable, so only the tile's real columns are written and read.
                row = data.ArrayLayout(unsigned(cfg.acc_bits), C)
                o_wr = SimpleNamespace(addr=Signal(range(max(m_step, 2)), name="obuf_waddr"),
                                       en=Signal(name="obuf_wen"),
                                       data=Signal(row, name="obuf_wdata"))
                o_rd = SimpleNamespace(addr=Signal(range(max(m_step, 2)), name="obuf_raddr"),
                                       en=Signal(name="obuf_ren"),
                                       data=Signal(row, name="obuf_rdata"))
                for c in range(C):
                    m.submodules[f"obuf{c}"] = lane_mem = Memory(shape=unsigned(cfg.acc_bits), depth=m_step, init=[])
                    wp, rp = lane_mem.write_port(), lane_mem.read_port()
                    m.d.comb += [wp.addr.eq(o_wr.addr), wp.data.eq(o_wr.data[c]), wp.en.eq(o_wr.en & lane_ok[c]),
                                 rp.addr.eq(o_rd.addr), rp.en.eq(o_rd.en & lane_ok[c]), o_rd.data[c].eq(rp.data)]
            else:
                m.submodules.obuf = obuf = Memory(
                    shape=data.ArrayLayout(unsigned(cfg.acc_bits), C), depth=m_step, init=[])
                o_wr, o_rd = obuf.write_port(), obuf.read_port()
            dv, dv_q = Signal(), Signal()
            psum_q = Signal(data.ArrayLayout(signed(cfg.acc_bits), C))
            first_k = Signal()
            # FPGA variant: STREAM's "cnt < mt" (the buffers' read enables) from a register, not a compare
            stream_rows = Signal(name="stream_rows")
            row_q = Signal(cfg.dim_bits + 1)  # IS: the output row whose data the read port holds
            row_a = Signal(cfg.dim_bits + 1)  # IS: the output row in acc_q (the bias is added to it)
            # Zero-tile skipping: the tile's accumulation starts at its first executed fold (``started``
            # is set after it); a tile with no executed fold drains zero accumulators.
            started = Signal()
            # The fold's last STREAM cycle and last output row, registered like cf.mt (off the control paths).
            stream_last, drain_last = Signal(cfg.dim_bits + 2), Signal(cfg.dim_bits + 1)
            lag = R + C + STREAM_STAGES + PE_STAGES - 1
            # FPGA variant: the offset added to both sides of the min (the same sum), in parallel with the compare
            last = Mux(cf.m_full, m_step + lag, cf.m_rem + lag) if self.dsp else cf.mt_next + lag
            m.d.sync += [stream_last.eq(last),
                         drain_last.eq(cf.mt_next - 1)]
            m.d.comb += [first_k.eq(~started if skip else cf.k0 == 0), o_rd.en.eq(o_rd_en),
                         o_wr.en.eq(o_wr_en),
                         o_wr.data.eq(array.out_vec), o_wr.addr.eq(cnt - (R + C + STREAM_STAGES + PE_STAGES)),
                         array.a_valid.eq(dv_q)]
            m.d.sync += dv_q.eq(dv)
            for r in range(R):
                if self.dsp:  # registered beside kt, from the counters kt is (as lane_ok): the DSP clock enables
                    lane_en = Signal(name=f"lane_en{r}")
                    m.d.sync += lane_en.eq(cf.k_rem > r)
                    m.d.comb += array.lane_en[r].eq(lane_en)
                else:
                    m.d.comb += array.lane_en[r].eq(r < cf.kt)
            for c in range(C):
                m.d.sync += psum_q[c].eq(Mux(first_k, 0, o_rd.data[c].as_signed()))
                m.d.comb += array.psum_vec[c].eq(psum_q[c])
            if wzp and not is_:
                # Row-sum unit (WS): while the tile of n0 = 0 streams, activation row i's real lanes (r < kt) are
                # summed and added to rsbuf[i] (cleared at k0 = 0): read with the streamed read, written two
                # cycles later, long before the fold ends. The drain reads rsbuf[i] beside the output buffer.
                m.submodules.rsbuf = rsbuf = Memory(shape=signed(rsb), depth=m_step, init=[])
                rs_wr, rs_rd = rsbuf.write_port(), rsbuf.read_port()
                rs_v1, rs_v2 = Signal(name="rs_v1"), Signal(name="rs_v2")
                rs_a1, rs_a2 = Signal.like(rs_wr.addr, name="rs_a1"), Signal.like(rs_wr.addr, name="rs_a2")
                lane_sum = Signal(signed(rsb), name="lane_sum")
                ab = cfg.act_bits
                m.d.comb += lane_sum.eq(sum(Mux(r < cf.kt, a_q[r * ab:(r + 1) * ab].as_signed(), 0) for r in range(R)))
                m.d.sync += [rs_v1.eq(0), rs_v2.eq(rs_v1), rs_a2.eq(rs_a1)]
                rs_drain = Signal(name="rs_drain")  # DRAIN reads the drained row's sum (layers with the row term)
                m.d.comb += [rs_rd.addr.eq(Mux(rs_v1, rs_a1, o_rd.addr)), rs_rd.en.eq(rs_v1 | rs_drain),
                             rs_wr.addr.eq(rs_a2), rs_wr.data.eq(Mux(first_k, 0, rs_rd.data) + lane_sum),
                             rs_wr.en.eq(rs_v2), row_adds.eq(Mux(rs_v2, cf.kt, 0))]
                rs_q = Signal(signed(rsb), name="rowsum_q")  # the row sum of the row in acc_q
                with m.If(adv):
                    m.d.sync += rs_q.eq(rs_rd.data)
                for c in range(C):
                    m.d.comb += frq.rowsum[c].eq(rs_q)
            if wzp and is_:
                # Row-sum unit (IS): lane c's stationary activations A[m0 + c, k0 + j] are summed as WLOAD loads
                # them into the PEs (cleared at k0 = 0), so each (n, m) tile sums its rows again.
                rs_lane = [Signal(signed(rsb), name=f"rowsum{c}") for c in range(C)]
                ab = cfg.act_bits
                with m.If(array.w_load & use_rows):
                    for c in range(C):
                        x = Mux(lane_ok[c], s_rd.data[c * ab:(c + 1) * ab].as_signed(), 0)
                        m.d.sync += rs_lane[c].eq(Mux(first_k & (cnt == 1), 0, rs_lane[c]) + x)
                m.d.comb += row_adds.eq(Mux(array.w_load & use_rows, cf.nt, 0))
                for c in range(C):
                    m.d.comb += frq.rowsum[c].eq(rs_lane[c])
            with m.If(adv):
                m.d.sync += row_a.eq(row_q)
                for c in range(C):
                    row = Mux(started, o_rd.data[c].as_signed(), 0) if skip else o_rd.data[c].as_signed()
                    if gated:  # an idle lane's requantizer input holds
                        with m.If(lane_ok[c]):
                            m.d.sync += acc_q[c].eq(row)
                    else:
                        m.d.sync += acc_q[c].eq(row)
            if skip:
                with m.If(starting):
                    m.d.sync += started.eq(0)
            if is_:
                # Output row i of an IS tile is output channel m0 + i (m0 steps over N): one bias, every lane.
                m.d.comb += self.bias_addr.eq(cf.m0 + row_a)
                for c in range(C):
                    lane_params(c, 0)
            else:
                m.d.comb += self.bias_addr.eq(cf.n0)
                for c in range(C):
                    lane_params(c, c)
            m.d.sync += dv.eq(0)
            with m.FSM(name="compute"):
                idle_and_wait("WLOAD")
                with m.State("WLOAD"):
                    # Read stationary row cnt; it reaches the PEs of row cnt-1 one cycle later.
                    m.d.comb += [array.w_load.eq(cnt != 0), array.w_row.eq(cnt - 1), s_rd_en.eq(cnt < cf.kt)]
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == cf.kt):
                        m.d.sync += cnt.eq(0)
                        if self.dsp:
                            m.d.sync += stream_rows.eq(cf.mt != 0)
                        m.next = "STREAM"
                with m.State("STREAM"):
                    rows_left = stream_rows if self.dsp else cnt < cf.mt
                    if self.dsp:  # cnt < mt as a register (STREAM starts at cnt = 0 and counts up by one)
                        m.d.sync += stream_rows.eq(stream_rows & (cnt + 1 != cf.mt))
                    m.d.comb += [o_rd.addr.eq(cnt), v_rd_en.eq(rows_left), o_rd_en.eq(rows_left & ~first_k)]
                    m.d.sync += [dv.eq(rows_left), cnt.eq(cnt + 1)]
                    if wzp and not is_:
                        m.d.sync += [rs_v1.eq(rows_left & use_rows & (cf.n0 == 0)), rs_a1.eq(cnt)]
                    with m.If(cnt >= R + C + STREAM_STAGES + PE_STAGES):
                        m.d.comb += o_wr_en.eq(1)
                    with m.If(cnt == stream_last):
                        m.d.comb += clear_full.eq(1)
                        m.d.sync += [chalf.eq(~chalf), cnt.eq(0)]
                        if skip:
                            m.d.sync += started.eq(1)
                        with m.If(cf.last_k):
                            m.d.sync += [issued.eq(0), sent.eq(0)]
                            m.next = "DRAIN"
                        with m.Else():
                            end_of_fold()
                with m.State("DRAIN"):
                    s1v = Signal()
                    rd = adv & (issued < cf.mt)
                    m.d.comb += [o_rd.addr.eq(issued), o_rd_en.eq(rd & started if skip else rd)]
                    if wzp and not is_:
                        m.d.comb += rs_drain.eq(rd & use_rows)
                    with m.If(o_rd_en):
                        m.d.sync += row_q.eq(issued)
                    with m.If(adv):
                        drain_step(s1v)
                        m.d.sync += s1v.eq(issued < cf.mt)
                        with m.If(issued < cf.mt):
                            m.d.sync += issued.eq(issued + 1)
                    if skip:  # the tile is done: the next one starts its accumulation afresh
                        with m.If(out.valid & out.ready & (sent == drain_last)):
                            m.d.sync += started.eq(0)
                    count_sent(drain_last)
        else:
            v, v_q = Signal(), Signal()
            first, first_q = Signal(), Signal()
            # The tile's real rows and its last row index, registered (DRAIN reads them long after the
            # counters last moved): the subtract-and-compare is off the drain's control path.
            rt, rt_last = Signal(cfg.dim_bits + 1), Signal(cfg.dim_bits + 1)
            m.d.sync += [rt.eq(Mux(M - cf.m0 > R, R, M - cf.m0)), rt_last.eq(Mux(M - cf.m0 > R, R, M - cf.m0) - 1)]
            m.d.sync += [v_q.eq(v), first_q.eq(first)]
            m.d.comb += [array.valid.eq(v_q), array.first.eq(first_q),
                         array.row_sel.eq(issued), self.bias_addr.eq(cf.n0)]
            for r in range(R):
                m.d.comb += array.row_en[r].eq(rt > r)
            for c in range(C):
                lane_params(c, c)
                with m.If(adv & lane_ok[c] if gated else adv):
                    m.d.sync += acc_q[c].eq(array.acc_row[c])
            m.d.sync += [v.eq(0), first.eq(0)]
            if wzp:
                # Row-sum unit (OS): lane r of activation beat j is A[m0 + r, k0 + j]; while the tile of n0 = 0
                # streams, rowsum r adds its real lanes (r < rt), cleared by the tile's first beat. The drain
                # takes the sum of the row it selects (row_sel) with the row.
                rs = [Signal(signed(rsb), name=f"rowsum{r}") for r in range(R)]
                rsv, rsv_q = Signal(name="rs_v"), Signal(name="rs_v_q")
                ab = cfg.act_bits
                m.d.sync += [rsv.eq(0), rsv_q.eq(rsv)]
                with m.If(v_q & rsv_q):
                    for r in range(R):
                        x = Mux(rt > r, a_q[r * ab:(r + 1) * ab].as_signed(), 0)
                        m.d.sync += rs[r].eq(Mux(first_q, 0, rs[r]) + x)
                m.d.comb += row_adds.eq(Mux(v_q & rsv_q, rt, 0))
                rs_q = Signal(signed(rsb), name="rowsum_q")
                with m.If(adv):
                    m.d.sync += rs_q.eq(Array(rs)[issued])
                for c in range(C):
                    m.d.comb += frq.rowsum[c].eq(rs_q)
            with m.FSM(name="compute"):
                idle_and_wait("STREAM")
                with m.State("STREAM"):
                    m.d.comb += [s_rd_en.eq(1), v_rd_en.eq(1)]
                    m.d.sync += [v.eq(1), first.eq((cf.k0 == 0) & (cnt == 0)), cnt.eq(cnt + 1)]
                    if wzp:
                        m.d.sync += rsv.eq(use_rows & (cf.n0 == 0))
                    with m.If(cnt == cf.kt - 1):
                        m.d.comb += clear_full.eq(1)
                        m.d.sync += [chalf.eq(~chalf), cnt.eq(0)]
                        with m.If(cf.last_k):
                            m.next = "FLUSH"
                        with m.Else():
                            end_of_fold()
                with m.State("FLUSH"):
                    m.d.sync += cnt.eq(cnt + 1)
                    with m.If(cnt == R + C + STREAM_STAGES + PE_STAGES - 2):
                        m.d.sync += [cnt.eq(0), issued.eq(0), sent.eq(0)]
                        m.next = "DRAIN"
                with m.State("DRAIN"):
                    with m.If(adv):
                        drain_step(issued < rt)
                        with m.If(issued < rt):
                            m.d.sync += issued.eq(issued + 1)
                    count_sent(rt_last)

        if self.debug:
            # Stationary buffer = weight SRAM (WS/OS) or input SRAM (IS); streamed buffer the other one.
            s_wr_ev, v_wr_ev = first_in.valid & first_in.ready, second_in.valid & second_in.ready
            in_rd, in_wr, wt_rd, wt_wr = ((s_rd_en, s_wr_ev, v_rd_en, v_wr_ev) if is_
                                          else (v_rd_en, v_wr_ev, s_rd_en, s_wr_ev))
            m.d.comb += [self.dbg_mac.eq(array.dbg_mac), self.dbg_hop.eq(array.dbg_hop),
                         self.dbg_wload.eq(array.dbg_wload), self.dbg_stall.eq(stall),
                         self.dbg_idle.eq(array.dbg_idle), self.dbg_gate.eq(array.dbg_gate),
                         self.dbg_lanes.eq(cf.nt if gated else C),
                         self.dbg_sram.eq(Cat(in_rd, in_wr, wt_rd, wt_wr, o_rd_en, o_wr_en))]
            if skip:
                m.d.comb += self.dbg_blk.eq(Cat(ld_blk_rd, cp_blk_rd))
            if f32:
                m.d.comb += self.dbg_f32.eq(use_f32)
            if wzp:  # real output lanes of the beat leaving (the row term's products), row-sum additions
                m.d.comb += [self.dbg_row_adds.eq(row_adds), self.dbg_row_lanes.eq(Mux(use_rows, cf.nt, 0))]
            if gated:  # the input/weight buffers' accesses: real lanes and word memories enabled
                in_b, wt_b = (sb, vb) if is_ else (vb, sb)
                for name, b in (("in", in_b), ("wt", wt_b)):
                    m.d.comb += [getattr(self, f"dbg_{name}_rd_lanes").eq(Mux(b.rd.en, b.rd_lanes, 0)),
                                 getattr(self, f"dbg_{name}_wr_lanes").eq(Mux(b.wr.en, b.wr_lanes, 0)),
                                 getattr(self, f"dbg_{name}_rd_words").eq(b.rd_words),
                                 getattr(self, f"dbg_{name}_wr_words").eq(b.wr_words)]
        return m


def generate_verilog(cfg: MacArrayConfig, debug: bool = False, fpga: str | None = None,
                     sim_models: bool = False) -> tuple[str, dict]:
    """Verilog text of the top and its metadata (config, derived values, ports from the signature).

    ``debug=True`` adds the simulation-only activity outputs (``dbg_*``) the co-simulation harness counts.
    ``fpga="ecp5"`` is the variant the FPGA flow places and routes (``hwsim.fpga``; docs/fpga_timing.md): the
    PEs' multipliers are ``MULT18X18D`` DSP blocks with their operand registers inside (:class:`MacPE`), and
    the lane enables that feed the blocks' clock enables are registered beside the fold counters they come
    from; the same values and cycles. ``sim_models=True`` appends behavioural models of those primitives
    (:data:`hwsim.rtl.mac_pe.MULT18X18D_SIM_MODEL`), so Verilator simulates the variant.
    """
    uses_dsp_registers(cfg, fpga)  # an unknown fpga fails before any elaboratable exists
    top = MacArray(cfg, debug=debug, fpga=fpga)
    members = top.metadata.as_json()["interface"]["members"]
    w_bits = int(members["i_weights"]["members"]["payload"]["width"])
    a_bits = int(members["i_acts"]["members"]["payload"]["width"])
    m_tile, k_step = cfg.fold_steps
    text, meta = generate(
        cfg, top, LINT_WAIVERS,
        debug=debug,
        derived={
            "weight_bits": cfg.weight_bits,
            "sparsity": cfg.sparsity,
            "index_bits": cfg.index_bits,
            "product_bits": cfg.product_bits,
            "m_tile": m_tile,
            "k_step": k_step,
            "weight_beat_bits": w_bits,
            "act_beat_bits": a_bits,
            "out_beat_bits": cfg.out_beat_bits,
            "weight_beat_period": cfg.beat_period(w_bits),
            "act_beat_period": cfg.beat_period(a_bits),
        },
    )
    if fpga is not None:
        meta["fpga"] = fpga
        if sim_models and uses_dsp_registers(cfg, fpga):
            text += MULT18X18D_SIM_MODEL
    return text, meta


def write_verilog(cfg: MacArrayConfig, out_dir) -> tuple[Path, Path]:
    """Write ``<top>.v`` and ``<top>.json`` into ``out_dir``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    text, meta = generate_verilog(cfg)
    v_path = out_dir / f"{cfg.top_name}.v"
    j_path = out_dir / f"{cfg.top_name}.json"
    v_path.write_text(text)
    j_path.write_text(json.dumps(meta, indent=2) + "\n")
    return v_path, j_path
