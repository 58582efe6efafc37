"""Tensor-train (TT) and hierarchical-Tucker (HT) matrix formats, and their stage-by-stage matvec.

A matrix ``W`` of shape ``(M, N)`` with ``M = prod(m_k)`` and ``N = prod(n_k)`` is seen as a tensor with
output modes ``m_1..m_d`` and input modes ``n_1..n_d`` (row index ``i = (i_1, ..., i_d)`` and column index
``j = (j_1, ..., j_d)``, both row-major, ``i_1`` / ``j_1`` slowest).

Both formats are a list of :class:`Factor` s, small tensors whose axes carry *labels*: ``m<k>`` / ``n<k>``
(1-based mode ``k``), ``r<k>`` (TT rank between cores ``k`` and ``k+1``) and ``h<modes>`` (HT rank of
the tree node over ``modes``). Size-1 boundary ranks (TT ``r_0 = r_d = 1``, the HT root rank) are left
out. The matvec ``y = W x`` is then a sequence of *stages*, one factor each, exactly as an engine runs it
(:func:`plan_stages`): the intermediate tensor ``T`` (initially ``x`` with axes ``n1..nd``) is contracted
with the factor over the labels they share; the result's axes are ``T``'s other axes (in ``T``'s order)
followed by the factor's other axes (in the factor's order), stored row-major. As a GEMM a stage has
``R`` = size of the factor's new axes (output rows), ``K`` = size of the shared axes (the reduction) and
``Q`` = size of ``T``'s other axes (columns); it costs ``Q * R * K`` MACs. ``W`` is never formed.

* TT-matrix (Oseledets 2010; Novikov et al. 2015): cores ``G_k`` with axes ``(r_{k-1}, m_k, n_k, r_k)``.
  :func:`tt_from_dense` runs TT-SVD through ``tensorly.decomposition.tensor_train_matrix``, to given
  maximum ranks or to a relative Frobenius tolerance (ranks chosen from the unfoldings' singular values
  so that Oseledets' bound ``||W - W_TT|| <= sqrt(sum of the discarded energies)`` meets the tolerance).
* HT-matrix (Hackbusch & Kuehn 2009; Grasedyck 2010): a binary dimension tree (a ``networkx.DiGraph``
  whose nodes are tuples of 0-based modes, edges parent -> child); leaf ``k`` has a factor with axes
  ``(m_k, n_k, h_k)``, an inner node ``t`` with children ``l``, ``r`` a transfer tensor
  ``(h_l, h_r, h_t)``, the root ``(h_l, h_r)`` (root rank 1). :func:`ht_from_dense` is the root-to-leaves
  hierarchical SVD (Grasedyck 2010, Alg. 1), written here because tensorly has no HT format.

The fixed-point stage (:func:`stage_fixed`) is the bit-exact reference of the LSTM engine's contraction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hwsim.models.errors import HwsimError

__all__ = [
    "Factor",
    "HTMatrix",
    "Stage",
    "TTMatrix",
    "balanced_tree",
    "cheapest_order",
    "contract_stage",
    "default_order",
    "ht_from_dense",
    "matvec",
    "plan_stages",
    "round_shift",
    "stage_fixed",
    "to_dense",
    "tt_from_dense",
]


def _pos_ints(name: str, values, lo: int = 1) -> tuple[int, ...]:
    try:
        vals = tuple(values)
    except TypeError:
        raise HwsimError(f"{name}={values!r} is not allowed: expected a list of integers >= {lo}") from None
    if not vals or any(isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo for v in vals):
        raise HwsimError(f"{name}={list(vals)!r} is not allowed: expected a non-empty list of integers >= {lo}")
    return tuple(int(v) for v in vals)


def check_modes(shape, out_modes, in_modes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validated ``(out_modes, in_modes)`` whose products are ``shape = (M, N)``."""
    m = _pos_ints("out_modes", out_modes)
    n = _pos_ints("in_modes", in_modes)
    if len(m) != len(n):
        raise HwsimError(f"in_modes={list(n)} is not allowed: expected {len(m)} modes, one per output mode")
    M, N = shape
    if math.prod(m) != M:
        raise HwsimError(f"out_modes={list(m)} is not allowed: expected modes whose product is M={M}")
    if math.prod(n) != N:
        raise HwsimError(f"in_modes={list(n)} is not allowed: expected modes whose product is N={N}")
    return m, n


