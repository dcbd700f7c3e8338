"""Writes tests/data/numpy_cases.json: expected values of tensorlift ops computed by NumPy.

Run: scripts/setup_python.sh && .venv/bin/python scripts/gen_numpy_cases.py

Each case names an op (interpreted by tests/numpy_cases.rs), its parameters, its inputs and
either the expected outputs or `"error": true` when NumPy raises (tensorlift must return
Err). Inputs come from a fixed-seed generator. Where tensorlift fixes a dtype rule NumPy
does not share (math functions of small integers give float32, as in PyTensor; uint8 sums
accumulate in int64), the script applies that rule before calling NumPy, so NumPy computes
every value. A dimension of size 1 is static in the test graph (it broadcasts); every other
dimension is of unknown static size.

The linear-algebra cases come last (appending cases leaves the generator's earlier draws
unchanged). NumPy's float32 transcendental functions may differ in the last bit between
machines (AVX-512 or AVX2 paths): regenerating on another machine can move a few float32
expectations by one ulp, well inside the test's tolerance.
"""

import json
import math
import pathlib

import numpy as np

rng = np.random.default_rng(20261125)
CASES = []
FLOATS = ["float64", "float32"]
INTS = ["int8", "int16", "int32", "int64", "uint8"]


def enc(a):
    a = np.asarray(a)
    if a.dtype.kind == "f":
        data = [("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")) if not math.isfinite(v) else float(v)
                for v in a.ravel().tolist()]
    elif a.dtype.kind == "b":
        data = [bool(v) for v in a.ravel().tolist()]
    else:
        data = [int(v) for v in a.ravel().tolist()]
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": data}


def case(name, op, inputs, fn, **params):
    """Adds a case; `fn(*inputs)` gives the expected output(s) or raises."""
    entry = {"name": name, "op": op, "params": params, "inputs": [enc(x) for x in inputs]}
    try:
        with np.errstate(all="ignore"):
            out = fn(*inputs)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        entry["expected"] = [enc(o) for o in outs]
    except (IndexError, ValueError, ZeroDivisionError, np.linalg.LinAlgError):
        entry["error"] = True
    CASES.append(entry)


def sample(dtype, shape, lo=-5, hi=5):
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in FLOATS:
        return rng.uniform(lo, hi, shape).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(max(lo, info.min), min(hi, info.max) + 1, shape).astype(dtype)


def upgrade_to_float(dtype):
    return {"float64": "float64", "float32": "float32", "int32": "float64", "int64": "float64"}.get(dtype, "float32")


# ---------------------------------------------------------------- Elemwise: unary math
def sigmoid(x):
    return np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))


def log1mexp(x):
    return np.where(x < -np.log(2), np.log1p(-np.exp(x)), np.log(-np.expm1(x)))


def vec(f):
    return lambda x: np.vectorize(f, otypes=[np.float64])(x.astype(np.float64)).astype(x.dtype)


UNARY_MATH = {
    "exp": (np.exp, (-5, 5)), "exp2": (np.exp2, (-5, 5)), "expm1": (np.expm1, (-5, 5)),
    "log": (np.log, (0, 10)), "log2": (np.log2, (0, 10)), "log1p": (np.log1p, (0, 10)),
    "sqrt": (np.sqrt, (0, 10)), "sin": (np.sin, (-5, 5)), "cos": (np.cos, (-5, 5)),
    "tan": (np.tan, (-1, 1)), "tanh": (np.tanh, (-5, 5)), "reciprocal": (np.reciprocal, (1, 9)),
    "sigmoid": (sigmoid, (-5, 5)), "softplus": (lambda x: np.logaddexp(np.zeros_like(x), x), (-5, 5)),
    "erf": (vec(math.erf), (-3, 3)), "erfc": (vec(math.erfc), (-3, 3)),
    "gammaln": (vec(math.lgamma), (1, 9)), "log1mexp": (log1mexp, (-5, -0.1)),
}
for name, (f, (lo, hi)) in UNARY_MATH.items():
    for dt in FLOATS + ["int8", "int64"]:
        if dt in INTS and name in ("log1mexp", "tan"):
            continue
        x = sample(dt, (7,), lo, hi)
        if dt in INTS and lo < 0 < hi and name in ("reciprocal",):
            continue
        case(f"{name}_{dt}", name, [x], lambda x, f=f: f(x.astype(upgrade_to_float(str(x.dtype)))))
