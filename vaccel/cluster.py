"""k-means clustering: `KMeans` with scikit-learn's interface and its Lloyd semantics, and
`assign`, the nearest-centre search other ops reuse (PQ encoding, IVF list assignment; with
results kept on the device: `_assign_device`; in C: va_kmeans_assign).

On the Vulkan backend X goes to the device once per fit (a vaccel.Array is used in place) and stays
there: greedy k-means++ runs every step on the device; each Lloyd iteration is one recorded piece of
work (fused assignment, counting sort by label, exact fixed-point sums, new centres, statistics),
waited for once, and reads back 20 bytes (rows whose label changed, empty clusters, inertia, centre
shift, rows assigned in full). The assignment keeps Hamerly's bounds (one lower bound per row, in
device memory): after the first iteration only the rows whose bounds cannot prove that their centre
is still the nearest under float32 rounding are assigned in full, and every iteration gives the
labels, distances and centres of a full assignment to the bit (VACCEL_KMEANS_BOUNDS=0: always in
full). Empty clusters, when there are any, are re-seeded on the host from the farthest points. The
data are centred on their column means for the whole fit (as scikit-learn does), so the GEMM-form
scores stay accurate far from the origin. Everything is computed in float32 (float16 X stays
float16 on the device); the CPU backend runs the same algorithm in float64 (vaccel.cpu).
"""

import math
import numbers
import os
import sys
import warnings

import numpy as np

from . import cpu, runtime
from .errors import NotFittedError
from .reductions import statistics

__all__ = ["KMeans", "ConvergenceWarning", "assign"]

# Rows of X per binding window (0: as many as the device's binding range holds). Tests lower it to
# exercise the split of X into windows.
_MAX_ROWS = 0


_OFF = ("0", "false", "no", "off")


def _coop(n, k, d):
    """Whether an assignment of n rows to k centres of d features asks for the tensor-core kernel
    (kmeans_coop.comp; the C side takes it where the device has cooperative matrices, else the
    float32 one): VACCEL_KMEANS_COOP=0 never, =1 always; by default where the GEMM is large enough
    to pay for the float16 copy of the rows and the exact distances (n >= 32768, k >= 128, d >= 32)."""
    env = os.environ.get("VACCEL_KMEANS_COOP", "").strip().lower()
    if env in _OFF:
        return False
    if env:
        return True
    return n >= 32768 and k >= 128 and d >= 32


def _device_has_coop():
    if runtime.get_backend() != "vulkan" or os.environ.get("VACCEL_NO_COOPMAT", "").strip() not in ("",) + _OFF:
        return False
    return bool(runtime.context().info().get("cooperative_matrix"))


def _bounds_enabled(n, k, d):
    """Hamerly's bounds in the device fit: VACCEL_KMEANS_BOUNDS=1 / 0 says; by default on, except
    where the tensor-core assignment serves (every row at its rate beats the bounds' test pass
    plus the rows they cannot skip, on all but well-separated data)."""
    env = os.environ.get("VACCEL_KMEANS_BOUNDS", "").strip().lower()
    if env:
        return env not in _OFF
    return not (_coop(n, k, d) and _device_has_coop())


class ConvergenceWarning(UserWarning):
    """Fewer distinct clusters than asked for (duplicate points), as scikit-learn warns."""


# ---- arguments ------------------------------------------------------------------------------------

def _matrix(X, name="X", estimator="KMeans"):
    """X as a 2-D NumPy array of numbers or a 2-D vaccel.Array, with scikit-learn's messages."""
    if runtime._is_array(X):
        if X.ndim != 2:
            raise ValueError(f"Expected 2D array, got {X.ndim}D array instead ({name} shape {X.shape})")
        a = X
    else:
        if X is None:
            raise TypeError(f"{name} must be an array, got None")
        try:
            a = np.asarray(X)
        except Exception as exc:
            raise TypeError(f"{name} must be array-like: {exc}") from None
        if a.dtype == object or a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"Expected 2D array, got {a.ndim}D array instead ({name} shape {a.shape}); "
                             "reshape with X.reshape(-1, 1) for a single feature or X.reshape(1, -1) for a single sample")
    n, d = a.shape
    if n == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={a.shape}) while a minimum of 1 is required by {estimator}.")
    if d == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={a.shape}) while a minimum of 1 is required by {estimator}.")
    return a