# ---------------------------------------------------------------------------------------------- factors
@dataclass(frozen=True)
class Factor:
    """One factor (TT core, HT leaf or transfer tensor): a tensor ``data`` with one label per axis."""

    name: str
    axes: tuple[str, ...]
    data: np.ndarray

    @property
    def size(self) -> int:
        return int(np.prod(self.data.shape, dtype=np.int64))


@dataclass(frozen=True)
class Stage:
    """One contraction stage as the engine runs it (see the module docstring).

    ``t_axes`` are the intermediate's axes before the stage, ``shared`` the contracted labels (in the
    factor's axis order), ``rest`` the intermediate's other axes, ``new`` the factor's other axes;
    the result's axes are ``rest + new``. ``R``, ``K``, ``Q`` are the GEMM sizes, ``macs = Q * R * K``.
    """

    factor: int
    name: str
    t_axes: tuple[str, ...]
    shared: tuple[str, ...]
    rest: tuple[str, ...]
    new: tuple[str, ...]
    R: int
    K: int
    Q: int

    @property
    def out_axes(self) -> tuple[str, ...]:
        return self.rest + self.new

    @property
    def macs(self) -> int:
        return self.Q * self.R * self.K

    @property
    def in_size(self) -> int:
        return self.Q * self.K

    @property
    def out_size(self) -> int:
        return self.Q * self.R


class _Format:
    """Shared behaviour of :class:`TTMatrix` and :class:`HTMatrix`."""

    kind = ""
    out_modes: tuple[int, ...]
    in_modes: tuple[int, ...]
    factors: tuple[Factor, ...]

    @property
    def d(self) -> int:
        return len(self.out_modes)

    @property
    def shape(self) -> tuple[int, int]:
        return math.prod(self.out_modes), math.prod(self.in_modes)

    @property
    def params(self) -> int:
        """Number of stored parameters (all factor entries)."""
        return sum(f.size for f in self.factors)

    @property
    def dense_params(self) -> int:
        return self.shape[0] * self.shape[1]

    def sizes(self) -> dict[str, int]:
        """Size of every axis label."""
        out = {f"n{k + 1}": n for k, n in enumerate(self.in_modes)}
        for f in self.factors:
            out.update(zip(f.axes, f.data.shape, strict=True))
        return out

    def with_factors(self, datas):
        """The same format with new factor arrays (same shapes; e.g. quantized integer cores)."""
        new = tuple(Factor(f.name, f.axes, np.asarray(a)) for f, a in zip(self.factors, datas, strict=True))
        for f, g in zip(self.factors, new, strict=True):
            if f.data.shape != g.data.shape:
                raise HwsimError(f"factor {f.name} shape={g.data.shape} is not allowed: expected {f.data.shape}")
        return type(self)(**{**self._fields(), "factors": new})


@dataclass(frozen=True)
class TTMatrix(_Format):
    """A TT-matrix: cores ``G_k`` with axes ``(r_{k-1}, m_k, n_k, r_k)`` (size-1 boundary ranks dropped).

    Build with :func:`tt_from_dense` or :meth:`random`; ``ranks`` is ``[1, r_1, ..., r_{d-1}, 1]``.
    """

    out_modes: tuple[int, ...]
    in_modes: tuple[int, ...]
    factors: tuple[Factor, ...] = field(repr=False)
    kind = "tt"

    def _fields(self) -> dict:
        return {"out_modes": self.out_modes, "in_modes": self.in_modes}

    @property
    def ranks(self) -> tuple[int, ...]:
        s = self.sizes()
        return (1, *(s[f"r{k}"] for k in range(1, self.d)), 1)

    @staticmethod
    def shapes(out_modes, in_modes, ranks) -> list[tuple[tuple[str, ...], tuple[int, ...]]]:
        """Axes and shape of every core for the given modes and ranks ``[1, r_1, ..., 1]``."""
        d = len(out_modes)
        ranks = _pos_ints("ranks", ranks)
        if len(ranks) != d + 1 or ranks[0] != 1 or ranks[-1] != 1:
            raise HwsimError(f"ranks={list(ranks)} is not allowed: expected {d + 1} integers >= 1 starting "
                             "and ending with 1")
        out = []
        for k in range(1, d + 1):
            axes, shape = [], []
            if k > 1:
                axes.append(f"r{k - 1}"), shape.append(ranks[k - 1])
            axes += [f"m{k}", f"n{k}"]
            shape += [out_modes[k - 1], in_modes[k - 1]]
            if k < d:
                axes.append(f"r{k}"), shape.append(ranks[k])
            out.append((tuple(axes), tuple(shape)))
        return out

    @classmethod
    def random(cls, out_modes, in_modes, ranks, rng=None, scale: float = 1.0) -> TTMatrix:
        """Cores with standard-normal entries times ``scale`` (for tests and workloads)."""
        rng = np.random.default_rng(rng)
        m, n = _pos_ints("out_modes", out_modes), _pos_ints("in_modes", in_modes)
        facs = tuple(Factor(f"G{k + 1}", axes, rng.standard_normal(shape) * scale)
                     for k, (axes, shape) in enumerate(cls.shapes(m, n, ranks)))
        return cls(m, n, facs)


