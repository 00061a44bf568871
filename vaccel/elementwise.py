"""Elementwise math with NumPy broadcasting (add ... clip), activations (relu, gelu, silu,
sigmoid), fused chains of them (`fuse`, `compile_expr`), and the row ops softmax and layer_norm.

Every elementwise op, and every fused expression, becomes one small register-machine program that
the Vulkan backend runs in a single pass over memory (shaders/elementwise.comp); the program is
the pipeline's specialization, so each distinct one is compiled once and cached. Expressions are
parsed with `ast` against a whitelist; scalars (Python numbers, 0-d arrays, literals) travel as
push constants, so changing a scalar's value never compiles a new pipeline.

dtypes: computed in float32. Results are float16 when every array operand is float16 (scalars
do not count, as Python scalars in NumPy), else float32 -- float64 and integer inputs included.
"""

import ast
import builtins
import math

import numpy as np

from . import cpu, runtime

# Opcodes of shaders/elementwise.comp: name -> (code, arity).
OPS = {
    "add": (1, 2), "subtract": (2, 2), "multiply": (3, 2), "divide": (4, 2), "maximum": (5, 2),
    "minimum": (6, 2), "negative": (7, 1), "abs": (8, 1), "exp": (9, 1), "log": (10, 1), "sqrt": (11, 1),
    "relu": (12, 1), "gelu": (13, 1), "gelu_tanh": (14, 1), "silu": (15, 1), "sigmoid": (16, 1),
    "clip": (17, 3), "copy": (18, 1),
}
_ALIASES = {"absolute": "abs", "neg": "negative", "max": "maximum", "min": "minimum", "true_divide": "divide",
            "sub": "subtract", "mul": "multiply", "div": "divide"}
_BINOPS = {ast.Add: "add", ast.Sub: "subtract", ast.Mult: "multiply", ast.Div: "divide"}
MAX_INPUTS = 6
_F32, _F16 = np.dtype(np.float32), np.dtype(np.float16)
MAX_INSTRUCTIONS = 24
MAX_SCALARS = 16
_REGISTERS = 16


# ---- expressions ------------------------------------------------------------------------------
#
# A parsed expression is a tree of tuples: ("var", name), ("const", value) or (op, *children);
# equal subtrees are equal tuples, which is all common-subexpression elimination needs.

def _token(src, node):
    seg = ast.get_source_segment(src, node)
    return seg if seg else type(node).__name__


def _parse(src):
    if not isinstance(src, str):
        raise TypeError(f"expr must be a string, got {type(src).__name__}")
    try:
        tree = ast.parse(src.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expr {src!r} is not a valid expression: {exc.msg}") from None
    src = src.strip()

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp):
            if type(node.op) in _BINOPS:
                return _fold((_BINOPS[type(node.op)], walk(node.left), walk(node.right)))
            if isinstance(node.op, ast.Pow):
                e = node.right
                if isinstance(e, ast.Constant) and type(e.value) in (int, float) and e.value in (1, 2, 3):
                    base = walk(node.left)
                    out = base
                    for _ in range(int(e.value) - 1):
                        out = ("multiply", out, base)
                    return _fold(out)
                raise ValueError(f"unsupported exponent in {_token(src, node)!r}: '**' takes 1, 2 or 3")
            raise ValueError(f"unsupported operator in {_token(src, node)!r}")
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                return _fold(("negative", walk(node.operand)))
            if isinstance(node.op, ast.UAdd):
                return walk(node.operand)
            raise ValueError(f"unsupported operator in {_token(src, node)!r}")
        if isinstance(node, ast.Call):
            if not isinstance(node.func, ast.Name):
                raise ValueError(f"unsupported function {_token(src, node.func)!r}")
            name = _ALIASES.get(node.func.id, node.func.id)
            if name not in OPS or name == "copy":
                raise ValueError(f"unknown function {node.func.id!r} in expr (known: {sorted(n for n in OPS if n != 'copy')})")
            for kw in node.keywords:
                if name == "gelu" and kw.arg == "approximate" and isinstance(kw.value, ast.Constant) \
                        and kw.value.value in ("none", "tanh"):
                    if kw.value.value == "tanh":
                        name = "gelu_tanh"
                else:
                    raise ValueError(f"unsupported argument {_token(src, kw)!r} to {node.func.id}")
            arity = OPS[name][1]
            if len(node.args) != arity:
                raise ValueError(f"{node.func.id} takes {arity} argument(s), got {len(node.args)} in {_token(src, node)!r}")
            return _fold((name,) + tuple(walk(a) for a in node.args))
        if isinstance(node, ast.Name):
            if node.id in OPS or node.id in _ALIASES:
                raise ValueError(f"{node.id!r} is a function, not an input name")
            return ("var", node.id)
        if isinstance(node, ast.Constant):
            if type(node.value) in (int, float):
                return ("const", float(np.float32(node.value)))
            raise ValueError(f"unsupported constant {_token(src, node)!r}")
        raise ValueError(f"unsupported syntax {_token(src, node)!r} in expr")

    return walk(tree)