def _result_dtype(dtype):
    """scikit-learn keeps float32 and computes everything else in float64; float16 is kept in
    float32 here (it is computed in float32)."""
    return np.dtype(np.float32) if np.dtype(dtype) in (np.float16, np.float32) else np.dtype(np.float64)


def _device_dtype(dtype):
    dt = np.dtype(dtype)
    if dt == np.float16 and runtime.device_info()["storage_16bit"]:
        return dt
    return np.dtype(np.float32)


def _check_finite(nan, inf, name="X"):
    if nan:
        raise ValueError(f"Input {name} contains NaN.")
    if inf:
        raise ValueError(f"Input {name} contains infinity or a value too large for float32.")


def _host_finite(a, name="X"):
    with np.errstate(over="ignore", invalid="ignore"):
        v = a.astype(np.float32) if a.dtype.kind == "f" and a.dtype.itemsize > 4 else a
        if v.dtype.kind == "f" and not np.isfinite(v).all():
            _check_finite(np.isnan(v).any(), True, name)


def _weights(sample_weight, n):
    """float64 weights or None (all ones)."""
    if sample_weight is None:
        return None
    if runtime._is_array(sample_weight):
        sample_weight = sample_weight.numpy()
    if isinstance(sample_weight, numbers.Number):
        w = np.full(n, float(sample_weight))
    else:
        try:
            w = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"sample_weight must hold numbers: {exc}") from None
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight.shape == {w.shape}, expected ({n},)!")
    if not np.isfinite(w).all():
        raise ValueError("sample_weight must be finite")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative")
    if w.sum() <= 0:
        raise ValueError("sample_weight must have a positive sum")
    return w