@dataclass(frozen=True)
class HTMatrix(_Format):
    """An HT-matrix over a binary dimension ``tree`` (nodes: tuples of 0-based modes; root rank 1).

    Factors are the leaves ``U_k`` (axes ``m_k, n_k, h_k``) in mode order, then the transfer tensors in
    post-order (children before parents), the root last. Build with :func:`ht_from_dense` or :meth:`random`.
    """

    out_modes: tuple[int, ...]
    in_modes: tuple[int, ...]
    tree: object = field(repr=False)
    factors: tuple[Factor, ...] = field(repr=False)
    kind = "ht"

    def _fields(self) -> dict:
        return {"out_modes": self.out_modes, "in_modes": self.in_modes, "tree": self.tree}

    @property
    def ranks(self) -> dict[tuple[int, ...], int]:
        s = self.sizes()
        return {t: (1 if t == _root(self.tree) else s[_hlabel(t)]) for t in self.tree.nodes}

    @staticmethod
    def shapes(out_modes, in_modes, tree, ranks) -> list[tuple[str, tuple[str, ...], tuple[int, ...]]]:
        """(name, axes, shape) of every factor; ``ranks`` maps each non-root node to its rank (an int
        means that rank for every node)."""
        d = len(out_modes)
        check_tree(tree, d)
        root = _root(tree)
        r = {t: (ranks if isinstance(ranks, int | np.integer) else ranks[t]) for t in tree.nodes if t != root}
        for t, v in r.items():
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
                raise HwsimError(f"ranks[{t}]={v!r} is not allowed: expected an integer >= 1")
        out = []
        for k in range(d):
            leaf = (k,)
            if leaf == root:  # d == 1: the single leaf is the root
                out.append(("U1", ("m1", "n1"), (out_modes[0], in_modes[0])))
            else:
                out.append((f"U{k + 1}", (f"m{k + 1}", f"n{k + 1}", _hlabel(leaf)),
                            (out_modes[k], in_modes[k], int(r[leaf]))))
        for t in _postorder(tree):
            if len(t) == 1:
                continue
            left, right = _children(tree, t)
            axes, shape = [_hlabel(left), _hlabel(right)], [int(r[left]), int(r[right])]
            if t != root:
                axes.append(_hlabel(t)), shape.append(int(r[t]))
            out.append((f"B{_hlabel(t)[1:]}", tuple(axes), tuple(shape)))
        return out

    @classmethod
    def random(cls, out_modes, in_modes, ranks, tree=None, rng=None, scale: float = 1.0) -> HTMatrix:
        rng = np.random.default_rng(rng)
        m, n = _pos_ints("out_modes", out_modes), _pos_ints("in_modes", in_modes)
        tree = balanced_tree(len(m)) if tree is None else tree
        facs = tuple(Factor(name, axes, rng.standard_normal(shape) * scale)
                     for name, axes, shape in cls.shapes(m, n, tree, ranks))
        return cls(m, n, tree, facs)


# ---------------------------------------------------------------------------------------------- trees
def _hlabel(node: tuple[int, ...]) -> str:
    return "h" + "_".join(str(k + 1) for k in node)


def _root(tree) -> tuple[int, ...]:
    return next(t for t in tree.nodes if tree.in_degree(t) == 0)


def _children(tree, t) -> tuple[tuple[int, ...], tuple[int, ...]]:
    ch = sorted(tree.successors(t), key=lambda c: min(c))
    return ch[0], ch[1]


