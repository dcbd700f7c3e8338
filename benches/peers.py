"""Peer timings for `cargo bench --bench compare -- --peers`.

Runs the harness's workloads (W1, W2, W3, W4a, W4b, W7, W7b, W8a–W8d, and the scans W5,
W5t, W5c, W6, W10, the choice W11, the value and gradient W9 and the batched MvNormal
log-density W12, the normal draws W13/W13b as `../shared/peers/workloads*.py` define them;
same sizes, float64)
in NumPy, PyTensor (C backend: mode "CVM"; NUMBA backend: mode "NUMBA") and JAX (x64),
each peer skipped with a message when it cannot be imported, and writes the records to
the file named by PEERS_JSON as a JSON array in the harness's schema.
"""
import json
import os
import statistics
import sys
import time

import numpy as np

RECORDS = []
# The workloads to time (comma-separated, as the harness's --only); all when unset.
ONLY = set(filter(None, os.environ.get("PEERS_ONLY", "").split(",")))


def timed(fn, runs=9):
    """Median seconds per call after a warm-up (at least 3 calls and 0.3 s, as the Rust
    harness does); fast calls are averaged over a batch."""
    warm, calls = time.perf_counter(), 0
    while calls < 3 or time.perf_counter() - warm < 0.3:
        fn()
        calls += 1
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    inner = max(1, int(2e-3 / once)) if once < 1e-4 else 1
    runs = 5 if once > 0.5 else runs
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples), runs


def record(workload, size, backend, fn):
    if ONLY and workload not in ONLY:
        return
    median, runs = timed(fn)
    RECORDS.append(dict(workload=workload, size=size, backend=backend, median_s=median, runs=runs))
    print(f"  {workload:4} {size:>10} {backend:16} {median * 1e3:12.4f} ms", file=sys.stderr, flush=True)


def record_compile(workload, backend, build):
    if ONLY and workload not in ONLY:
        return
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        build()
        samples.append(time.perf_counter() - start)
    RECORDS.append(dict(workload=workload, size="compile", backend=backend,
                        median_s=statistics.median(samples), runs=5))


rng = np.random.default_rng(42)
N = 10_000_000
x, y, z = (rng.uniform(-3, 3, N) for _ in range(3))
x3, y3, z3 = (v[:1000].copy() for v in (x, y, z))
m2000 = rng.uniform(-3, 3, (2000, 2000))
a4000 = rng.uniform(-3, 3, (4000, 2500))
one = np.ones(1)
N5 = 100_000
L10, BOUND10 = 12.0, 200_000
x11 = rng.uniform(-3, 3, 1_000_000)
a9, w9 = rng.standard_normal((2000, 500)), rng.standard_normal(500) * 0.01
N13 = 10_000_000
B12, D12 = 10_000, 16
a12 = rng.standard_normal((B12, D12, D12)) / np.sqrt(D12)
cov12 = a12 @ a12.transpose(0, 2, 1) + np.eye(D12)
mu12, x12 = rng.standard_normal((B12, D12)), rng.standard_normal(D12)


def w12_numpy(cov, mu, xx):
    lc = np.linalg.cholesky(cov)
    zz = np.linalg.solve(lc, (xx - mu)[..., None])[..., 0]
    return (-0.5 * (zz * zz).sum(-1) - np.log(np.diagonal(lc, axis1=-2, axis2=-1)).sum(-1)
            - 0.5 * D12 * np.log(2 * np.pi))


ref12 = w12_numpy(cov12, mu12, x12)


def w5_loop(trace):
    """W5 in a Python loop (NumPy's scalar sin); the trace as an array when asked."""
    out, s = [], 0.0
    for t in range(N5):
        s = 0.99 * s + np.sin(t)
        if trace:
            out.append(s)
    return np.array(out) if trace else s


def w6_loop(x):
    while True:
        new = x / 2 + 1 / x
        if abs(new - x) < 1e-12:
            return new
        x = new


def w10_loop(limit):
    out, s, t = [], 0.0, 0
    while True:
        s += 1.0 / (t + 1)
        t += 1
        out.append(s)
        if s > limit:
            return np.array(out)