# Edge values where the naive forms overflow or lose precision.
edge = np.array([-800.0, -40.0, -1e-20, 0.0, 1e-20, 40.0, 800.0])
case("sigmoid_extremes", "sigmoid", [edge], sigmoid)
case("softplus_extremes", "softplus", [edge], lambda x: np.logaddexp(np.zeros_like(x), x))
case("exp_special_values", "exp", [np.array([np.nan, np.inf, -np.inf, 710.0])], np.exp)
case("log_special_values", "log", [np.array([0.0, -1.0, np.inf, np.nan])], np.log)
case("log1p_tiny", "log1p", [np.array([1e-20, -1e-18, 0.0])], np.log1p)
case("expm1_tiny", "expm1", [np.array([1e-20, -1e-18])], np.expm1)
case("log1mexp_edges", "log1mexp", [np.array([-1e-20, -1e-5, -0.69, -0.7, -50.0])], log1mexp)
case("empty_exp", "exp", [np.zeros((0, 3))], np.exp)

# ---------------------------------------------------------------- Elemwise: unary other
UNARY_OTHER = {"neg": np.negative, "abs": np.abs, "sign": np.sign, "sqr": np.square, "floor": np.floor,
               "ceil": np.ceil, "round": np.round}
for name, f in UNARY_OTHER.items():
    for dt in FLOATS + INTS:
        x = sample(dt, (2, 5), -5, 5) if name not in ("floor", "ceil", "round") or dt in INTS \
            else rng.uniform(-5, 5, (2, 5)).round(1).astype(dt)
        case(f"{name}_{dt}", name, [x], f)
case("round_half_to_even", "round", [np.array([0.5, 1.5, 2.5, -0.5, -1.5, 2.4999])], np.round)
case("neg_int8_wraps", "neg", [np.array([-128, 127, 0], dtype=np.int8)], np.negative)
case("abs_int8_wraps", "abs", [np.array([-128, -3], dtype=np.int8)], np.abs)
case("sign_nan", "sign", [np.array([np.nan, -0.0, 2.0, -3.0])], np.sign)
for dt in ["bool", "int8", "uint8", "int64"]:
    case(f"not_{dt}", "not", [sample(dt, (6,), -5, 5)], np.invert)
for dt in FLOATS + ["int32"]:
    x = np.array([np.nan, np.inf, -np.inf, 1.0, 0.0]).astype(dt) if dt in FLOATS else np.array([1, 2], dtype=dt)
    case(f"isnan_{dt}", "isnan", [x], np.isnan)
    case(f"isinf_{dt}", "isinf", [x], np.isinf)
for src in ["float64", "float32", "int64", "int8", "uint8", "bool"]:
    x = np.array([-2.7, -1.0, 0.0, 0.5, 1.9, 200.0]).astype(src) if src in FLOATS else sample(src, (6,), -100, 100)
    for dst in ["float64", "float32", "int64", "int32", "int16", "int8", "uint8", "bool"]:
        if src in FLOATS and dst in INTS and dst != "int64" and dst != "int32":
            continue  # out-of-range float → small int is undefined in NumPy
        case(f"cast_{src}_to_{dst}", "cast", [x], lambda x, dst=dst: x.astype(dst), dtype=dst)

# ---------------------------------------------------------------- Elemwise: binary
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "true_div": np.true_divide,
          "floor_div": np.floor_divide, "mod": np.mod, "maximum": np.maximum, "minimum": np.minimum,
          "eq": np.equal, "neq": np.not_equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
          "ge": np.greater_equal}
for name, f in BINARY.items():
    for dt in FLOATS + INTS:
        a, b = sample(dt, (3, 4), -9, 9), sample(dt, (3, 4), -9, 9)
        case(f"{name}_{dt}", name, [a, b], f)
    # broadcasting: (3, 1) with (1, 4), and a lower-rank right operand
    a, b = sample("float64", (3, 1)), sample("float64", (1, 4))
    case(f"{name}_broadcast_2d", name, [a, b], f)
    case(f"{name}_broadcast_rank", name, [sample("float32", (2, 3)), sample("float32", (3,))], f)
for name, f in {"add": np.add, "mul": np.multiply, "maximum": np.maximum, "minimum": np.minimum}.items():
    case(f"{name}_bool", name, [sample("bool", (6,)), sample("bool", (6,))], f)
for a_dt, b_dt in [("int8", "uint8"), ("int16", "uint8"), ("int8", "float32"), ("int32", "float32"),
                   ("float32", "float64"), ("bool", "int8"), ("uint8", "int64")]:
    case(f"add_mixed_{a_dt}_{b_dt}", "add", [sample(a_dt, (5,)), sample(b_dt, (5,))], np.add)
    case(f"true_div_mixed_{a_dt}_{b_dt}", "true_div", [sample(a_dt, (5,), 1, 9), sample(b_dt, (5,), 1, 9)],
         np.true_divide)
case("floor_div_signs_int64", "floor_div", [np.array([7, -7, 7, -7, 5, 0]), np.array([2, 2, -2, -2, 0, 3])],
     np.floor_divide)