def _postorder(tree) -> list[tuple[int, ...]]:
    import networkx as nx

    return list(nx.dfs_postorder_nodes(tree, _root(tree), sort_neighbors=lambda ns: sorted(ns, key=min)))


def _leaf_order(tree, t) -> tuple[int, ...]:
    """Modes under ``t`` in left-to-right leaf order."""
    if len(t) == 1:
        return t
    left, right = _children(tree, t)
    return _leaf_order(tree, left) + _leaf_order(tree, right)


def balanced_tree(d: int):
    """The balanced binary dimension tree over modes ``0..d-1`` (each node split into halves)."""
    import networkx as nx

    g = nx.DiGraph()
    g.add_node(tuple(range(d)))

    def split(t):
        if len(t) == 1:
            return
        h = (len(t) + 1) // 2
        for c in (t[:h], t[h:]):
            g.add_edge(t, c)
            split(c)

    split(tuple(range(d)))
    return g


def check_tree(tree, d: int) -> None:
    """A dimension tree must be a binary tree whose root holds all ``d`` modes, every inner node the
    disjoint union of its two children, and whose leaves are the single modes 0..d-1."""
    import networkx as nx

    if not isinstance(tree, nx.DiGraph) or tree.number_of_nodes() == 0 or not nx.is_arborescence(tree):
        raise HwsimError(f"tree={tree!r} is not allowed: expected a networkx DiGraph forming a rooted tree")
    root = _root(tree)
    if tuple(sorted(root)) != tuple(range(d)):
        raise HwsimError(f"tree root={root} is not allowed: expected the root to cover every mode 0..{d - 1}")
    for t in tree.nodes:
        ch = list(tree.successors(t))
        if len(t) == 1 and not ch:
            continue
        if len(ch) != 2 or sorted(ch[0] + ch[1]) != sorted(t) or set(ch[0]) & set(ch[1]):
            raise HwsimError(f"tree node={t} is not allowed: expected two children splitting its modes "
                             "(leaves are single modes)")
    leaves = sorted(t for t in tree.nodes if tree.out_degree(t) == 0)
    if leaves != [(k,) for k in range(d)]:
        raise HwsimError(f"tree leaves={leaves} is not allowed: expected one leaf per mode 0..{d - 1}")


# ---------------------------------------------------------------------------------------------- stages
def _stage_of(t_axes: tuple[str, ...], sizes: dict[str, int], f: Factor, index: int) -> Stage:
    shared = tuple(a for a in f.axes if a in t_axes)
    if not shared:
        raise HwsimError(f"order factor={f.name} is not allowed at this point: it shares no axis with the "
                         f"intermediate ({', '.join(t_axes)}), expected a factor adjacent to the ones done")
    rest = tuple(a for a in t_axes if a not in shared)
    new = tuple(a for a in f.axes if a not in shared)
    return Stage(index, f.name, t_axes, shared, rest, new, math.prod(sizes[a] for a in new),
                 math.prod(sizes[a] for a in shared), math.prod(sizes[a] for a in rest))


def default_order(fmt) -> tuple[int, ...]:
    """The cheapest order (:func:`cheapest_order`), cached per format's shapes."""
    key = (type(fmt).__name__, tuple((f.axes, f.data.shape) for f in fmt.factors), fmt.in_modes)
    if key not in _ORDER_CACHE:
        _ORDER_CACHE[key] = cheapest_order(fmt)
    return _ORDER_CACHE[key]


_ORDER_CACHE: dict = {}


def _check_order(fmt, order) -> tuple[int, ...]:
    n = len(fmt.factors)
    try:
        order = tuple(int(i) for i in order)
    except (TypeError, ValueError):
        raise HwsimError(f"order={order!r} is not allowed: expected a permutation of 0..{n - 1}") from None
    if sorted(order) != list(range(n)):
        raise HwsimError(f"order={list(order)} is not allowed: expected a permutation of 0..{n - 1}")
    return order


def plan_stages(fmt, order=None) -> list[Stage]:
    """The stages of ``fmt``'s matvec in ``order`` (factor indices; default: the cheapest order).

    An order is allowed when every factor shares at least one axis with the intermediate when its turn
    comes (else the stage would be an outer product); the final axes are then exactly ``m1..md``.
    """
    order = default_order(fmt) if order is None else _check_order(fmt, order)
    sizes = fmt.sizes()
    t_axes = tuple(f"n{k + 1}" for k in range(fmt.d))
    out = []
    for i in order:
        st = _stage_of(t_axes, sizes, fmt.factors[i], i)
        out.append(st)
        t_axes = st.out_axes
    return out