def numpy_peer():
    def softmax(m):
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def logsumexp(v):
        top = v.max()
        return top + np.log(np.exp(v - top).sum())

    record("W1", "1e3", "numpy", lambda: np.exp(x3) * y3 + np.sin(z3) * 0.5)
    record("W1", "1e7", "numpy", lambda: np.exp(x) * y + np.sin(z) * 0.5)
    record("W2", "1e7", "numpy", lambda: logsumexp(x))
    record("W3", "2000x2000", "numpy", lambda: softmax(m2000))
    record("W4a", "4000x2500", "numpy", lambda: a4000.sum(axis=0))
    record("W4b", "4000x2500", "numpy", lambda: a4000.sum(axis=1))
    record("W7", "1", "numpy", lambda: one + 1)
    record("W7b", "1", "numpy", lambda: ten_nodes(np, one, one))
    record("W5", "1e5", "numpy", lambda: w5_loop(False))
    record("W5t", "1e5", "numpy", lambda: w5_loop(True))
    record("W5c", "1e5", "numpy", lambda: w5_loop(False))
    record("W6", "while", "numpy", lambda: w6_loop(1e6))
    record("W10", "L=12", "numpy", lambda: w10_loop(L10))
    record("W11", "1e6", "numpy", lambda: x11[0] + 1.0)

    def value_and_grad_by_hand():
        r = a9 @ w9
        return np.log1p(np.exp(r)).sum(), a9.T @ (1.0 / (1.0 + np.exp(-r)))

    record("W9", "2000x500", "numpy", value_and_grad_by_hand)
    record("W12", "1e4x16", "numpy", lambda: w12_numpy(cov12, mu12, x12))
    g13 = np.random.default_rng(1)
    record("W13", "1e7", "numpy", lambda: g13.standard_normal(N13))
    record("W13b", "1e7", "numpy", lambda: np.exp(g13.standard_normal(N13)).sum())


def ten_nodes(xp, p, q):
    """W7b: ten operations on one-element vectors (per-call overhead of several steps)."""
    n5 = xp.max(p * xp.sum(xp.exp(p + q)))
    return xp.sin(xp.cumsum(q[::-1] + n5)) * 2


def pytensor_peer(mode, name):
    import pytensor
    import pytensor.tensor as pt

    def w1():
        a, b, c = pt.dvector("x"), pt.dvector("y"), pt.dvector("z")
        return pytensor.function([a, b, c], pt.exp(a) * b + pt.sin(c) * 0.5, mode=mode)

    def w3():
        m = pt.dmatrix("m")
        return pytensor.function([m], pt.special.softmax(m, axis=1), mode=mode)

    f1 = w1()
    record("W1", "1e3", name, lambda: f1(x3, y3, z3))
    record("W1", "1e7", name, lambda: f1(x, y, z))
    v = pt.dvector("v")
    f2 = pytensor.function([v], pt.logsumexp(v), mode=mode)
    record("W2", "1e7", name, lambda: f2(x))
    f3 = w3()
    record("W3", "2000x2000", name, lambda: f3(m2000))
    m = pt.dmatrix("m")
    f4a = pytensor.function([m], m.sum(axis=0), mode=mode)
    f4b = pytensor.function([m], m.sum(axis=1), mode=mode)
    record("W4a", "4000x2500", name, lambda: f4a(a4000))
    record("W4b", "4000x2500", name, lambda: f4b(a4000))
    f7 = pytensor.function([v], v + 1, mode=mode)
    record("W7", "1", name, lambda: f7(one))
    w = pt.dvector("w")
    f7b = pytensor.function([v, w], ten_nodes(pt, v, w), mode=mode)
    record("W7b", "1", name, lambda: f7b(one, one))
    from pytensor import scan
    from pytensor.scan.utils import until

    x0 = pt.dscalar("x0")
    ts = pt.arange(N5, dtype="float64")
    outs = scan(lambda t, s: 0.99 * s + pt.sin(t), sequences=[ts], outputs_info=[x0],
                return_updates=False)
    f5 = pytensor.function([x0], outs[-1], mode=mode)
    f5t = pytensor.function([x0], outs, mode=mode)
    record("W5", "1e5", name, lambda: f5(0.0))
    record("W5t", "1e5", name, lambda: f5t(0.0))
    t0 = pt.dscalar("t0")
    carried, _ = scan(lambda s, t: (0.99 * s + pt.sin(t), t + 1.0),
                      outputs_info=[x0, t0], n_steps=N5, return_updates=False)
    f5c = pytensor.function([x0, t0], carried[-1], mode=mode)
    record("W5c", "1e5", name, lambda: f5c(0.0, 0.0))
    record_compile("W8c", name, lambda: pytensor.function([x0, t0], carried[-1], mode=mode))

    def newton(s):
        new = s / 2 + 1 / s
        return new, until(pt.abs(new - s) < 1e-12)

    w6 = scan(newton, outputs_info=[x0], n_steps=10_000, return_updates=False)
    f6 = pytensor.function([x0], w6[-1], mode=mode)
    record("W6", "while", name, lambda: f6(1e6))
    lim = pt.dscalar("l")

    def harmonic(t, s, limit):
        new = s + 1.0 / (t + 1.0)
        return new, until(new > limit)

    tr = scan(harmonic, sequences=[pt.arange(BOUND10, dtype="float64")],
              outputs_info=[pt.constant(0.0, dtype="float64")], non_sequences=[lim],
              return_updates=False)
    f10 = pytensor.function([lim], tr, mode=mode)
    record("W10", "L=12", name, lambda: f10(L10))
    from pytensor.ifelse import ifelse

    c = pt.bscalar("c")
    expensive = pt.sum(pt.exp(pt.sin(v)) * pt.cos(v) ** 2)
    cheap = v[0] + 1.0
    f11 = pytensor.function([c, v], ifelse(c, expensive, cheap), mode=mode)
    f11s = pytensor.function([c, v], pt.switch(c, expensive, cheap), mode=mode)
    record("W11", "1e6", name, lambda: f11(0, x11))
    record("W11", "1e6", name + "_switch", lambda: f11s(0, x11))
    am, wv = pt.matrix("A", dtype="float64"), pt.vector("w", dtype="float64")
    cost9 = pt.sum(pt.log1p(pt.exp(am @ wv)))
    f9 = pytensor.function([am, wv], [cost9, pytensor.grad(cost9, wv)], mode=mode)
    record("W9", "2000x500", name, lambda: f9(a9, w9))
    from pytensor.graph.replace import vectorize_graph
    from pytensor.tensor.linalg import cholesky, solve_triangular

    cv, m12, xx = pt.dmatrix("cov"), pt.dvector("mu"), pt.dvector("x")
    lc = cholesky(cv)
    zz = solve_triangular(lc, xx - m12, lower=True)
    lp = -0.5 * (zz * zz).sum() - pt.log(pt.diagonal(lc)).sum() - 0.5 * D12 * np.log(2 * np.pi)
    bc, bm = pt.dtensor3("covs"), pt.dmatrix("mus")
    f12 = pytensor.function([bc, bm, xx], vectorize_graph(lp, replace={cv: bc, m12: bm}), mode=mode)
    assert np.allclose(f12(cov12, mu12, x12), ref12)
    record("W12", "1e4x16", name, lambda: f12(cov12, mu12, x12))
    r13 = pytensor.shared(np.random.default_rng(2))
    nxt13, d13 = pt.random.normal(size=N13, rng=r13).owner.outputs
    f13 = pytensor.function([], d13, updates={r13: nxt13}, mode=mode)
    record("W13", "1e7", name, f13)
    r13b = pytensor.shared(np.random.default_rng(3))
    nxt13b, d13b = pt.random.normal(size=N13, rng=r13b).owner.outputs
    f13b = pytensor.function([], pt.exp(d13b).sum(), updates={r13b: nxt13b}, mode=mode)
    record("W13b", "1e7", name, f13b)
    # Compile times: PyTensor caches compiled modules on disk, so later builds are warm.
    record_compile("W8d", name, lambda: pytensor.function(
        [am, wv], [cost9, pytensor.grad(cost9, wv)], mode=mode))
    record_compile("W8a", name, w1)
    record_compile("W8b", name, w3)


