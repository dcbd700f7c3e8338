"""Peer timings for `cargo bench --bench compare -- --peers`.

Runs the harness's workloads (W1, W2, W3, W4a, W4b, W7, W7b, W8a, W8b; same sizes, float64)
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
    median, runs = timed(fn)
    RECORDS.append(dict(workload=workload, size=size, backend=backend, median_s=median, runs=runs))
    print(f"  {workload:4} {size:>10} {backend:16} {median * 1e3:12.4f} ms", file=sys.stderr, flush=True)


def record_compile(workload, backend, build):
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
    # Compile times: PyTensor caches compiled modules on disk, so later builds are warm.
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

    def cold(fn, *args):
        # A fresh function object each time: tracing and XLA compilation, no jit cache hit.
        return lambda: jax.jit(lambda *a: fn(*a)).lower(*args).compile()

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