def cheapest_order(fmt) -> tuple[int, ...]:
    """The order with the fewest MACs (ties: lexicographically smallest).

    The intermediate's axes depend only on the *set* of factors done, so this is a shortest path over
    subsets (dynamic programming, ``2**n * n`` steps for ``n`` factors; exact).
    """
    sizes = fmt.sizes()
    n = len(fmt.factors)
    start = frozenset(f"n{k + 1}" for k in range(fmt.d))
    axes_of = [set(f.axes) for f in fmt.factors]

    def axes(mask: int) -> frozenset:
        t = set(start)
        for i in range(n):
            if mask >> i & 1:
                t ^= axes_of[i]  # shared labels leave, new ones arrive
        return frozenset(t)

    full = (1 << n) - 1
    togo = {full: 0}
    for mask in sorted(range(full), key=lambda m: -bin(m).count("1")):
        t = axes(mask)
        best = None
        for i in range(n):
            if mask >> i & 1 or not (axes_of[i] & t) or (mask | 1 << i) not in togo:
                continue
            out = t ^ axes_of[i]
            c = math.prod(sizes[a] for a in out) * math.prod(sizes[a] for a in axes_of[i] & t)
            c += togo[mask | 1 << i]
            if best is None or c < best:
                best = c
        if best is not None:
            togo[mask] = best
    order, mask = [], 0
    while mask != full:
        t = axes(mask)
        for i in range(n):
            if mask >> i & 1 or not (axes_of[i] & t) or (mask | 1 << i) not in togo:
                continue
            out = t ^ axes_of[i]
            c = math.prod(sizes[a] for a in out) * math.prod(sizes[a] for a in axes_of[i] & t)
            if c + togo[mask | 1 << i] == togo[mask]:
                order.append(i)
                mask |= 1 << i
                break
    return tuple(order)


def _gather(t: np.ndarray, stage: Stage, sizes: dict[str, int]) -> np.ndarray:
    """The intermediate as a ``(Q, K)`` matrix: rows over ``rest``, columns over ``shared`` (row-major)."""
    tens = t.reshape([sizes[a] for a in stage.t_axes])
    perm = [stage.t_axes.index(a) for a in stage.rest + stage.shared]
    return tens.transpose(perm).reshape(stage.Q, stage.K)


def _factor_matrix(f: Factor, stage: Stage) -> np.ndarray:
    """The factor as an ``(R, K)`` matrix: rows over ``new``, columns over ``shared`` (row-major)."""
    perm = [f.axes.index(a) for a in stage.new + stage.shared]
    return f.data.transpose(perm).reshape(stage.R, stage.K)


def contract_stage(t: np.ndarray, f: Factor, stage: Stage, sizes: dict[str, int]) -> np.ndarray:
    """Float stage: the flat result (axes ``rest + new``, row-major) of contracting ``t`` with ``f``."""
    return (_gather(np.asarray(t, dtype=np.float64), stage, sizes) @ _factor_matrix(f, stage).T).reshape(-1)


def _final(t: np.ndarray, axes: tuple[str, ...], sizes: dict[str, int], d: int) -> np.ndarray:
    want = [f"m{k + 1}" for k in range(d)]
    tens = t.reshape([sizes[a] for a in axes])
    return tens.transpose([axes.index(a) for a in want]).reshape(-1)