def _fold(node):
    """Literal-only subtrees become one constant (computed as the kernel would, in float32)."""
    if node[0] not in ("var", "const") and all(c[0] == "const" for c in node[1:]):
        with np.errstate(all="ignore"):
            v = cpu.evaluate(node, {}, np.float32)
        return ("const", float(np.float32(v)))
    return node


def _variables(tree, acc=None):
    acc = [] if acc is None else acc
    if tree[0] == "var":
        if tree[1] not in acc:
            acc.append(tree[1])
    elif tree[0] != "const":
        for c in tree[1:]:
            _variables(c, acc)
    return acc


def _lower(tree, arrays):
    """(instruction words, result register, scalar slots) for the kernel: array names in `arrays`
    are inputs 0..; the other names and the literals fill scalar slots (("var", name) or
    ("const", value) each)."""
    consts, slot = [], {}
    temps = []          # [(op, args)], args as ("r", input) / ("k", slot) / ("t", temp)
    memo = {}

    def const_slot(key):
        if key not in slot:
            if len(consts) == MAX_SCALARS:
                raise ValueError(f"expr uses more than {MAX_SCALARS} scalars and literals")
            slot[key] = len(consts)
            consts.append(key)
        return ("k", slot[key])

    def visit(node):
        if node in memo:
            return memo[node]
        if node[0] == "var":
            name = node[1]
            ref = ("r", arrays.index(name)) if name in arrays else const_slot(node)
        elif node[0] == "const":
            ref = const_slot(node)
        else:
            args = tuple(visit(c) for c in node[1:])
            temps.append((node[0], args))
            ref = ("t", len(temps) - 1)
        memo[node] = ref
        return ref

    root = visit(tree)
    if root[0] != "t":
        temps.append(("copy", (root,)))
        root = ("t", len(temps) - 1)
    if len(temps) > MAX_INSTRUCTIONS:
        raise ValueError(f"expr needs {len(temps)} instructions; at most {MAX_INSTRUCTIONS} run fused")
    last = {}
    for i, (_, args) in enumerate(temps):
        for a in args:
            if a[0] == "t":
                last[a[1]] = i
    free = list(range(len(arrays), _REGISTERS))
    reg, words = {}, []
    for i, (op, args) in enumerate(temps):
        srcs = []
        for a in args:
            srcs.append(a[1] if a[0] == "r" else 16 + a[1] if a[0] == "k" else reg[a[1]])
        for a in set(args):
            if a[0] == "t" and last[a[1]] == i:
                free.append(reg[a[1]])      # the kernel reads sources before writing dst
        if not free:
            raise ValueError(f"expr needs more than {_REGISTERS - len(arrays)} intermediate values at once")
        free.sort()
        reg[i] = free.pop(0)
        srcs += [0] * (3 - len(srcs))
        words.append(OPS[op][0] | reg[i] << 6 | srcs[0] << 10 | srcs[1] << 16 | srcs[2] << 22)
    return words, reg[len(temps) - 1], consts