case("mod_signs_int64", "mod", [np.array([7, -7, 7, -7, 5, 0]), np.array([2, 2, -2, -2, 0, 3])], np.mod)
case("floor_div_signs_float64", "floor_div", [np.array([7.5, -7.5, 7.5, -7.5, 1.0]),
                                               np.array([2.0, 2.0, -2.0, -2.0, 0.0])], np.floor_divide)
case("mod_signs_float64", "mod", [np.array([7.5, -7.5, 7.5, -7.5, 1.0, -0.0]),
                                   np.array([2.0, 2.0, -2.0, -2.0, 0.0, 3.0])], np.mod)
case("add_int8_wraps", "add", [np.array([127, -128], dtype=np.int8), np.array([1, -1], dtype=np.int8)], np.add)
case("mul_uint8_wraps", "mul", [np.array([16, 200], dtype=np.uint8), np.array([16, 2], dtype=np.uint8)], np.multiply)
case("maximum_nan", "maximum", [np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 1.0])], np.maximum)
case("minimum_nan", "minimum", [np.array([np.nan, 1.0, 2.0]), np.array([0.0, np.nan, 1.0])], np.minimum)
case("lt_nan", "lt", [np.array([np.nan, 1.0]), np.array([0.0, np.nan])], np.less)
case("neq_nan", "neq", [np.array([np.nan, 1.0]), np.array([np.nan, 1.0])], np.not_equal)
for dt in FLOATS:
    case(f"pow_{dt}", "pow", [sample(dt, (6,), 0, 3), sample(dt, (6,), -2, 2)], np.power)
case("pow_negative_base_integral_exponent", "pow", [np.array([-2.0, -3.0, -0.5]), np.array([3.0, 2.0, -1.0])],
     np.power)
for dt in ["int8", "int64", "uint8"]:
    case(f"pow_{dt}", "pow", [sample(dt, (6,), 0, 4), sample(dt, (6,), 0, 3)], np.power)
case("pow_int_negative_exponent", "pow", [np.array([2, 3]), np.array([1, -1])], np.power)
for name, f in {"and": np.bitwise_and, "or": np.bitwise_or, "xor": np.bitwise_xor}.items():
    for dt in ["bool", "int8", "uint8", "int64"]:
        case(f"{name}_{dt}", name, [sample(dt, (6,), -20, 20), sample(dt, (6,), -20, 20)], f)

# ---------------------------------------------------------------- Elemwise: ternary
for dt in FLOATS + ["int32", "bool"]:
    c = sample("bool", (2, 4))
    case(f"switch_{dt}", "switch", [c, sample(dt, (2, 4)), sample(dt, (2, 4))], np.where)
case("switch_broadcast", "switch", [sample("bool", (3, 1)), sample("float64", (1, 4)), sample("float64", (3, 4))],
     np.where)
case("switch_mixed", "switch", [sample("bool", (4,)), sample("int8", (4,)), sample("float32", (4,))], np.where)
for dt in FLOATS + ["int16", "uint8"]:
    case(f"clip_{dt}", "clip", [sample(dt, (8,), 0, 9), np.array(2, dtype=dt), np.array(6, dtype=dt)], np.clip)
case("clip_nan", "clip", [np.array([np.nan, -3.0, 3.0]), np.array(-1.0), np.array(1.0)], np.clip)

# ---------------------------------------------------------------- DimShuffle
x3 = sample("float64", (2, 3, 4))
case("transpose_3d", "transpose", [x3], lambda x: np.transpose(x, (2, 0, 1)), axes=[2, 0, 1])
case("transpose_t_int8", "transpose", [sample("int8", (3, 5))], lambda x: x.T, axes=[1, 0])
case("expand_dims_middle", "expand_dims", [x3], lambda x: np.expand_dims(x, 1), axis=1)
case("expand_dims_last_bool", "expand_dims", [sample("bool", (3,))], lambda x: np.expand_dims(x, -1), axis=-1)
case("squeeze_static_ones", "squeeze", [sample("float32", (1, 3, 1))], lambda x: np.squeeze(x, (0, 2)), axes=[0, 2])

# ---------------------------------------------------------------- Reductions
for kind, f in {"sum": np.sum, "prod": np.prod, "max": np.max, "min": np.min}.items():
    for dt in FLOATS + INTS + (["bool"] if kind in ("sum", "max", "min") else []):
        x = sample(dt, (3, 4, 2), -3, 3)
        for axes in [None, [0], [1], [2], [0, 2], [-1]]:
            tag = "all" if axes is None else "_".join(str(a) for a in axes)
            g = (lambda x, axes=axes, f=f, kind=kind: np.asarray(
                f(x, axis=None if axes is None else tuple(axes))).astype(
                "int64" if kind in ("sum", "prod") and x.dtype.kind in "biu" else x.dtype))
            case(f"{kind}_{dt}_axes_{tag}", kind, [x], g, axes=axes)
    case(f"{kind}_keepdims", kind, [x3], lambda x, f=f: f(x, axis=(0, 2), keepdims=True), axes=[0, 2], keepdims=True)