def matvec(fmt, x, order=None) -> np.ndarray:
    """Float ``W @ x`` (``x`` of length N, or ``(N, B)`` for B vectors) computed stage by stage."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return np.stack([matvec(fmt, x[:, b], order) for b in range(x.shape[1])], axis=1)
    if x.shape != (fmt.shape[1],):
        raise HwsimError(f"x shape={x.shape} is not allowed: expected ({fmt.shape[1]},)")
    sizes = fmt.sizes()
    t, axes = x, None
    for st in plan_stages(fmt, order):
        t = contract_stage(t, fmt.factors[st.factor], st, sizes)
        axes = st.out_axes
    return _final(t, axes, sizes, fmt.d)


def to_dense(fmt) -> np.ndarray:
    """The full ``(M, N)`` matrix (for tests and small shapes only)."""
    names = {}

    def sym(a):
        return names.setdefault(a, chr(ord("a") + len(names)) if len(names) < 26 else chr(ord("A") + len(names) - 26))

    subs = ",".join("".join(sym(a) for a in f.axes) for f in fmt.factors)
    out = "".join(sym(f"m{k + 1}") for k in range(fmt.d)) + "".join(sym(f"n{k + 1}") for k in range(fmt.d))
    full = np.einsum(f"{subs}->{out}", *[f.data for f in fmt.factors], optimize=True)
    return full.reshape(fmt.shape)


# ---------------------------------------------------------------------------------------------- decompositions
def _as_mode_tensor(W: np.ndarray, m, n) -> np.ndarray:
    """``W`` as a tensor ``(m1, ..., md, n1, ..., nd)``."""
    return np.asarray(W, dtype=np.float64).reshape(*m, *n)


def _rank_for(sv: np.ndarray, budget: float) -> int:
    """Smallest r whose discarded squared singular values sum to at most ``budget``."""
    tail = np.concatenate([np.cumsum((sv ** 2)[::-1])[::-1], [0.0]])
    return max(1, int(np.argmax(tail <= budget)))


def tt_from_dense(W, out_modes, in_modes, ranks=None, tol: float | None = None) -> TTMatrix:
    """TT-SVD of ``W`` (``tensorly.decomposition.tensor_train_matrix``).

    Give ``ranks`` (an int: every inner rank at most that; or ``[1, r_1, ..., r_{d-1}, 1]``), or ``tol``,
    a relative Frobenius error bound: rank ``k`` is then the smallest whose discarded singular-value energy
    of unfolding ``k`` is at most ``tol**2 ||W||^2 / (d-1)`` (Oseledets 2011, Thm 2.2). Ranks above an
    unfolding's full rank are clipped to it; at full rank the decomposition is exact.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise HwsimError(f"W shape={W.shape} is not allowed: expected a matrix")
    m, n = check_modes(W.shape, out_modes, in_modes)
    d = len(m)
    X = _as_mode_tensor(W, m, n).transpose([i for k in range(d) for i in (k, d + k)])  # (m1 n1 m2 n2 ...)
    full = [1] + [min(math.prod(m[:k]) * math.prod(n[:k]), math.prod(m[k:]) * math.prod(n[k:]))
                  for k in range(1, d)] + [1]
    if (ranks is None) == (tol is None):
        raise HwsimError("ranks/tol is not allowed: expected exactly one of ranks or tol")
    if tol is not None:
        if not isinstance(tol, int | float) or not 0 <= tol < 1:
            raise HwsimError(f"tol={tol!r} is not allowed: expected a number in [0, 1)")
        budget = tol ** 2 * float(np.sum(W ** 2)) / max(d - 1, 1)
        r = [1]
        for k in range(1, d):
            sv = np.linalg.svd(X.reshape(math.prod(X.shape[:2 * k]), -1), compute_uv=False)
            r.append(min(_rank_for(sv, budget), full[k]))
        r.append(1)
    elif isinstance(ranks, int | np.integer) and not isinstance(ranks, bool):
        if ranks < 1:
            raise HwsimError(f"ranks={ranks} is not allowed: expected an integer >= 1")
        r = [1] + [min(int(ranks), f) for f in full[1:-1]] + [1]
    else:
        r = list(_pos_ints("ranks", ranks))
        if len(r) != d + 1 or r[0] != 1 or r[-1] != 1:
            raise HwsimError(f"ranks={r} is not allowed: expected {d + 1} integers >= 1 starting and ending with 1")
        r = [min(a, f) for a, f in zip(r, full, strict=True)]
    import tensorly as tl
    from tensorly.decomposition import tensor_train_matrix

    tl.set_backend("numpy")
    tt = tensor_train_matrix(_as_mode_tensor(W, m, n), r)
    facs = []
    for k, core in enumerate(tt.factors):
        core = np.asarray(core, dtype=np.float64)
        axes, shape = TTMatrix.shapes(m, n, [c.shape[0] for c in tt.factors] + [1])[k]
        facs.append(Factor(f"G{k + 1}", axes, core.reshape(shape)))
    return TTMatrix(m, n, tuple(facs))