class Expr:
    """A compiled elementwise expression: call it with its inputs by name (arrays, vaccel.Arrays
    or scalars); `out=` receives the result. Inputs broadcast like NumPy's."""

    def __init__(self, src):
        self.src = src
        self.tree = _parse(src)
        self.names = tuple(_variables(self.tree))
        self._lowered = {}
        self._plans = {}     # call signature (device operands only) -> what _evaluate worked out

    def __repr__(self):
        return f"vaccel.compile_expr({self.src!r})"

    def __call__(self, out=None, **inputs):
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise TypeError(f"expr {self.src!r} needs input(s) {missing}")
        extra = [n for n in inputs if n not in self.names]
        if extra:
            raise TypeError(f"expr {self.src!r} has no input(s) named {extra}")
        return _evaluate(self, [(n, inputs[n]) for n in self.names], out)

    def lowered(self, arrays, scalars):
        """(words, result register, scalar values) with `arrays` (names) as array inputs."""
        key = tuple(arrays)
        if key not in self._lowered:
            self._lowered[key] = _lower(self.tree, list(arrays))
        words, result, slots = self._lowered[key]
        # Scalar values change from call to call; the program does not.
        return words, result, [scalars[k[1]] if k[0] == "var" else k[1] for k in slots]


_cache = {}


def compile_expr(expr):
    """Compile an elementwise expression once, e.g. f = compile_expr("gelu(x * w + b)"), then
    f(x=..., w=..., b=...). Operators + - * / and ** 2|3, functions add subtract multiply divide
    maximum minimum negative abs exp log sqrt clip relu gelu (approximate='tanh') gelu_tanh silu
    sigmoid; numbers. At most 6 array inputs, 24 operations, 16 scalars and literals."""
    e = _cache.get(expr)
    if e is None:
        e = Expr(expr)
        if len(_cache) < 1024:
            _cache[expr] = e
    return e


def fuse(expr, out=None, **inputs):
    """Evaluate an elementwise expression over named inputs in one pass:
    vaccel.fuse("gelu(x * w + b)", x=x, w=w, b=b)."""
    return compile_expr(expr)(out=out, **inputs)


# ---- operands ---------------------------------------------------------------------------------

def _is_scalar(v):
    if isinstance(v, (bool, np.bool_)):
        return True
    if isinstance(v, (int, float, np.integer, np.floating)):
        return True
    return isinstance(v, np.ndarray) and v.ndim == 0


def _as_operand(name, v):
    """A scalar (as a Python float), a vaccel.Array, or a NumPy array of numbers."""
    if _is_scalar(v):
        if np.asarray(v).dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a number, got {v!r}")
        return float(np.asarray(v))
    if v is None:
        raise TypeError(f"{name} must be an array or a number, got None")
    a = runtime.numeric(v, name)
    if runtime._is_array(a):
        return a
    if a.ndim == 0:
        return float(a)
    return a


def _broadcast_shape(named):
    """NumPy's broadcast shape of the (name, shape) pairs; ValueError naming the two that clash."""
    shape = ()
    for i, (name, s) in enumerate(named):
        try:
            shape = np.broadcast_shapes(shape, tuple(s))
        except ValueError:
            for other, so in named[:i]:
                try:
                    np.broadcast_shapes(tuple(so), tuple(s))
                except ValueError:
                    raise ValueError(f"operands could not be broadcast together: {other} with shape "
                                     f"{tuple(so)} and {name} with shape {tuple(s)}") from None
            raise ValueError(f"{name} with shape {tuple(s)} cannot be broadcast to {shape}") from None
    return shape


def _result_dtype(arrays):
    if arrays and all(np.dtype(a.dtype) == np.float16 for a in arrays):
        return np.dtype(np.float16)
    return np.dtype(np.float32)


def _check_out(out, shape, dtype):
    if out is None:
        return None
    if runtime._is_array(out) or isinstance(out, np.ndarray):
        if tuple(out.shape) != tuple(shape):
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")
        if np.dtype(out.dtype) != dtype:
            raise TypeError(f"out must be {dtype}, got {out.dtype}")
        if isinstance(out, np.ndarray) and not out.flags.writeable:
            raise ValueError("out is read-only")
        return out
    raise TypeError(f"out must be a numpy.ndarray or vaccel.Array, got {type(out).__name__}")


def _deliver(r, out, want_array):
    return runtime.deliver(r, out, want_array)