case("sum_empty_axis", "sum", [np.zeros((0, 3))], lambda x: np.sum(x, axis=0), axes=[0])
case("prod_empty_axis", "prod", [np.zeros((2, 0))], lambda x: np.prod(x, axis=1), axes=[1])
case("max_empty_axis", "max", [np.zeros((0, 3))], lambda x: np.max(x, axis=0), axes=[0])
case("min_empty_all", "min", [np.zeros((0,))], np.min, axes=None)
case("max_nan", "max", [np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])], lambda x: np.max(x, axis=1), axes=[1])
case("min_nan", "min", [np.array([[1.0, np.nan, 3.0], [4.0, 5.0, 6.0]])], lambda x: np.min(x, axis=1), axes=[1])
for kind, f in {"all": np.all, "any": np.any}.items():
    for dt in ["bool", "int8", "float64"]:
        x = sample(dt, (3, 4), -1, 1)
        for axes in [None, [0], [1]]:
            case(f"{kind}_{dt}_{axes}", kind, [x], lambda x, axes=axes, f=f: np.asarray(
                f(x, axis=None if axes is None else tuple(axes))), axes=axes)
    case(f"{kind}_empty", kind, [np.zeros((0,), dtype=bool)], lambda x, f=f: np.asarray(f(x)), axes=None)
for kind, f in {"argmax": np.argmax, "argmin": np.argmin}.items():
    for dt in FLOATS + ["int8", "uint8", "int64", "bool"]:
        x = sample(dt, (4, 5), -3, 3)
        for axis in [None, 0, 1, -1]:
            case(f"{kind}_{dt}_{axis}", kind, [x], lambda x, axis=axis, f=f: np.asarray(f(x, axis=axis)), axis=axis)
    case(f"{kind}_ties", kind, [np.array([3, 1, 3, 1, 3])], lambda x, f=f: np.asarray(f(x)), axis=None)
    case(f"{kind}_nan", kind, [np.array([[1.0, np.nan, 5.0, np.nan], [2.0, 0.0, 9.0, 9.0]])],
         lambda x, f=f: f(x, axis=1), axis=1)
    case(f"{kind}_empty", kind, [np.zeros((0, 2))], lambda x, f=f: f(x, axis=0), axis=0)
for kind, f in {"cumsum": np.cumsum, "cumprod": np.cumprod}.items():
    for dt in FLOATS + ["int8", "uint8", "int64", "bool"]:
        x = sample(dt, (3, 4), -3, 3)
        for axis in [None, 0, 1]:
            case(f"{kind}_{dt}_{axis}", kind, [x], lambda x, axis=axis, f=f: f(x, axis=axis).astype(
                "int64" if x.dtype.kind in "biu" else x.dtype), axis=axis)
    case(f"{kind}_empty", kind, [np.zeros((0, 3))], lambda x, f=f: f(x, axis=0), axis=0)

# ---------------------------------------------------------------- Graph helpers
for dt in FLOATS + ["int32"]:
    x = sample(dt, (4, 6), -4, 4)
    for axes in [None, [0], [1]]:
        ax = None if axes is None else tuple(axes)
        case(f"mean_{dt}_{axes}", "mean", [x], lambda x, ax=ax: np.asarray(np.mean(x, axis=ax)), axes=axes)
        for ddof in [0, 1]:
            case(f"var_{dt}_{axes}_ddof{ddof}", "var", [x],
                 lambda x, ax=ax, ddof=ddof: np.asarray(np.var(x, axis=ax, ddof=ddof)), axes=axes, ddof=ddof)
            case(f"std_{dt}_{axes}_ddof{ddof}", "std", [x],
                 lambda x, ax=ax, ddof=ddof: np.asarray(np.std(x, axis=ax, ddof=ddof)), axes=axes, ddof=ddof)


def np_logsumexp(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isinf(m), 0.0, m)
    return np.squeeze(np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m, axis=axis)


for dt in FLOATS:
    x = sample(dt, (3, 5), -20, 20)
    for axes in [None, [0], [1]]:
        ax = None if axes is None else tuple(axes)
        case(f"logsumexp_{dt}_{axes}", "logsumexp", [x], lambda x, ax=ax: np.asarray(np_logsumexp(x, ax)), axes=axes)
case("logsumexp_large", "logsumexp", [np.array([1000.0, 1000.0, -1000.0])], lambda x: np.asarray(1000.0 + np.log(2.0)),
     axes=None)