def _check_random_state(seed):
    """None (NumPy's global RandomState), an int, a RandomState or a Generator."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    if isinstance(seed, (numbers.Integral, np.integer)):
        return np.random.RandomState(int(seed))
    raise ValueError(f"random_state: {seed!r} cannot be used to seed a numpy.random.RandomState instance "
                     "(use None, an int, a RandomState or a Generator)")


def _pow2_scales(M, wtot):
    """Fixed-point scales for the device's exact sums: per column a power of two s with
    Σ|w (x - shift)| s <= wtot * M * s < 2^62 (M: the column's largest |x - shift|), and one for the
    weights themselves."""
    M = np.asarray(M, np.float64) * 1.01 + 1e-300
    with np.errstate(divide="ignore", over="ignore"):
        e = np.floor(np.log2(2.0 ** 62 / (wtot * M)))
    e = np.clip(np.where(np.isfinite(e), e, 0.0), -120, 120)
    ew = np.clip(np.floor(np.log2(2.0 ** 62 / (wtot * 1.01))), -120, 120)
    return np.exp2(np.concatenate([e, [ew]])).astype(np.float32)


def _is_same_clustering(a, b, k):
    """Whether labels a map onto labels b one to one (scikit-learn's test between n_init runs)."""
    pairs = np.unique(a.astype(np.int64) * k + b.astype(np.int64))
    return np.unique(pairs // k).size == pairs.size


# ---- progress -------------------------------------------------------------------------------------

class _Progress:
    """A tqdm bar over the iterations when tqdm is installed, else scikit-learn's log lines."""

    def __init__(self, verbose, max_iter, run, n_init):
        self.on = bool(verbose)
        self.bar = None
        if not self.on:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None:
            desc = "KMeans" + (f" init {run + 1}/{n_init}" if n_init > 1 else "")
            self.bar = tqdm(total=max_iter, desc=desc, unit="it", leave=False)

    def line(self, text):
        if not self.on:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text)
            sys.stdout.flush()

    def iteration(self, i, inertia, shift):
        if not self.on:
            return
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(inertia=f"{inertia:.6g}", shift=f"{shift:.3g}")
        else:
            self.line(f"Iteration {i}, inertia {inertia:.6g}.")

    def close(self):
        if self.bar is not None:
            self.bar.close()


# ---- the device path ------------------------------------------------------------------------------

class _Device:
    """X on the device with what a fit needs: its column means, fixed-point scales, weights."""

    def __init__(self, X, w):
        self.n, self.d = X.shape
        if runtime._is_array(X):
            self.host = None
            dt = _device_dtype(X.dtype)
            self.x = X if X.dtype == dt else runtime.asarray(X.numpy().astype(dt))
        else:
            dt = _device_dtype(X.dtype)
            with np.errstate(over="ignore"):
                self.host = np.ascontiguousarray(X, dtype=dt)
            self.x = runtime.asarray(self.host)
        st = statistics(self.x, axis=0)
        lo, hi = st["min"].astype(np.float64), st["max"].astype(np.float64)
        _check_finite(np.isnan(lo).any() or np.isnan(hi).any() or np.isnan(st["mean"]).any(),
                      np.isinf(lo).any() or np.isinf(hi).any())
        self.mu = np.ascontiguousarray(st["mean"], np.float32)
        self.var_mean = float(np.mean(st["var"].astype(np.float64)))
        mu64 = self.mu.astype(np.float64)
        spread = np.maximum(hi - mu64, mu64 - lo)
        self.w = w
        self.wtot = float(self.n if w is None else w.sum())
        self.mu_dev = runtime.asarray(self.mu)
        self.scales = runtime.asarray(_pow2_scales(spread, self.wtot))
        self.w_dev = None if w is None else runtime.asarray(w.astype(np.float32))

    # -- initial centres, in the centred frame, as device arrays --
    def plusplus(self, k, rs):
        n_trials = 2 + int(np.log(k))
        p = (np.ones(self.n) if self.w is None else self.w) / self.wtot
        first = int(rs.choice(self.n, p=p))
        u = rs.uniform(size=(k - 1) * n_trials).astype(np.float32) if k > 1 else np.zeros(1, np.float32)
        centres = runtime.empty((k, self.d), np.float32)
        idx = np.empty(k, np.uint32)
        ins = (self.x, self.mu_dev, u) + (() if self.w_dev is None else (self.w_dev,))
        runtime.run_op("kmeans_plusplus", ins, (centres, idx), (first, n_trials, int(self.w_dev is not None), _MAX_ROWS),
                       names={("in", 0): "X", ("in", 3): "sample_weight"})
        return centres

    def rows(self, idx):
        centres = runtime.empty((len(idx), self.d), np.float32)
        runtime.run_op("kmeans_gather", (self.x, np.asarray(idx, np.uint32), self.mu_dev), (centres,), (1, _MAX_ROWS),
                       names={("in", 0): "X"})
        return centres

    def given(self, init):
        return runtime.asarray((init - self.mu.astype(np.float64)).astype(np.float32))

    def host_rows(self, idx):
        if self.host is not None:
            return self.host[idx].astype(np.float64)
        return np.stack([self.x[int(i)].numpy() for i in idx]).astype(np.float64)

    # -- Lloyd --
    def step(self, centres, centres_out, labels_prev, labels_out, dists, aux, stats, lower=None, centres_prev=None):
        """One Lloyd iteration from `centres` (one submit, one wait); stats (uint32 words, host)
        receives rows changed, empty clusters, inertia and total squared shift (float bits), and
        with bounds (lower: the rows' lower bounds, a float32 device array (n,); centres_prev: the
        centres of the step that produced labels_prev) a fifth word, the rows assigned in full."""
        has_w = self.w_dev is not None
        bounded = lower is not None
        ins = (self.x, self.mu_dev, self.scales, centres) + (() if labels_prev is None else (labels_prev,)) + \
            (() if not has_w else (self.w_dev,)) + ((centres_prev,) if bounded and labels_prev is not None else ())
        outs = (centres_out, labels_out, dists, aux, stats) + ((lower,) if bounded else ())
        coop = int(not bounded and _coop(self.n, centres.shape[0], self.d))
        runtime.run_op("kmeans_step", ins, outs,
                       (int(labels_prev is not None), int(has_w), 1, _MAX_ROWS, int(bounded), coop),
                       names={("in", 0): "X"})
        if runtime.in_batch():
            runtime.synchronize()   # the statistics decide what happens next

    def lloyd(self, centres, max_iter, tol, progress):
        n, k = self.n, centres.shape[0]
        bounded = _bounds_enabled(n, k, self.d)
        cur, nxt = centres, runtime.empty((k, self.d), np.float32)
        # With bounds, the centres of the previous step too (the bounds move with their drift).
        spare = runtime.empty((k, self.d), np.float32) if bounded else None
        lower = runtime.empty(n, np.float32) if bounded else None
        labels = [runtime.empty(n, np.uint32), runtime.empty(n, np.uint32)]
        dists = runtime.empty(n, np.float32)
        aux = runtime.empty(2 * k + 4, np.float32)
        stats = np.zeros(5 if bounded else 4, np.uint32)
        prev = None
        prev_c = None
        strict = False
        last_relocation = -10
        self.rows_assigned = []   # rows assigned in full, per iteration (then the final assignment)
        it = 0
        for it in range(max_iter):
            out = labels[it % 2]
            self.step(cur, nxt, prev, out, dists, aux, stats, lower, prev_c if prev is not None else None)
            self.rows_assigned.append(int(stats[4]) if bounded else n)
            changed, n_empty = int(stats[0]), int(stats[1])
            inertia, shift = (float(v) for v in stats[2:4].view(np.float32))
            if n_empty:
                shift = self._relocate(cur, nxt, aux, dists, out, k)
                last_relocation = it
            progress.iteration(it, inertia, shift)
            if bounded:
                prev_c, cur, nxt = cur, nxt, (spare if prev_c is None else prev_c)
            else:
                cur, nxt = nxt, cur
            if prev is not None and changed == 0:
                strict = True
                progress.line(f"Converged at iteration {it}: strict convergence.")
                break
            prev = out
            if shift <= tol:
                progress.line(f"Converged at iteration {it}: center shift {shift:g} within tolerance {tol:g}.")
                break
        if strict and it - last_relocation >= 2:
            final = out   # the labels and distances of the last step are those of these centres
        else:
            final = labels[(it + 1) % 2]
            if bounded:
                listed = np.zeros(1, np.uint32)
                runtime.run_op("kmeans_assign_bounded", (self.x, self.mu_dev, cur, prev_c, out),
                               (final, dists, lower, listed), (1, _MAX_ROWS), names={("in", 0): "X"})
                if runtime.in_batch():
                    runtime.synchronize()
                self.rows_assigned.append(int(listed[0]))
            else:
                runtime.run_op("kmeans_assign", (self.x, cur, self.mu_dev), (final, dists),
                               (0, 1, 1, _MAX_ROWS, int(_coop(n, k, self.d))),
                               names={("in", 0): "X"})
                self.rows_assigned.append(n)
        lab = final.numpy().astype(np.int32)
        d = dists.numpy().astype(np.float64)
        inertia = float(d.sum() if self.w is None else d @ self.w)
        return lab, inertia, cur.numpy(), it + 1

    def _relocate(self, old, new, aux, dists, labels, k):
        """Re-seeds empty clusters as scikit-learn does: the points farthest from their centres
        (ties: the lower row) move to the empty clusters in order. Host work on O(k·d) data plus
        the labels; only runs when a cluster is empty. Returns the new total squared shift."""
        a = aux.numpy().astype(np.float64)
        wsum = a[:k].copy()
        empty = np.flatnonzero(wsum <= 0)
        dv = runtime.Array(dists._buf, (1, self.n), np.float32, dists._offset)
        from .search import topk
        _, far = topk(dv, empty.size, largest=True)
        far = far[0]
        lab = labels.numpy().astype(np.int64)
        xs = self.host_rows(far) - self.mu.astype(np.float64)
        c_old = old.numpy().astype(np.float64)
        c_new = new.numpy().astype(np.float64)
        w = np.ones(self.n) if self.w is None else self.w
        sums = c_new * wsum[:, None]
        for e, p, xp in zip(empty, far, xs):
            o = lab[p]
            sums[o] -= w[p] * xp
            wsum[o] -= w[p]
            sums[e] = w[p] * xp
            wsum[e] = w[p]
        c_new = np.where(wsum[:, None] > 0, sums / np.where(wsum > 0, wsum, 1.0)[:, None], sums)
        new._assign(c_new.astype(np.float32))
        return float(((new.numpy().astype(np.float64) - c_old) ** 2).sum())


# ---- the host path (CPU backend) ------------------------------------------------------------------

class _Host:
    def __init__(self, X, w):
        a = X.numpy() if runtime._is_array(X) else np.asarray(X)
        _host_finite(a)
        x = cpu._as_f32(a).astype(np.float64)
        self.n, self.d = x.shape
        self.mu = x.mean(axis=0)
        self.var_mean = float(np.mean(x.var(axis=0)))
        self.x = x - self.mu
        self.w = w

    def plusplus(self, k, rs):
        return cpu.kmeans_plusplus(self.x, k, rs, self.w)[0]

    def rows(self, idx):
        return self.x[np.asarray(idx, np.int64)].copy()

    def given(self, init):
        return np.asarray(init, np.float64) - self.mu

    def lloyd(self, centres, max_iter, tol, progress):
        def on_iteration(i, inertia, shift):
            progress.iteration(i, inertia, shift)
        labels, inertia, c, n_iter, strict = cpu.kmeans_lloyd(self.x, centres, max_iter, tol, self.w, on_iteration)
        if strict:
            progress.line(f"Converged at iteration {n_iter - 1}: strict convergence.")
        elif n_iter < max_iter:
            progress.line(f"Converged at iteration {n_iter - 1}: center shift within tolerance {tol:g}.")
        return labels.astype(np.int32), inertia, c, n_iter


# ---- the public helper ----------------------------------------------------------------------------

def assign(x, centres):
    """(labels int64 (n,), squared distances float32 (n,)): the nearest centre of every row of x,
    ties to the lowest centre index, distances recomputed directly from the coordinates. x and
    centres are NumPy arrays or vaccel.Arrays (float32 or float16 on the device; anything else is
    converted to float32). One fused kernel on the device (no n x k matrix). Rows holding NaN get
    an unspecified label."""
    x = runtime.numeric(x, "x")
    c = runtime.numeric(centres, "centres")
    if x.ndim != 2 or c.ndim != 2:
        raise ValueError(f"x and centres must be 2-D, got shapes {x.shape} and {c.shape}")
    if x.shape[1] != c.shape[1]:
        raise ValueError(f"x has {x.shape[1]} features but centres have {c.shape[1]}")
    if c.shape[0] < 1:
        raise ValueError("centres must hold at least one row")
    n = x.shape[0]
    if runtime.get_backend() == "cpu":
        return cpu.kmeans_assign(x.numpy() if runtime._is_array(x) else x, c.numpy() if runtime._is_array(c) else c)
    if n == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    ch = (c.numpy() if runtime._is_array(c) else c).astype(np.float64)
    mu = ch.mean(axis=0).astype(np.float32)
    cc = np.ascontiguousarray(ch - mu, np.float32)
    if not runtime._is_array(x) or x.dtype != _device_dtype(x.dtype):
        h = x.numpy() if runtime._is_array(x) else x
        with np.errstate(over="ignore"):
            x = h.astype(_device_dtype(h.dtype), copy=False)
    labels = np.empty(n, np.uint32)
    dist = np.empty(n, np.float32)
    runtime.run_op("kmeans_assign", (x, cc, mu), (labels, dist), (0, 1, 1, _MAX_ROWS, int(_coop(n, *cc.shape))),
                   names={("in", 0): "x", ("in", 1): "centres"})
    if runtime.in_batch():
        runtime.synchronize()
    return labels.astype(np.int64), dist


def _assign_device(x, centres, shift=None, labels=None, dists=None):
    """The assignment with its results left on the device, for ops built on it (IVF list
    assignment, PQ encoding): (labels uint32 Array (n,), squared distances float32 Array (n,)).
    x: a float32/float16 Array or NumPy array (n, d), rows may be strided; centres: float32 (k, d)
    in the frame of x − shift (shift: float32 (d,) or None). labels/dists: Arrays to write into."""
    n = x.shape[0]
    labels = runtime.empty(n, np.uint32) if labels is None else labels
    dists = runtime.empty(n, np.float32) if dists is None else dists
    ins = (x, centres) if shift is None else (x, centres, shift)
    if n:
        runtime.run_op("kmeans_assign", ins, (labels, dists),
                       (0, int(shift is not None), 1, _MAX_ROWS, int(_coop(n, centres.shape[0], x.shape[1]))),
                       names={("in", 0): "x", ("in", 1): "centres", ("in", 2): "shift"})
    return labels, dists


# ---- the estimator --------------------------------------------------------------------------------

_PARAMS = ("n_clusters", "init", "n_init", "max_iter", "tol", "random_state", "verbose")


class KMeans:
    """k-means clustering with scikit-learn's interface and Lloyd semantics.

    KMeans(n_clusters=8, *, init='k-means++', n_init='auto', max_iter=300, tol=1e-4,
           random_state=None, verbose=False)

    init: 'k-means++' (greedy, 2 + int(log k) candidates per step, as scikit-learn), 'random' (k
    distinct rows drawn with probability ∝ sample_weight) or an array of shape (n_clusters,
    n_features). n_init: runs from different seeds, the one with the lowest inertia kept; 'auto'
    is 1 for 'k-means++' and an array, 10 for 'random'. tol: relative to the mean per-feature
    variance of X, compared with Σ‖c_new − c‖² after each iteration (labels that stop changing end
    the run too). random_state: None, an int, a numpy RandomState or Generator. verbose: a tqdm
    progress bar when tqdm is installed, else a log line per iteration.

    After fit: cluster_centers_ (float32 for float32/float16 X, else float64), labels_ (int32),
    inertia_ (Σ w‖x − c‖² against the final centres), n_iter_, n_features_in_. predict/transform/
    score before fit raise vaccel.NotFittedError (a ValueError and an AttributeError, as
    scikit-learn's). Computation is float32 on the device (float64 on the CPU backend)."""

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4,
                 random_state=None, verbose=False):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    # -- scikit-learn's estimator protocol --
    def get_params(self, deep=True):
        return {p: getattr(self, p) for p in _PARAMS}

    def set_params(self, **params):
        for key, value in params.items():
            if key not in _PARAMS:
                raise ValueError(f"Invalid parameter {key!r} for estimator KMeans; valid parameters: {_PARAMS}")
            setattr(self, key, value)
        return self

    def __repr__(self):
        defaults = {"n_clusters": 8, "init": "k-means++", "n_init": "auto", "max_iter": 300, "tol": 1e-4,
                    "random_state": None, "verbose": False}
        parts = []
        for p in _PARAMS:
            v = getattr(self, p)
            if isinstance(v, np.ndarray) or not (v is defaults[p] or v == defaults[p]):
                parts.append(f"{p}={'array' if isinstance(v, np.ndarray) else repr(v)}")
        return f"KMeans({', '.join(parts)})"

    def _check_params(self, d):
        k = self.n_clusters
        if isinstance(k, bool) or not isinstance(k, (numbers.Integral, np.integer)):
            raise TypeError(f"n_clusters must be an int, got {k!r}")
        if k < 1:
            raise ValueError(f"n_clusters must be at least 1, got {k}")
        mi = self.max_iter
        if isinstance(mi, bool) or not isinstance(mi, (numbers.Integral, np.integer)):
            raise TypeError(f"max_iter must be an int, got {mi!r}")
        if mi < 1:
            raise ValueError(f"max_iter must be at least 1, got {mi}")
        tol = self.tol
        if isinstance(tol, bool) or not isinstance(tol, (numbers.Real, np.floating, np.integer)):
            raise TypeError(f"tol must be a number, got {tol!r}")
        if not tol >= 0:
            raise ValueError(f"tol must be non-negative, got {tol}")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(f"init must be 'k-means++', 'random' or an array, got {init!r}")
        else:
            arr = init.numpy() if runtime._is_array(init) else init
            try:
                arr = np.asarray(arr, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"init must be 'k-means++', 'random' or an array of numbers: {exc}") from None
            if arr.ndim != 2 or arr.shape[0] != k:
                raise ValueError(f"The shape of the initial centers {arr.shape} does not match the number of "
                                 f"clusters {k}.")
            if arr.shape[1] != d:
                raise ValueError(f"The shape of the initial centers {arr.shape} does not match the number of "
                                 f"features of the data {d}.")
            if not np.isfinite(arr).all():
                raise ValueError("init contains NaN or infinity.")
            init = arr
        n_init = self.n_init
        if isinstance(n_init, str):
            if n_init != "auto":
                raise ValueError(f"n_init must be 'auto' or an int >= 1, got {n_init!r}")
            n_init = 10 if isinstance(init, str) and init == "random" else 1
        elif isinstance(n_init, bool) or not isinstance(n_init, (numbers.Integral, np.integer)):
            raise TypeError(f"n_init must be 'auto' or an int, got {n_init!r}")
        elif n_init < 1:
            raise ValueError(f"n_init must be at least 1, got {n_init}")
        if not isinstance(init, str) and n_init != 1:
            warnings.warn(f"Explicit initial center position passed: performing only one init in KMeans instead "
                          f"of n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        return int(k), init, int(n_init), int(mi), float(tol)

    # -- fitting --
    def fit(self, X, y=None, sample_weight=None):
        """Compute the clustering of X (n_samples, n_features); sample_weight (n_samples,) >= 0."""
        X = _matrix(X)
        n, d = X.shape
        k, init, n_init, max_iter, tol = self._check_params(d)
        if n < k:
            raise ValueError(f"n_samples={n} should be >= n_clusters={k}.")
        w = _weights(sample_weight, n)
        rs = _check_random_state(self.random_state)
        dev = runtime.get_backend() == "vulkan"
        data = _Device(X, w) if dev else _Host(X, w)
        tol_abs = tol * data.var_mean
        best = None
        for run in range(n_init):
            if isinstance(init, str) and init == "k-means++":
                c0 = data.plusplus(k, rs)
            elif isinstance(init, str):
                p = (np.ones(n) if w is None else w) / (n if w is None else w.sum())
                c0 = data.rows(rs.choice(n, size=k, replace=False, p=p))
            else:
                c0 = data.given(init)
            progress = _Progress(self.verbose, max_iter, run, n_init)
            try:
                progress.line("Initialization complete")
                labels, inertia, centres, n_iter = data.lloyd(c0, max_iter, tol_abs, progress)
            finally:
                progress.close()
            if best is None or (inertia < best[1] and not _is_same_clustering(labels, best[0], k)):
                best = (labels, inertia, centres, n_iter, list(getattr(data, "rows_assigned", ())))
        labels, inertia, centres, n_iter, self._rows_assigned = best
        distinct = int(np.count_nonzero(np.bincount(labels, minlength=k)))   # labels lie in [0, k)
        if distinct < k:
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than n_clusters ({k}). "
                          "Possibly due to duplicate points in X.", ConvergenceWarning, stacklevel=2)
        self._mu = np.asarray(data.mu, np.float64)
        self._centred = np.ascontiguousarray(centres, np.float32)
        dtype = _result_dtype(X.dtype)
        self.cluster_centers_ = (np.asarray(centres, np.float64) + self._mu).astype(dtype)
        self.labels_ = labels.astype(np.int32)
        self.inertia_ = float(inertia)
        self.n_iter_ = int(n_iter)
        self.n_features_in_ = d
        return self

    def fit_predict(self, X, y=None, sample_weight=None):
        """fit(X) and return labels_."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def fit_transform(self, X, y=None, sample_weight=None):
        """fit(X) and return transform(X)."""
        return self.fit(X, sample_weight=sample_weight).transform(X)

    # -- using a fitted model --
    def _fitted_X(self, X):
        if not hasattr(self, "cluster_centers_"):
            raise NotFittedError("This KMeans instance is not fitted yet. Call 'fit' with appropriate arguments "
                                 "before using this estimator.")
        X = _matrix(X)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but KMeans is expecting {self.n_features_in_} features "
                             "as input.")
        return X

    def _nearest(self, X):
        """(labels int32, squared distances float64) of X's rows to the centres."""
        if runtime.get_backend() == "cpu":
            a = X.numpy() if runtime._is_array(X) else X
            _host_finite(a)
            x = cpu._as_f32(a).astype(np.float64) - self._mu
            lab, dist = cpu._assign64(x, self._centred.astype(np.float64))
            return lab.astype(np.int32), dist
        if runtime._is_array(X):
            st = statistics(X, axis=0)
            _check_finite(np.isnan(st["min"]).any() or np.isnan(st["max"]).any() or np.isnan(st["mean"]).any(),
                          np.isinf(st["min"]).any() or np.isinf(st["max"]).any())
            x = X if X.dtype == _device_dtype(X.dtype) else runtime.asarray(X.numpy().astype(np.float32))
        else:
            _host_finite(X)
            with np.errstate(over="ignore"):
                x = X.astype(_device_dtype(X.dtype), copy=False)
        n = X.shape[0]
        labels = np.empty(n, np.uint32)
        dist = np.empty(n, np.float32)
        runtime.run_op("kmeans_assign", (x, self._centred, self._mu.astype(np.float32)), (labels, dist),
                       (0, 1, 1, _MAX_ROWS, int(_coop(n, *self._centred.shape))), names={("in", 0): "X"})
        if runtime.in_batch():
            runtime.synchronize()
        return labels.astype(np.int32), dist.astype(np.float64)

    def predict(self, X):
        """The index (int32) of the nearest centre of every row of X."""
        return self._nearest(self._fitted_X(X))[0]

    def transform(self, X):
        """Euclidean distances (n_samples, n_clusters) from every row of X to every centre, in the
        dtype of cluster_centers_."""
        X = self._fitted_X(X)
        if runtime.get_backend() == "cpu":
            a = X.numpy() if runtime._is_array(X) else X
            _host_finite(a)
            x = cpu._as_f32(a).astype(np.float64) - self._mu
            c = self._centred.astype(np.float64)
            d2 = np.maximum((x * x).sum(1)[:, None] - 2.0 * (x @ c.T) + (c * c).sum(1)[None, :], 0.0)
            return np.sqrt(d2).astype(self.cluster_centers_.dtype)
        from .distances import cdist
        if not runtime._is_array(X):
            _host_finite(X)
        out = cdist(X, self.cluster_centers_.astype(np.float32), "euclidean")
        out = out.numpy() if runtime._is_array(out) else out
        return np.asarray(out).astype(self.cluster_centers_.dtype, copy=False)

    def score(self, X, y=None, sample_weight=None):
        """Minus the inertia of X against the centres: −Σ w‖x − nearest centre‖²."""
        X = self._fitted_X(X)
        w = _weights(sample_weight, X.shape[0])
        d = self._nearest(X)[1]
        return -float(d.sum() if w is None else d @ w)