def _device_operand(a, use16):
    """a in a dtype the kernel reads (float32, or float16 where the device stores it)."""
    dt = np.dtype(a.dtype)
    if dt == np.float32 or (dt == np.float16 and use16):
        return a
    if runtime._is_array(a):
        return runtime.asarray(a.numpy().astype(np.float32))
    with np.errstate(over="ignore"):
        return a.astype(np.float32)


def _elem_strides(a):
    if runtime._is_array(a):
        return tuple(a._strides)
    return tuple(s // a.itemsize for s in a.strides)


def _merge_dims(shape, strides):
    """Drop size-1 dims and merge neighbours that every operand steps through as one."""
    dims = [i for i, n in enumerate(shape) if n != 1]
    if not dims:
        return (1,), [(0,) for _ in strides]
    mshape = [shape[dims[0]]]
    ms = [[s[dims[0]]] for s in strides]
    for i in dims[1:]:
        n = shape[i]
        if all(m[-1] == s[i] * n for m, s in zip(ms, strides)):
            mshape[-1] *= n
            for m, s in zip(ms, strides):
                m[-1] = s[i]
        else:
            mshape.append(n)
            for m, s in zip(ms, strides):
                m.append(s[i])
    return tuple(mshape), [tuple(m) for m in ms]


def _bstrides(a, shape):
    """a's element strides broadcast to shape (0 along broadcast dims)."""
    st = _elem_strides(a)
    pad = len(shape) - a.ndim
    st = (0,) * pad + st
    ash = (1,) * pad + tuple(a.shape)
    return tuple(0 if ash[i] == 1 else st[i] for i in range(len(shape)))


def _host_describable(a):
    """Aligned (data and strides whole elements) with non-negative strides."""
    return a.flags.aligned and builtins.min(a.strides, default=0) >= 0


# ---- evaluation -------------------------------------------------------------------------------

_PLAN_CAP = 256


def _plan_key(named, out):
    """The signature of a call whose operands are all device Arrays or aligned NumPy arrays with
    non-negative strides, of float32 (float16 where the device stores it), or Python numbers, out
    None or such an Array: everything _evaluate works out before recording depends only on it (and
    on the scalar values, kept apart). None otherwise."""
    key = []
    for n, v in named:
        t = type(v)
        if t is runtime.Array:
            if v.dtype != _F32 and (v.dtype != _F16 or not runtime.device_info()["storage_16bit"]):
                return None
            key.append((v.shape, v.dtype.num, v._strides))
        elif t is np.ndarray:
            if v.dtype != _F32 and (v.dtype != _F16 or not runtime.device_info()["storage_16bit"]):
                return None
            if not v.flags.aligned or not v.size or not v.ndim:   # (0-d arrays are taken as scalars)
                return None
            st = _elem_strides(v)
            if builtins.min(st, default=0) < 0:
                return None
            key.append((v.shape, v.dtype.num, st, "host"))
        elif t is float or t is int:
            key.append(None)
        else:
            return None
    if out is not None:
        if type(out) is not runtime.Array:
            return None
        key.append((out.shape, out.dtype.num, out._strides))
    return tuple(key)


def _run_plan(plan, named, out):
    """_evaluate for a call whose signature was seen before: the operands' views and the
    program come from the plan; only the buffers and the scalar values are this call's."""
    shape, dtype, mshape, mstrides, ip, names, slots = plan
    arrays = [v for n, v in named if type(v) is runtime.Array or type(v) is np.ndarray]
    if out is None:
        want_array = builtins.any(type(v) is runtime.Array for v in arrays) or runtime.in_batch()
        res = runtime.empty(shape, dtype) if want_array else np.empty(shape, dtype)
    else:
        res = out
    vals = dict(named)
    views = tuple(runtime.view(v, mshape, st, False) for v, st in zip(arrays, mstrides))
    tview = runtime.view(res, mshape, mstrides[-1]) if type(res) is runtime.Array else res.reshape(mshape)
    consts = [float(vals[k[1]]) if k[0] == "var" else k[1] for k in slots]
    runtime.run_op("elementwise", views, (tview,), ip, consts, names, strided=True, results=True)
    return res


def _evaluate(expr, named, out):
    key = _plan_key(named, out) if runtime.get_backend() == "vulkan" else None
    if key is not None:
        plan = expr._plans.get(key)
        if plan is not None:
            return _run_plan(plan, named, out)
    operands = [(n, _as_operand(n, v)) for n, v in named]
    arrays = [(n, v) for n, v in operands if not isinstance(v, float)]
    scalars = {n: v for n, v in operands if isinstance(v, float)}
    if len(arrays) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} array inputs run fused, got {len(arrays)}")
    dtype = _result_dtype([v for _, v in arrays])
    shape = _broadcast_shape([(n, v.shape) for n, v in arrays]) if arrays else ()
    out = _check_out(out, shape, dtype)
    want_array = builtins.any(runtime._is_array(v) for _, v in arrays) or runtime._is_array(out)
    # The program's limits hold on every backend.
    words, result, consts = expr.lowered([n for n, _ in arrays], scalars)
    if not arrays or runtime.get_backend() == "cpu":
        env = {n: (v.numpy() if runtime._is_array(v) else v) for n, v in operands}
        r = cpu.evaluate(expr.tree, env, dtype)
        if not arrays:
            return r if out is None else _deliver(r, out, False)
        return _deliver(np.asarray(r).reshape(shape), out, want_array)

    use16 = runtime.device_info()["storage_16bit"]
    ins = []
    for n, v in arrays:
        v = _device_operand(v, use16)
        if not runtime._is_array(v) and not _host_describable(v):
            v = np.ascontiguousarray(v)
        ins.append(v)
    kdtype = dtype if (dtype == np.float32 or use16) else np.dtype(np.float32)
    size = math.prod(shape)
    if out is None:
        want_array = want_array or runtime.in_batch()
        res = runtime.empty(shape, dtype) if want_array else np.empty(shape, dtype)
    else:
        res = out
    target = res
    if kdtype != dtype or (not runtime._is_array(res) and not res.flags.c_contiguous):
        target = np.empty(shape, kdtype)
    if size:
        st_out = _elem_strides(target) if target.ndim else ()
        strides = [_bstrides(v, shape) for v in ins] + [st_out]
        mshape, mstrides = _merge_dims(shape, strides)
        if len(mshape) > 4:
            key = None   # host copies stand in for the operands: no plan over their buffers
            # Too many dims to describe: the inputs as contiguous broadcast copies (1 dim).
            ins = [np.ascontiguousarray(np.broadcast_to(v.numpy() if runtime._is_array(v) else v, shape))
                   for v in ins]
            strides = [_bstrides(v, shape) for v in ins] + [st_out]
            mshape, mstrides = _merge_dims(shape, strides)
        views = [runtime.view(v, mshape, s, False) for v, s in zip(ins, mstrides)]
        tview = runtime.view(target, mshape, mstrides[-1]) if runtime._is_array(target) else target.reshape(mshape) \
            if target.flags.c_contiguous else target
        ip = [len(words) | result << 8]
        for i in range(0, len(words), 2):
            ip.append(words[i] | (words[i + 1] << 32 if i + 1 < len(words) else 0))
        names = {("in", i): n for i, (n, _) in enumerate(arrays)}
        names[("out", 0)] = "out"
        if key is not None and target is res and len(expr._plans) < _PLAN_CAP:
            slots = expr._lowered[tuple(n for n, _ in arrays)][2]
            expr._plans[key] = (shape, dtype, mshape, tuple(mstrides), ip, names, slots)
        runtime.run_op("elementwise", views, (tview,), ip, consts, names, strided=True, results=True)
    if target is not res:
        if runtime._is_array(res):
            res._assign(target.astype(dtype))
        else:
            res[...] = target
    return res