case("logsumexp_all_neg_inf", "logsumexp", [np.array([[-np.inf, -np.inf], [0.0, -np.inf]])],
     lambda x: np.array([-np.inf, 0.0]), axes=[1])


def np_softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


for dt in FLOATS:
    x = sample(dt, (4, 6), -30, 30)
    for axis in [0, 1, -1]:
        case(f"softmax_{dt}_{axis}", "softmax", [x], lambda x, axis=axis: np_softmax(x, axis), axis=axis)
        case(f"log_softmax_{dt}_{axis}", "log_softmax", [x],
             lambda x, axis=axis: (x - np.max(x, axis=axis, keepdims=True)) - np.log(
                 np.sum(np.exp(x - np.max(x, axis=axis, keepdims=True)), axis=axis, keepdims=True)), axis=axis)
case("softmax_large", "softmax", [np.array([[1000.0, 1001.0, 999.0]])], lambda x: np_softmax(x, 1), axis=1)

# ---------------------------------------------------------------- Shape ops
for dt in ["float64", "int16", "bool"]:
    x = sample(dt, (2, 3, 4))
    case(f"reshape_{dt}", "reshape", [x], lambda x: x.reshape(4, -1), shape=[4, -1])
case("reshape_to_scalar", "reshape", [np.array([7.0])], lambda x: x.reshape(()), shape=[])
case("reshape_empty", "reshape", [np.zeros((0, 4))], lambda x: x.reshape(2, 0, -1), shape=[2, 0, -1])
case("reshape_bad_size", "reshape", [np.zeros((2, 3))], lambda x: x.reshape(4, -1), shape=[4, -1])
case("reshape_of_transpose", "transpose_reshape", [sample("float32", (3, 4))], lambda x: x.T.reshape(-1), shape=[-1])
case("flatten_3d", "reshape", [x3], lambda x: x.reshape(-1), shape=[-1])
for dt in ["float32", "int8"]:
    v = sample(dt, (1, 3))
    case(f"alloc_{dt}", "alloc", [v], lambda v: np.broadcast_to(v, (2, 4, 3)), shape=[2, 4, 3])
case("alloc_scalar", "alloc", [np.array(2.5)], lambda v: np.broadcast_to(v, (3, 2)), shape=[3, 2])
case("alloc_empty", "alloc", [np.array(1.0)], lambda v: np.broadcast_to(v, (0, 2)), shape=[0, 2])
case("alloc_negative", "alloc", [np.array(1.0)], lambda v: np.broadcast_to(v, (-1, 2)), shape=[-1, 2])
for dt in ["float64", "int32", "uint8"]:
    case(f"arange_{dt}", "arange", [], lambda dt=dt: np.arange(2, 17, 3, dtype=dt), start=2, stop=17, step=3, dtype=dt)
case("arange_negative_step", "arange", [], lambda: np.arange(5, -4, -2, dtype="int64"), start=5, stop=-4, step=-2,
     dtype="int64")
case("arange_float_step", "arange", [], lambda: np.arange(0.0, 1.0, 0.25), start=0.0, stop=1.0, step=0.25,
     dtype="float64")
case("arange_empty", "arange", [], lambda: np.arange(3, 1, 1, dtype="int64"), start=3, stop=1, step=1, dtype="int64")
case("arange_zero_step", "arange", [], lambda: np.arange(0, 3, 0, dtype="int64"), start=0, stop=3, step=0,
     dtype="int64")
for dt in ["float64", "int8"]:
    a, b = sample(dt, (2, 3)), sample(dt, (4, 3))
    case(f"concatenate_axis0_{dt}", "concatenate", [a, b], lambda a, b: np.concatenate([a, b], axis=0), axis=0)
case("concatenate_axis1", "concatenate", [sample("float32", (2, 1)), sample("float32", (2, 3)),
                                           sample("float32", (2, 2))],
     lambda *xs: np.concatenate(xs, axis=1), axis=1)
case("concatenate_promotes", "concatenate", [sample("int8", (3,)), sample("float32", (2,))],
     lambda a, b: np.concatenate([a, b]), axis=0)
case("concatenate_mismatch", "concatenate", [sample("float64", (2, 3)), sample("float64", (2, 4))],
     lambda a, b: np.concatenate([a, b], axis=0), axis=0)
case("stack_axis1", "stack", [sample("float64", (2, 3)), sample("float64", (2, 3))],
     lambda a, b: np.stack([a, b], axis=1), axis=1)


def np_split(x, sizes, axis):
    if sum(sizes) != x.shape[axis] or min(sizes) < 0:
        raise ValueError("sizes")
    return np.split(x, np.cumsum(sizes)[:-1], axis=axis)