def ht_from_dense(W, out_modes, in_modes, ranks=None, tol: float | None = None, tree=None) -> HTMatrix:
    """Hierarchical SVD of ``W`` over ``tree`` (default: :func:`balanced_tree`).

    Every non-root node ``t`` gets the leading ``r_t`` left singular vectors of the matricization of
    ``W``'s (m_k n_k)-paired tensor with the modes of ``t`` as rows; transfer tensors project the
    children's bases onto the parent's. ``ranks``: an int (every node at most that) or a dict node ->
    rank; or ``tol``: relative Frobenius bound, each node discarding at most ``tol**2 ||W||^2 / (2d-3)``
    (Grasedyck 2010, Thm 3.11). Ranks are clipped to full rank; at full rank the result is exact.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 2:
        raise HwsimError(f"W shape={W.shape} is not allowed: expected a matrix")
    m, n = check_modes(W.shape, out_modes, in_modes)
    d = len(m)
    tree = balanced_tree(d) if tree is None else tree
    check_tree(tree, d)
    root = _root(tree)
    if (ranks is None) == (tol is None):
        raise HwsimError("ranks/tol is not allowed: expected exactly one of ranks or tol")
    X = _as_mode_tensor(W, m, n).transpose([i for k in range(d) for i in (k, d + k)])
    X = X.reshape([m[k] * n[k] for k in range(d)])
    dims = X.shape
    budget = None if tol is None else tol ** 2 * float(np.sum(W ** 2)) / max(2 * d - 3, 1)
    if tol is not None and (not isinstance(tol, int | float) or not 0 <= tol < 1):
        raise HwsimError(f"tol={tol!r} is not allowed: expected a number in [0, 1)")
    bases: dict = {}
    r: dict = {}
    for t in tree.nodes:
        if t == root:
            continue
        rows = _leaf_order(tree, t)
        other = [k for k in range(d) if k not in rows]
        mat = X.transpose(list(rows) + other).reshape(math.prod(dims[k] for k in rows), -1)
        u, sv, _ = np.linalg.svd(mat, full_matrices=False)
        if budget is not None:
            rt = _rank_for(sv, budget)
        else:
            want = ranks if isinstance(ranks, int | np.integer) else ranks[t]
            if isinstance(want, bool) or not isinstance(want, int | np.integer) or want < 1:
                raise HwsimError(f"ranks[{t}]={want!r} is not allowed: expected an integer >= 1")
            rt = int(want)
        rt = min(rt, len(sv))
        r[t] = rt
        bases[t] = u[:, :rt]
    datas = {}
    for k in range(d):
        leaf = (k,)
        if leaf == root:
            datas["U1"] = W.reshape(m[0], n[0])
        else:
            datas[f"U{k + 1}"] = bases[leaf].reshape(m[k], n[k], r[leaf])
    for t in _postorder(tree):
        if len(t) == 1:
            continue
        left, right = _children(tree, t)
        dl = math.prod(dims[k] for k in _leaf_order(tree, left))
        dr = math.prod(dims[k] for k in _leaf_order(tree, right))
        if t == root:
            target = X.transpose(list(_leaf_order(tree, t))).reshape(dl, dr)
            datas[f"B{_hlabel(t)[1:]}"] = bases[left].T @ target @ bases[right]
        else:
            ut = bases[t].reshape(dl, dr, r[t])
            datas[f"B{_hlabel(t)[1:]}"] = np.einsum("xa,yb,xyc->abc", bases[left], bases[right], ut)
    facs = tuple(Factor(name, axes, datas[name].reshape(shape))
                 for name, axes, shape in HTMatrix.shapes(m, n, tree, {t: r[t] for t in r}))
    return HTMatrix(m, n, tree, facs)


# ---------------------------------------------------------------------------------------------- fixed point
def round_shift(x: np.ndarray, shift: int, rounding: str) -> np.ndarray:
    """Arithmetic right shift of int64 ``x`` by ``shift >= 0`` with rounding ``half_up`` (ties towards
    +inf: ``(x + 2**(s-1)) >> s``) or ``half_even`` (ties to the even neighbour)."""
    x = np.asarray(x, dtype=np.int64)
    if shift == 0:
        return x
    if rounding == "half_up":
        return (x + np.int64(1 << (shift - 1))) >> shift
    q = x >> shift
    rem = x & np.int64((1 << shift) - 1)
    half = np.int64(1 << (shift - 1))
    return q + ((rem > half) | ((rem == half) & ((q & 1) == 1))).astype(np.int64)


def _wrap(x: np.ndarray, bits: int) -> np.ndarray:
    low = x & np.int64((1 << bits) - 1)
    return np.where(low >= (1 << (bits - 1)), low - np.int64(1 << bits), low)


def stage_fixed(t: np.ndarray, f: Factor, stage: Stage, sizes: dict[str, int], *, data_bits: int, acc_bits: int,
                overflow: str, rounding: str, shift: int) -> np.ndarray:
    """Bit-exact fixed-point stage: flat int64 result (axes ``rest + new``).

    For output ``(q, p)``: ``acc`` is a signed ``acc_bits`` register starting at 0, updated in reduction
    order ``k = 0..K-1`` (the shared axes row-major in the factor's axis order):
    ``acc = ovf(acc + T[q, k] * F[p, k])`` with ``ovf`` saturating to the register's range or wrapping
    modulo ``2**acc_bits``. Then ``y = clamp(round_shift(acc, shift, rounding))`` to signed ``data_bits``.
    Operands must be signed ``data_bits`` integers. Saturation is order dependent; when no partial sum
    can leave the register (``K * max|T| * max|F| <= 2**(acc_bits-1) - 1``) the sum is one exact int64
    matrix product, otherwise it is accumulated step by step (vectorized over all outputs).
    """
    lo, hi = -(1 << (data_bits - 1)), (1 << (data_bits - 1)) - 1
    v = _gather(np.asarray(t, dtype=np.int64), stage, sizes)
    w = _factor_matrix(Factor(f.name, f.axes, np.asarray(f.data, dtype=np.int64)), stage)
    for name, a in (("intermediate", v), (f"factor {f.name}", w)):
        if a.size and (a.min() < lo or a.max() > hi):
            raise HwsimError(f"{name} values in [{a.min()}, {a.max()}] are not allowed: expected signed "
                             f"{data_bits}-bit integers in [{lo}, {hi}]")
    amax = (1 << (acc_bits - 1)) - 1
    amin = -(1 << (acc_bits - 1))
    bound = int(np.abs(v).max(initial=0)) * int(np.abs(w).max(initial=0)) * stage.K
    if overflow == "wrap":
        acc = _wrap(v @ w.T, acc_bits)  # modular: wrapping after every add == wrapping the exact sum
    elif bound <= amax:
        acc = v @ w.T
    else:
        acc = np.zeros((stage.Q, stage.R), dtype=np.int64)
        for k in range(stage.K):
            acc = np.clip(acc + v[:, k:k + 1] * w[:, k][None, :], amin, amax)
    return np.clip(round_shift(acc, shift, rounding), lo, hi).reshape(-1)


def final_permutation(fmt, order=None) -> np.ndarray:
    """Index map of the engine's last intermediate to ``y``: ``y = t_final[perm]``."""
    stages = plan_stages(fmt, order)
    sizes = fmt.sizes()
    idx = np.arange(fmt.shape[0], dtype=np.int64)
    return _final(idx, stages[-1].out_axes, sizes, fmt.d)


def matvec_fixed(fmt, x, shifts, *, data_bits: int, acc_bits: int, overflow: str, rounding: str,
                 order=None) -> np.ndarray:
    """Bit-exact fixed-point ``W x`` over integer factors: :func:`stage_fixed` per stage, ``shifts[i]``
    the requantization shift after the ``i``-th stage run; the result in natural ``(m1..md)`` order."""
    stages = plan_stages(fmt, order)
    shifts = list(shifts)
    if len(shifts) != len(stages) or any(isinstance(s, bool) or not isinstance(s, int | np.integer) or s < 0
                                         or s >= acc_bits for s in shifts):
        raise HwsimError(f"shifts={shifts} is not allowed: expected {len(stages)} integers in [0, {acc_bits - 1}]")
    x = np.asarray(x, dtype=np.int64)
    if x.shape != (fmt.shape[1],):
        raise HwsimError(f"x shape={x.shape} is not allowed: expected ({fmt.shape[1]},)")
    sizes = fmt.sizes()
    t = x
    for st, s in zip(stages, shifts, strict=True):
        t = stage_fixed(t, fmt.factors[st.factor], st, sizes, data_bits=data_bits, acc_bits=acc_bits,
                        overflow=overflow, rounding=rounding, shift=int(s))
    return _final(t, stages[-1].out_axes, sizes, fmt.d)