def _unary(name):
    e = compile_expr(f"{name}(x)")

    def op(x, out=None):
        return e(out=out, x=x)
    op.__name__ = name
    return op


def _binary(name):
    e = compile_expr(f"{name}(x1, x2)")

    def op(x1, x2, out=None):
        return e(out=out, x1=x1, x2=x2)
    op.__name__ = name
    return op


add = _binary("add")
add.__doc__ = "x1 + x2 with NumPy broadcasting (float32, or float16 when every array is float16)."
subtract = _binary("subtract")
subtract.__doc__ = "x1 - x2 with NumPy broadcasting."
multiply = _binary("multiply")
multiply.__doc__ = "x1 * x2 with NumPy broadcasting."
divide = _binary("divide")
divide.__doc__ = "x1 / x2 with NumPy broadcasting (x / 0 = +-inf, 0 / 0 = nan)."
maximum = _binary("maximum")
maximum.__doc__ = "Elementwise maximum; NaN in either operand gives NaN, as numpy.maximum."
minimum = _binary("minimum")
minimum.__doc__ = "Elementwise minimum; NaN in either operand gives NaN, as numpy.minimum."
negative = _unary("negative")
negative.__doc__ = "-x."
abs = _unary("abs")  # noqa: A001 -- NumPy's name
abs.__doc__ = "|x|."
absolute = abs
exp = _unary("exp")
exp.__doc__ = "e**x."
log = _unary("log")
log.__doc__ = "Natural log: log(0) = -inf, log(x < 0) = nan."
sqrt = _unary("sqrt")
sqrt.__doc__ = "Square root: sqrt(x < 0) = nan."
relu = _unary("relu")
relu.__doc__ = "max(x, 0); NaN stays NaN (torch.relu)."
silu = _unary("silu")
silu.__doc__ = "x * sigmoid(x) (torch.nn.functional.silu)."
sigmoid = _unary("sigmoid")
sigmoid.__doc__ = "1 / (1 + exp(-x))."
_gelu = _unary("gelu")
_gelu_tanh = _unary("gelu_tanh")
_clip = compile_expr("clip(x, lo, hi)")
_clip_lo = compile_expr("maximum(x, lo)")
_clip_hi = compile_expr("minimum(x, hi)")