case("split_axis0", "split", [sample("float64", (6, 2))], lambda x: np_split(x, [2, 0, 4], 0), sizes=[2, 0, 4], axis=0)
case("split_axis1_int16", "split", [sample("int16", (2, 5))], lambda x: np_split(x, [1, 4], 1), sizes=[1, 4], axis=1)
case("split_bad_sizes", "split", [sample("float64", (6,))], lambda x: np_split(x, [2, 2], 0), sizes=[2, 2], axis=0)
case("shape_3d", "shape", [x3], lambda x: np.array(x.shape, dtype=np.int64))
case("make_vector_promotes", "make_vector", [np.array(1, dtype=np.int8), np.array(2.5, dtype=np.float32)],
     lambda a, b: np.array([a, b], dtype=np.float32))

# ---------------------------------------------------------------- Basic indexing
# Index entries: {"i": k} integer, {"s": [start, stop, step]} slice (null = omitted),
# {"a": k} the k-th extra input (an integer array or boolean mask).


def apply_index(x, spec, extra):
    key = []
    for e in spec:
        if "i" in e:
            key.append(e["i"])
        elif "s" in e:
            key.append(slice(*e["s"]))
        else:
            key.append(extra[e["a"]])
    return tuple(key)


def index_case(name, x, spec, extra=()):
    case(name, "get", [x, *extra], lambda x, *ex: np.array(x[apply_index(x, spec, ex)]), index=spec)


v = np.arange(10.0)
m = sample("int32", (4, 5), -50, 50)
for name, spec in {
    "int": [{"i": 3}], "negative_int": [{"i": -1}], "slice": [{"s": [2, 7, None]}],
    "reverse": [{"s": [None, None, -1]}], "negative_step_bounds": [{"s": [8, 2, -2]}],
    "step3": [{"s": [1, None, 3]}], "tail": [{"s": [-3, None, None]}], "empty_slice": [{"s": [7, 2, None]}],
    "start_zero_reverse": [{"s": [0, None, -1]}], "clamped": [{"s": [-100, 100, None]}],
    "out_of_range": [{"i": 10}], "negative_out_of_range": [{"i": -11}],
}.items():
    index_case(f"get_vector_{name}", v, spec)
for name, spec in {
    "row": [{"i": 1}], "column": [{"s": [None, None, None]}, {"i": -2}],
    "sub_block": [{"s": [1, None, None]}, {"s": [None, -1, None]}],
    "reversed_rows_every_other_col": [{"s": [None, None, -1]}, {"s": [None, None, 2]}],
    "element": [{"i": 2}, {"i": 3}], "column_out_of_range": [{"s": [None, None, None]}, {"i": 5}],
}.items():
    index_case(f"get_matrix_{name}", m, spec)
index_case("get_empty_array", np.zeros((0, 3)), [{"s": [None, None, -1]}])

# ---------------------------------------------------------------- Advanced indexing
t = sample("float64", (4, 5, 3), -9, 9)
index_case("adv_int_array", v, [{"a": 0}], [np.array([0, 9, -1, 3, 3])])
index_case("adv_int_array_2d_index", v, [{"a": 0}], [np.array([[1, 2], [-3, 0]])])
index_case("adv_mask_vector", v, [{"a": 0}], [v > 4.5])
index_case("adv_mask_matrix", m, [{"a": 0}], [m > 0])
index_case("adv_rows", m, [{"a": 0}], [np.array([3, 0, 0])])
index_case("adv_columns", m, [{"s": [None, None, None]}, {"a": 0}], [np.array([4, 0])])
index_case("adv_pairs", m, [{"a": 0}, {"a": 1}], [np.array([0, 3, 1]), np.array([4, 4, -5])])
index_case("adv_broadcast_pairs", m, [{"a": 0}, {"a": 1}], [np.array([[0], [2]]), np.array([1, 3, 4])])
index_case("adv_slice_then_array", m, [{"s": [1, None, None]}, {"a": 0}], [np.array([0, 0, 2])])
index_case("adv_nonadjacent", t, [{"a": 0}, {"s": [None, None, None]}, {"a": 1}],
           [np.array([0, 3]), np.array([2, 1])])
index_case("adv_adjacent_middle", t, [{"s": [None, None, -1]}, {"a": 0}, {"a": 1}],
           [np.array([0, 4]), np.array([2, 1])])
index_case("adv_int_with_array", t, [{"i": 1}, {"s": [None, None, None]}, {"a": 0}], [np.array([0, 2])])
index_case("adv_mask_rows", m, [{"a": 0}, {"s": [None, None, 2]}], [np.array([True, False, True, True])])
index_case("adv_out_of_range", v, [{"a": 0}], [np.array([1, 10])])
index_case("adv_mask_wrong_shape", v, [{"a": 0}], [np.ones(9, dtype=bool)])
index_case("adv_empty_index", m, [{"a": 0}], [np.zeros((0,), dtype=np.int64)])