def jax_peer():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def w1(a, b, c):
        return jnp.exp(a) * b + jnp.sin(c) * 0.5

    f1 = jax.jit(w1)
    jx, jy, jz = (jnp.asarray(v) for v in (x, y, z))
    jx3, jy3, jz3 = (jnp.asarray(v) for v in (x3, y3, z3))
    record("W1", "1e3", "jax", lambda: f1(jx3, jy3, jz3).block_until_ready())
    record("W1", "1e7", "jax", lambda: f1(jx, jy, jz).block_until_ready())
    f2 = jax.jit(jax.scipy.special.logsumexp)
    record("W2", "1e7", "jax", lambda: f2(jx).block_until_ready())
    f3 = jax.jit(lambda m: jax.nn.softmax(m, axis=1))
    jm = jnp.asarray(m2000)
    record("W3", "2000x2000", "jax", lambda: f3(jm).block_until_ready())
    ja = jnp.asarray(a4000)
    f4a = jax.jit(lambda a: a.sum(axis=0))
    f4b = jax.jit(lambda a: a.sum(axis=1))
    record("W4a", "4000x2500", "jax", lambda: f4a(ja).block_until_ready())
    record("W4b", "4000x2500", "jax", lambda: f4b(ja).block_until_ready())
    f7 = jax.jit(lambda v: v + 1)
    jone = jnp.ones(1)
    record("W7", "1", "jax", lambda: f7(jone).block_until_ready())
    f7b = jax.jit(lambda p, q: ten_nodes(jnp, p, q))
    record("W7b", "1", "jax", lambda: f7b(jone, jone).block_until_ready())

    def w5(x0):
        def body(s, t):
            n = 0.99 * s + jnp.sin(t)
            return n, n
        return jax.lax.scan(body, x0, jnp.arange(N5, dtype=jnp.float64))

    f5 = jax.jit(lambda s: w5(s)[0])
    f5t = jax.jit(lambda s: w5(s)[1])
    f5c = jax.jit(lambda s: jax.lax.fori_loop(
        0, N5, lambda t, v: 0.99 * v + jnp.sin(t.astype(jnp.float64)), s))
    record("W5", "1e5", "jax", lambda: f5(0.0).block_until_ready())
    record("W5t", "1e5", "jax", lambda: f5t(0.0).block_until_ready())
    record("W5c", "1e5", "jax", lambda: f5c(0.0).block_until_ready())
    record_compile("W8c", "jax", lambda: jax.jit(lambda v: jax.lax.fori_loop(
        0, N5, lambda t, u: 0.99 * u + jnp.sin(t.astype(jnp.float64)), v)).lower(0.0).compile())

    def w6(x0):
        def cond(c):
            return jnp.abs(c[1] - c[0]) >= 1e-12

        def body(c):
            return (c[1], c[1] / 2 + 1 / c[1])

        return jax.lax.while_loop(cond, body, (x0, x0 / 2 + 1 / x0))[1]

    f6 = jax.jit(w6)
    record("W6", "while", "jax", lambda: f6(1e6).block_until_ready())

    def w10(limit):
        # JAX needs a preallocated maximum and a slice after the call.
        def cond(c):
            return (c[1] <= limit) & (c[0] < BOUND10)

        def body(c):
            t, s, b = c
            s = s + 1.0 / (t + 1.0)
            return t + 1, s, b.at[t].set(s)

        t, _, b = jax.lax.while_loop(cond, body, (0, 0.0, jnp.zeros(BOUND10)))
        return t, b

    f10 = jax.jit(w10)

    def w10_call():
        t, b = f10(L10)
        return np.asarray(b[:int(t)])

    record("W10", "L=12", "jax", w10_call)
    jx11 = jnp.asarray(x11)
    f11 = jax.jit(lambda c, u: jax.lax.cond(
        c, lambda w: jnp.sum(jnp.exp(jnp.sin(w)) * jnp.cos(w) ** 2), lambda w: w[0] + 1.0, u))
    record("W11", "1e6", "jax", lambda: f11(False, jx11).block_until_ready())

    def cold(fn, *args):
        # A fresh function object each time: tracing and XLA compilation, no jit cache hit.
        return lambda: jax.jit(lambda *a: fn(*a)).lower(*args).compile()

    cost9 = lambda a, w: jnp.sum(jnp.log1p(jnp.exp(a @ w)))
    ja9, jw9 = jnp.asarray(a9), jnp.asarray(w9)
    f9 = jax.jit(jax.value_and_grad(cost9, argnums=1))
    jax.block_until_ready(f9(ja9, jw9))
    record("W9", "2000x500", "jax", lambda: jax.block_until_ready(f9(ja9, jw9)))
    from jax.scipy.linalg import solve_triangular as jst

    def lp12(cov, mu, xx):
        lc = jnp.linalg.cholesky(cov)
        zz = jst(lc, xx - mu, lower=True)
        return -0.5 * (zz * zz).sum() - jnp.log(jnp.diagonal(lc)).sum() - 0.5 * D12 * jnp.log(2 * jnp.pi)

    f12 = jax.jit(jax.vmap(lp12, in_axes=(0, 0, None)))
    jc12, jm12, jx12 = map(jnp.asarray, (cov12, mu12, x12))
    assert np.allclose(np.asarray(f12(jc12, jm12, jx12)), ref12)
    record("W12", "1e4x16", "jax", lambda: f12(jc12, jm12, jx12).block_until_ready())
    f13 = jax.jit(lambda k: jax.random.normal(k, (N13,)))
    key13 = jax.random.key(0)
    f13(key13).block_until_ready()
    record("W13", "1e7", "jax", lambda: f13(key13).block_until_ready())
    f13b = jax.jit(lambda k: jnp.exp(jax.random.normal(k, (N13,))).sum())
    f13b(key13).block_until_ready()
    record("W13b", "1e7", "jax", lambda: f13b(key13).block_until_ready())
    record_compile("W8d", "jax", cold(jax.value_and_grad(cost9, argnums=1), ja9, jw9))
    record_compile("W8a", "jax", cold(w1, jx3, jy3, jz3))
    record_compile("W8b", "jax", cold(lambda m: jax.nn.softmax(m, axis=1), jm[:2]))


PEERS = [
    ("numpy", numpy_peer),
    ("pytensor_c", lambda: pytensor_peer("CVM", "pytensor_c")),
    ("pytensor_numba", lambda: pytensor_peer("NUMBA", "pytensor_numba")),
    ("jax", jax_peer),
]

for name, run in PEERS:
    try:
        run()
    except ImportError as e:
        print(f"peer {name} skipped: {e}", file=sys.stderr)

out = os.environ.get("PEERS_JSON")
if out:
    with open(out, "w") as f:
        json.dump(RECORDS, f, indent=1)