def gelu(x, approximate="none", out=None):
    """torch.nn.functional.gelu: x * Phi(x) (approximate='none', through erf), or the tanh form
    0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (approximate='tanh')."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return (_gelu_tanh if approximate == "tanh" else _gelu)(x, out=out)


def clip(x, a_min, a_max, out=None):
    """numpy.clip: minimum(maximum(x, a_min), a_max); either bound may be None (not both); bounds
    broadcast; NaN in x or a bound gives NaN; a_min > a_max gives a_max."""
    if a_min is None and a_max is None:
        raise ValueError("clip: a_min and a_max cannot both be None")
    if a_min is None:
        return _clip_hi(out=out, x=x, hi=a_max)
    if a_max is None:
        return _clip_lo(out=out, x=x, lo=a_min)
    return _clip(out=out, x=x, lo=a_min, hi=a_max)


# ---- row ops ----------------------------------------------------------------------------------

def _rows_operand(x, name):
    """x as a validated array (vaccel.Array or NumPy of numbers, at least 1-D)."""
    x = _as_operand(name, x)
    if isinstance(x, float):
        raise ValueError(f"{name} must have at least one dimension")
    return x


def _rows_view(x, axis):
    """x with `axis` last and the other dims merged into rows: a 2-D view (rows, n) of x's memory
    (NumPy view or Array), or a host copy where the leading dims cannot be merged."""
    ndim = x.ndim
    perm = [d for d in range(ndim) if d != axis] + [axis]
    shape = tuple(x.shape[d] for d in perm)
    st = _elem_strides(x)
    st = tuple(st[d] for d in perm)
    lead, lst = shape[:-1], st[:-1]
    mshape, (mst,) = _merge_dims(lead, [lst]) if lead else ((1,), [(0,)])
    n = shape[-1]
    if len(mshape) == 1:
        rows = (mshape[0], n)
        rst = (mst[0] if mshape[0] > 1 else n, st[-1] if n > 1 else 1)
        if runtime._is_array(x) or _host_describable(x):
            return runtime.view(x, rows, rst, False), shape, perm
    host = x.numpy() if runtime._is_array(x) else x
    moved = np.ascontiguousarray(np.transpose(host, perm)).reshape(-1, n)
    return (runtime.asarray(moved) if runtime._is_array(x) else moved), shape, perm


def _row_op(op, x, axis, out, extra=(), iparams=(), fparams=(), cpu_fn=None, name="x"):
    x = _rows_operand(x, name)
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool) or not -x.ndim <= axis < x.ndim:
        raise ValueError(f"axis {axis!r} is out of bounds for an array of {x.ndim} dimensions")
    axis = int(axis) % x.ndim
    dtype = np.dtype(np.float16) if np.dtype(x.dtype) == np.float16 else np.dtype(np.float32)
    out = _check_out(out, tuple(x.shape), dtype)
    want_array = runtime._is_array(x) or runtime._is_array(out)
    if runtime.get_backend() == "cpu":
        host = x.numpy() if runtime._is_array(x) else x
        return _deliver(cpu_fn(host), out, want_array)
    use16 = runtime.device_info()["storage_16bit"]
    x = _device_operand(x, use16)
    rows, mshape, perm = _rows_view(x, axis)
    kdtype = np.dtype(rows.dtype)
    m, n = rows.shape
    want_array = want_array or runtime.in_batch()
    direct = out is not None and kdtype == dtype and axis == x.ndim - 1 and (
        runtime._is_array(out) and out._c_contiguous()
        or not runtime._is_array(out) and out.flags.c_contiguous)
    if direct:
        res = runtime.view(out, (m, n), (n, 1)) if runtime._is_array(out) else out.reshape(m, n)
    else:
        res = runtime.empty((m, n), kdtype) if want_array and kdtype == dtype else np.empty((m, n), kdtype)
    if m * n:
        names = {("in", 0): "x", ("in", 1): "weight", ("in", 2): "bias", ("out", 0): "out"}
        runtime.run_op(op, (rows,) + tuple(extra), (res,), iparams, fparams, names, strided=True, results=True)
    if direct:
        return out
    if out is None and not want_array and axis == x.ndim - 1 and kdtype == dtype:
        return res.reshape(x.shape)    # the common case: rows already in place
    inv = np.argsort(perm)
    if runtime._is_array(res):
        full = runtime.Array(res._buf, mshape, dtype)
        st = full._strides
        r = runtime.Array(res._buf, x.shape, dtype, 0, tuple(st[i] for i in inv))
        return r if out is None else _deliver(r.numpy(), out, False)
    r = np.transpose(res.reshape(mshape), inv).astype(dtype, copy=False)
    if out is None and want_array:
        return runtime.asarray(np.ascontiguousarray(r))
    if out is None:
        return np.ascontiguousarray(r)
    return _deliver(r, out, False)


def softmax(x, axis=-1, out=None):
    """exp(x - max) / sum(exp(x - max)) along axis (scipy.special.softmax, torch.softmax), in
    float32 (float16 results for float16 x). A slice holding NaN, +inf, or only -inf is NaN."""
    return _row_op("softmax", x, axis, out, cpu_fn=lambda h: cpu.softmax(h, axis))


def _vector(v, name, n):
    if v is None:
        return None
    if runtime._is_array(v):
        if v.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {v.shape}")
        if v.dtype != np.float32 or v._strides != (1,):
            v = runtime.asarray(v.numpy().astype(np.float32))
        return v
    a = _as_operand(name, v)
    if isinstance(a, float) or np.shape(a) != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {np.shape(a)}")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


def layer_norm(x, weight=None, bias=None, eps=1e-5, out=None):
    """torch.nn.functional.layer_norm over the last axis: (x - mean) / sqrt(var + eps) * weight +
    bias, biased variance; weight and bias optional vectors of the last axis' length."""
    x = _rows_operand(x, "x")
    n = x.shape[-1]
    w, b = _vector(weight, "weight", n), _vector(bias, "bias", n)
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise TypeError(f"eps must be a number, got {eps!r}") from None
    if not eps >= 0:
        raise ValueError(f"eps must be non-negative, got {eps}")

    def on_cpu(h):
        return cpu.layer_norm(h, None if w is None else (w.numpy() if runtime._is_array(w) else w),
                              None if b is None else (b.numpy() if runtime._is_array(b) else b), eps)
    extra = tuple(v for v in (w, b) if v is not None)
    return _row_op("layer_norm", x, -1, out, extra, (int(w is not None), int(b is not None)), (eps,), on_cpu)