def write_case(name, kind, x, spec, y, extra=()):
    def f(x, y, *ex):
        out = x.copy()
        key = apply_index(out, spec, ex)
        if kind == "set":
            out[key] = y
        elif any("a" in e for e in spec):
            np.add.at(out, key, y)  # advanced inc accumulates repeated indices
        else:
            out[key] += y
        return out
    case(name, kind, [x, y, *extra], f, index=spec)


for kind in ["set", "inc"]:
    write_case(f"{kind}_vector_slice", kind, v, [{"s": [2, 5, None]}], np.array([1.0, 2.0, 3.0]))
    write_case(f"{kind}_vector_reverse_broadcast", kind, v, [{"s": [None, None, -3]}], np.array([7.0]))
    write_case(f"{kind}_matrix_row", kind, m, [{"i": -1}], np.arange(5, dtype=np.int32))
    write_case(f"{kind}_matrix_block_broadcast", kind, m, [{"s": [1, 3, None]}, {"s": [None, None, 2]}],
               np.array([[10], [20]], dtype=np.int32))
    write_case(f"{kind}_scalar", kind, m, [{"i": 0}, {"i": 0}], np.array(5, dtype=np.int32))
    write_case(f"{kind}_out_of_range", kind, v, [{"i": 12}], np.array(1.0))
    write_case(f"{kind}_adv_repeated", kind, v, [{"a": 0}], np.array([1.0, 2.0, 3.0, 4.0]),
               [np.array([1, 3, 1, -9])])
    write_case(f"{kind}_adv_mask", kind, m, [{"a": 0}], np.array(100, dtype=np.int32), [m < 0])
    write_case(f"{kind}_adv_pairs_broadcast", kind, m, [{"a": 0}, {"a": 1}], np.array([[1], [2]], dtype=np.int32),
               [np.array([[0], [2]]), np.array([1, 1, 4])])
    write_case(f"{kind}_adv_columns", kind, m, [{"s": [None, None, None]}, {"a": 0}],
               np.array([5, 6], dtype=np.int32), [np.array([4, 4])])
    write_case(f"{kind}_adv_out_of_range", kind, v, [{"a": 0}], np.array(1.0), [np.array([0, 10])])

# ---------------------------------------------------------------- Dot
for dt in FLOATS + ["int8", "int64", "bool"]:
    a, b, c = sample(dt, (3, 4), -3, 3), sample(dt, (4, 2), -3, 3), sample(dt, (4,), -3, 3)
    case(f"dot_mm_{dt}", "dot", [a, b], np.dot)
    case(f"dot_mv_{dt}", "dot", [a, c], np.dot)
    case(f"dot_vm_{dt}", "dot", [c, b], np.dot)
    case(f"dot_vv_{dt}", "dot", [c, c], lambda x, y: np.asarray(np.dot(x, y)))
case("dot_mixed_dtypes", "dot", [sample("int16", (2, 3)), sample("float32", (3, 2))], np.dot)
case("dot_empty_inner", "dot", [np.zeros((2, 0)), np.zeros((0, 3))], np.dot)
case("dot_mismatch", "dot", [sample("float64", (2, 3)), sample("float64", (4, 2))], np.dot)

# ---------------------------------------------------------------- Linear algebra
# Right-hand sides say whether their core is a vector or a matrix (`b_ndim`, as PyTensor's
# solve); NumPy 2 reads a batched b as matrices, so for batched vectors the script adds and
# drops the column itself. Eigenvector
# signs are arbitrary: the test graph and this script both flip each column so that its
# first row is positive.
def spd(dt, shape):
    a = rng.standard_normal(shape)
    n = shape[-1]
    return (a @ np.swapaxes(a, -1, -2) / n + np.eye(n)).astype(dt)


def solve_vec(a, b):
    return np.linalg.solve(a, b[..., None])[..., 0]


def tri_solve(lower, vector):
    def f(a, b):
        t = np.tril(a) if lower else np.triu(a)
        return solve_vec(t, b) if vector else np.linalg.solve(t, b)
    return f


def eigh_signed(x):
    w, v = np.linalg.eigh(x)
    return w, v * np.sign(v[..., :1, :])


for dt in FLOATS:
    for shape in [(4, 4), (3, 5, 5), (2, 1, 3, 3)]:
        tag = "x".join(map(str, shape))
        g = rng.standard_normal(shape).astype(dt)
        case(f"det_{tag}_{dt}", "det", [g], np.linalg.det)
        case(f"slogdet_{tag}_{dt}", "slogdet", [g], lambda x: tuple(np.linalg.slogdet(x)))
        case(f"inv_{tag}_{dt}", "inv", [g], np.linalg.inv)
        s = spd(dt, shape)
        case(f"cholesky_{tag}_{dt}", "cholesky", [s], np.linalg.cholesky, lower=True)
        case(f"cholesky_upper_{tag}_{dt}", "cholesky", [s], lambda x: np.linalg.cholesky(x, upper=True),
             lower=False)
        case(f"eigh_{tag}_{dt}", "eigh", [s], eigh_signed)
        n = shape[-1]
        bv = rng.standard_normal(shape[:-1]).astype(dt)
        bm = rng.standard_normal(shape[:-1] + (2,)).astype(dt)
        case(f"solve_vec_{tag}_{dt}", "solve", [g, bv], solve_vec, b_ndim=1)
        case(f"solve_mat_{tag}_{dt}", "solve", [g, bm], np.linalg.solve, b_ndim=2)
        t = (g + 3 * np.eye(n)).astype(dt)
        for lower in [True, False]:
            side = "lower" if lower else "upper"
            case(f"solve_triangular_{side}_vec_{tag}_{dt}", "solve_triangular", [t, bv],
                 tri_solve(lower, True), lower=lower, b_ndim=1)
            case(f"solve_triangular_{side}_mat_{tag}_{dt}", "solve_triangular", [t, bm],
                 tri_solve(lower, False), lower=lower, b_ndim=2)
    r = rng.standard_normal((3, 4, 5)).astype(dt)
    for off in [0, 1, -2, 7]:
        case(f"diagonal_{off}_{dt}", "diagonal", [r], lambda x, o=off: np.diagonal(x, o, -2, -1), offset=off,
             axis1=-2, axis2=-1)
    case(f"diagonal_axes02_{dt}", "diagonal", [r], lambda x: np.diagonal(x, 1, 0, 2), offset=1, axis1=0, axis2=2)
    case(f"matmul_batch_matrix_{dt}", "matmul", [rng.standard_normal((3, 2, 4)).astype(dt),
                                                 rng.standard_normal((4, 5)).astype(dt)], np.matmul)
    case(f"matmul_batch_batch_{dt}", "matmul", [rng.standard_normal((3, 2, 4)).astype(dt),
                                                rng.standard_normal((3, 4, 5)).astype(dt)], np.matmul)
    case(f"matmul_broadcast_{dt}", "matmul", [rng.standard_normal((2, 1, 3, 4)).astype(dt),
                                              rng.standard_normal((5, 4, 2)).astype(dt)], np.matmul)
    case(f"matmul_batch_vector_{dt}", "matmul", [rng.standard_normal((3, 2, 4)).astype(dt),
                                                 rng.standard_normal((4,)).astype(dt)], np.matmul)
# Integer matrices are cast to float64 first.
case("det_int64", "det", [rng.integers(-3, 4, (3, 3))], lambda x: np.linalg.det(x.astype(np.float64)))
case("solve_int32", "solve", [np.array([[2, 1], [1, 3]], dtype=np.int32), np.array([1, 2], dtype=np.int32)],
     lambda a, b: np.linalg.solve(a.astype(np.float64), b.astype(np.float64)), b_ndim=1)
# Singular and indefinite matrices, mismatched sizes.
sing = np.array([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0], [1.0, 0.0, 1.0]])
case("det_singular", "det", [sing], np.linalg.det)
case("slogdet_singular", "slogdet", [sing], lambda x: tuple(np.linalg.slogdet(x)))
case("slogdet_negative", "slogdet", [np.array([[0.0, 2.0], [3.0, 1.0]])], lambda x: tuple(np.linalg.slogdet(x)))
case("inv_singular", "inv", [sing], np.linalg.inv)
case("inv_singular_in_batch", "inv", [np.stack([np.eye(3), sing])], np.linalg.inv)
case("solve_singular", "solve", [sing, np.ones(3)], np.linalg.solve, b_ndim=1)
case("cholesky_indefinite", "cholesky", [np.array([[1.0, 2.0], [2.0, 1.0]])], np.linalg.cholesky, lower=True)
case("solve_rows_mismatch", "solve", [np.eye(3), np.ones(4)], np.linalg.solve, b_ndim=1)
case("det_not_square", "det", [np.ones((2, 3))], np.linalg.det)
case("solve_batch_mismatch", "solve", [np.stack([np.eye(2)] * 3), np.ones((4, 2))], solve_vec, b_ndim=1)
case("det_empty_batch", "det", [np.zeros((0, 3, 3))], np.linalg.det)
case("det_0x0", "det", [np.zeros((0, 0))], np.linalg.det)

out = pathlib.Path(__file__).resolve().parent.parent / "tests" / "data" / "numpy_cases.json"
out.parent.mkdir(parents=True, exist_ok=True)
out.write_text(json.dumps({"numpy": np.__version__, "cases": CASES}, separators=(",", ":")) + "\n")
print(f"wrote {len(CASES)} cases to {out}")
