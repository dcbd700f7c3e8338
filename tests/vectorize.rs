//! vectorize_graph (issue 20, first step): each batching rule against the oracle of
//! stacking the unbatched function applied to each batch element, in both backends,
//! including the outputs' static shapes; unbatched operands broadcast; runtime
//! broadcasting of batch dimensions is refused; ops without a rule become Blockwise.

use ndarray::Axis;
use tensorlift::prelude::*;
use tensorlift::testing::spread;

/// Element `i` of a batched value along its first axis.
fn element(d: &TensorData, i: usize) -> TensorData {
    d.to_array::<f64>().index_axis(Axis(0), i).to_owned().into()
}

/// Checks `vectorize_graph(out, x → xs)` against the unbatched function applied to each
/// element of the batched value (the other inputs shared), in both backends.
fn check_batched(x: &Var, others: &[&Var], out: &Var, xs: &Var, values: &[TensorData]) {
    let batched = vectorize_graph(&[out], &[(x, xs)]).unwrap();
    // Static shapes: the batch's, then every core size the unbatched output knows.
    let (bs, cs) = (batched[0].static_shape(), out.static_shape());
    let extra = xs.ndim() - x.ndim();
    assert_eq!(bs.len(), cs.len() + extra, "{}", out.label());
    assert_eq!(bs[..extra], xs.static_shape()[..extra], "{}", out.label());
    for (d, s) in cs.iter().enumerate() {
        if s.is_some() {
            assert_eq!(bs[extra + d], *s, "{}: core dimension {d}", out.label());
        }
    }
    let mut batched_inputs = vec![xs];
    batched_inputs.extend(others);
    let mut inputs = vec![x];
    inputs.extend(others);
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&batched_inputs, &[&batched[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = f.call(values).unwrap().remove(0);
        let g = function(&inputs, &[out])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let n = values[0].shape()[0];
        let mut rows = Vec::new();
        for i in 0..n {
            let mut args = vec![element(&values[0], i)];
            args.extend(values[1..].iter().cloned());
            rows.push(g.call(&args).unwrap().remove(0).to_array::<f64>());
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        let want = ndarray::stack(Axis(0), &views).unwrap();
        assert_eq!(got.shape(), want.shape(), "{mode:?}: {}", out.label());
        let got = got.to_array::<f64>();
        for (a, b) in got.iter().zip(want.iter()) {
            assert!(
                (a - b).abs() <= 1e-12 * (1.0 + b.abs()) || (a.is_nan() && b.is_nan()),
                "{mode:?} {}: {a} vs {b}",
                out.label()
            );
        }
    }
}

#[test]
fn element_wise_ops_batch_with_unbatched_operands_broadcast() {
    let (x, w) = (vector("x", Float64), vector("w", Float64));
    let xs = matrix("xs", Float64);
    let out = (x.exp() * &w + 0.5).sin();
    check_batched(
        &x,
        &[&w],
        &out,
        &xs,
        &[spread(&[4, 3], -1.0, 1.0), spread(&[3], 0.0, 2.0)],
    );
    // The static batch size carries over to the output type.
    let fixed = tensor("xs", Float64, [Some(4), None]);
    let batched = vectorize_graph(&[&out], &[(&x, &fixed)]).unwrap();
    assert_eq!(batched[0].ty().to_string(), "Matrix(float64, shape=(4, ?))");
}

#[test]
fn reductions_scans_of_axes_and_softmax_batch_along_shifted_axes() {
    let x = matrix("x", Float64);
    let xs = tensor("xs", Float64, [None, None, None]);
    let values = [spread(&[3, 4, 5], -2.0, 2.0)];
    for out in [
        x.sum(0),
        x.max(1),
        x.prod(All),
        x.logsumexp(1),
        x.mean(0),
        x.var(1),
        x.argmax(1).cast(Float64),
        x.cumsum(0),
        x.cumprod(1),
        x.softmax(1),
        x.log_softmax(0),
    ] {
        check_batched(&x, &[], &out, &xs, &values);
    }
}

#[test]
fn shuffles_checks_and_basic_indexing_batch() {
    let x = matrix("x", Float64);
    let xs = tensor("xs", Float64, [None, None, None]);
    let values = [spread(&[2, 4, 3], -2.0, 2.0)];
    let i = scalar("i", Int64);
    for out in [
        x.t(),
        x.expand_dims(1).sin(),
        x.get(idx![1..3, ..;-1]),
        x.get(idx![2]),
        x.specify_shape(&[Some(4), Some(3)]).exp(),
        x.check_that(&[x.shape_i(0).gt(0i64)], "x has rows").sqr(),
    ] {
        check_batched(&x, &[], &out, &xs, &values);
    }
    // A symbolic (unbatched) index.
    check_batched(
        &x,
        &[&i],
        &x.get(vec![Idx::At((&i).into())]),
        &xs,
        &[values[0].clone(), TensorData::scalar(1i64)],
    );
}

#[test]
fn batches_of_different_depths_and_sizes() {
    // x gets two batch dimensions, y one: y's broadcasts over x's outer one.
    let (x, y) = (vector("x", Float64), vector("y", Float64));
    let (xs, ys) = (
        tensor("xs", Float64, [None, None, None]),
        matrix("ys", Float64),
    );
    let out = &x * &y;
    let batched = vectorize_graph(&[&out], &[(&x, &xs), (&y, &ys)]).unwrap();
    assert_eq!(batched[0].ndim(), 3);
    let f = function(&[&xs, &ys], &[&batched[0]]).compile().unwrap();
    let (a, b) = (spread(&[2, 3, 4], -1.0, 1.0), spread(&[3, 4], -1.0, 1.0));
    let got = f.call(&[a.clone(), b.clone()]).unwrap()[0].to_array::<f64>();
    let want = a.to_array::<f64>() * b.to_array::<f64>();
    assert_eq!(got, want);
    // Batch sizes that differ at run time are refused (no runtime broadcasting).
    let wrong = spread(&[2, 4], -1.0, 1.0);
    let e = f
        .call(&[spread(&[3, 3, 4], -1.0, 1.0), wrong])
        .unwrap_err()
        .to_string();
    assert!(e.contains("runtime broadcasting is not supported"), "{e}");
}

#[test]
fn ops_without_a_rule_fall_back_to_blockwise() {
    let x = vector("x", Float64);
    let xs = matrix("xs", Float64);
    let batch = spread(&[3, 5], -1.0, 1.0);
    let is_blockwise = |v: &Var| {
        let b = vectorize_graph(&[v], &[(&x, &xs)]).unwrap();
        let printed = dprint(&[&b[0]]).unwrap();
        assert!(printed.contains("Blockwise{"), "{printed}");
    };
    let is_blockwise_in = |v: &Var, x: &Var, xs: &Var| {
        let b = vectorize_graph(&[v], &[(x, xs)]).unwrap();
        let printed = dprint(&[&b[0]]).unwrap();
        assert!(printed.contains("Blockwise{"), "{printed}");
    };
    // A running sum of the flattened input, advanced indexing, an advanced write.
    let running = x.cumsum(None);
    is_blockwise(&running);
    check_batched(&x, &[], &running, &xs, std::slice::from_ref(&batch));
    let index = constant(TensorData::from(ndarray::array![0i64, 2, 2]));
    let picked = x.get(vec![Idx::Array(index.clone())]);
    check_batched(&x, &[], &picked, &xs, std::slice::from_ref(&batch));
    // An index array then a slice, a mask after a slice, a pair of arrays (each a
    // native AdvancedSubtensor), an array with an integer (a Blockwise: NumPy's
    // placement of its dimensions differs).
    let (m, ms) = (
        matrix("m", Float64),
        tensor("ms", Float64, [None, None, None]),
    );
    let scattered = m.get(vec![Idx::Array(index.clone()), Idx::full()]);
    check_batched(&m, &[], &scattered, &ms, &[spread(&[2, 4, 3], -1.0, 1.0)]);
    let mask = constant(TensorData::from(ndarray::array![true, false, true]));
    let masked = m.get(vec![Idx::full(), Idx::Array(mask)]);
    check_batched(&m, &[], &masked, &ms, &[spread(&[2, 4, 3], -1.0, 1.0)]);
    let pair = m.get(vec![Idx::Array(index.clone()), Idx::Array(index.clone())]);
    check_batched(&m, &[], &pair, &ms, &[spread(&[2, 4, 3], -1.0, 1.0)]);
    let mixed = m.get(vec![Idx::Array(index.clone()), 1i64.into()]);
    is_blockwise_in(&mixed, &m, &ms);
    check_batched(&m, &[], &mixed, &ms, &[spread(&[2, 4, 3], -1.0, 1.0)]);
    let bumped = x.inc(vec![Idx::Array(index.clone())], 1.5);
    check_batched(&x, &[], &bumped, &xs, std::slice::from_ref(&batch));
    // An advanced write of a batched value into a shared x (repeated indices add up).
    let (v, vs) = (vector("v", Float64), matrix("vs", Float64));
    let scattered_in = x.inc(vec![Idx::Array(index.clone())], &v);
    let native = vectorize_graph(&[&scattered_in], &[(&v, &vs)]).unwrap();
    assert!(!dprint(&[&native[0]]).unwrap().contains("Blockwise"));
    check_batched(
        &v,
        &[&x],
        &scattered_in,
        &vs,
        &[spread(&[2, 3], -1.0, 1.0), spread(&[5], -1.0, 1.0)],
    );
    let set_rows = m.set(vec![Idx::Array(index.clone()), Idx::full()], 0.0);
    check_batched(&m, &[], &set_rows, &ms, &[spread(&[2, 4, 3], -1.0, 1.0)]);
    let e = vectorize_graph(&[&x.exp()], &[(&x, &vector("v", Float64))]);
    assert!(e.is_ok(), "no extra dimension is no batch");
    let e = vectorize_graph(&[&x.exp()], &[(&x, &scalar("s", Float64))]).unwrap_err();
    assert!(e.to_string().contains("leading batch"), "{e}");
}

/// A Blockwise whose core results differ in shape between batch elements is refused
/// when it runs, naming the op.
#[test]
fn blockwise_core_shapes_must_agree() {
    let (x, n) = (vector("x", Float64), scalar("n", Int64));
    let xs = matrix("xs", Float64);
    let ns = vector("ns", Int64);
    let out = x.get(vec![(0i64..).into()]).sum(All) + arange(&n).cast(Float64).sum(All);
    let grown = (&x * 1.0).get(vec![Idx::slice(None, Some((&n).into()), None)]);
    let b = vectorize_graph(&[&grown, &out], &[(&x, &xs), (&n, &ns)]).unwrap();
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&xs, &ns], &[&b[0]])
            .mode(mode)
            .compile()
            .unwrap();
        let ok = f.call(&[spread(&[2, 4], -1.0, 1.0), ndarray::array![3i64, 3].into()]);
        assert_eq!(ok.unwrap()[0].shape(), &[2, 3]);
        let e = f
            .call(&[spread(&[2, 4], -1.0, 1.0), ndarray::array![3i64, 2].into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("one core shape for the whole batch"), "{e}");
    }
}

#[test]
fn vmap_takes_batch_axes_anywhere_and_nests() {
    // Examples in the columns of xs (in_axes 1), w shared; outputs stacked along axis 0
    // and along axis 1.
    let (xs, w) = (matrix("xs", Float64), vector("w", Float64));
    let out = vmap(
        |v| vec![(&v[0] * &v[1]).sum(All), v[0].exp() * &v[1]],
        &[&xs, &w],
        &[Some(1), None],
        &[0, 1],
    )
    .unwrap();
    let (a, b) = (spread(&[3, 5], -1.0, 1.0), spread(&[3], 0.0, 2.0));
    let (am, bv) = (a.to_array::<f64>(), b.to_array::<f64>());
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&xs, &w], &[&out[0], &out[1]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = f.call(&[a.clone(), b.clone()]).unwrap();
        // Per column j: sum(xs[:, j] * w), and exp(xs[:, j]) * w as column j.
        assert_eq!(got[0].shape(), &[5]);
        assert_eq!(got[1].shape(), &[3, 5]);
        let sums = got[0].to_f64_vec();
        let cols = got[1].to_array::<f64>();
        for j in 0..5 {
            let want: f64 = (0..3).map(|i| am[[i, j]] * bv[i]).sum();
            assert!((sums[j] - want).abs() < 1e-12, "{mode:?}");
            for i in 0..3 {
                assert!(
                    (cols[[i, j]] - am[[i, j]].exp() * bv[i]).abs() < 1e-12,
                    "{mode:?}"
                );
            }
        }
    }
    // Nested: the outer vmap over axis 0 of a 3-d value, the inner over axis 1 of each
    // slice: max over the remaining axis, for every (i, k).
    let t = tensor("t", Float64, [None, None, None]);
    let nested = vmap(
        |outer| {
            vmap(
                |inner| vec![inner[0].max(All)],
                &[&outer[0]],
                &[Some(1)],
                &[0],
            )
            .unwrap()
        },
        &[&t],
        &[Some(0)],
        &[0],
    )
    .unwrap();
    let tv = spread(&[2, 4, 3], -2.0, 2.0);
    let f = function(&[&t], &[&nested[0]]).compile().unwrap();
    let got = f.call(std::slice::from_ref(&tv)).unwrap()[0].to_array::<f64>();
    let want = tv.to_array::<f64>().map_axis(Axis(1), |lane| {
        lane.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    });
    assert_eq!(got, want);
    // Axes out of range are errors naming them.
    let e = vmap(|v| vec![v[0].exp()], &[&w], &[Some(1)], &[0]).unwrap_err();
    assert!(e.to_string().contains("in_axes[0] is 1"), "{e}");
}

#[test]
fn products_of_batched_vectors_batch() {
    let (x, w, u) = (
        vector("x", Float64),
        matrix("w", Float64),
        vector("u", Float64),
    );
    let xs = matrix("xs", Float64);
    let batch = spread(&[4, 3], -1.0, 1.0);
    // W x, x W, x·u, u·x for x batched.
    check_batched(
        &x,
        &[&w],
        &w.dot(&x).tanh(),
        &xs,
        &[batch.clone(), spread(&[2, 3], -1.0, 1.0)],
    );
    check_batched(
        &x,
        &[&w],
        &x.dot(&w),
        &xs,
        &[batch.clone(), spread(&[3, 5], -1.0, 1.0)],
    );
    check_batched(
        &x,
        &[&u],
        &x.dot(&u),
        &xs,
        &[batch.clone(), spread(&[3], -1.0, 1.0)],
    );
    check_batched(
        &x,
        &[&u],
        &u.dot(&x),
        &xs,
        &[batch.clone(), spread(&[3], -1.0, 1.0)],
    );
    // x·x with x batched: one dot per element.
    check_batched(&x, &[], &x.dot(&x), &xs, &[batch]);
    // A batched matrix: a batched matmul (Blockwise of Dot).
    let m = matrix("m", Float64);
    let ms = tensor("ms", Float64, [None, None, None]);
    let (um, w) = (matrix("um", Float64), vector("w", Float64));
    let cube = spread(&[3, 2, 4], -1.0, 1.0);
    check_batched(
        &m,
        &[&um],
        &m.dot(&um),
        &ms,
        &[cube.clone(), spread(&[4, 5], -1.0, 1.0)],
    );
    check_batched(
        &m,
        &[&w],
        &m.dot(&w),
        &ms,
        &[cube.clone(), spread(&[4], -1.0, 1.0)],
    );
    check_batched(
        &m,
        &[&um],
        &um.dot(&m),
        &ms,
        &[cube, spread(&[5, 2], -1.0, 1.0)],
    );
}

#[test]
fn allocs_reshapes_and_joins_batch() {
    let (x, u) = (vector("x", Float64), vector("u", Float64));
    let xs = matrix("xs", Float64);
    let batch = spread(&[3, 4], -1.0, 1.0);
    let shared = spread(&[2], -1.0, 1.0);
    // broadcast_to: x (4,) spread to (2, 4).
    check_batched(
        &x,
        &[],
        &x.broadcast_to(&[2.into(), 4.into()]).exp(),
        &xs,
        std::slice::from_ref(&batch),
    );
    // Reshapes, with a -1, and flatten of a derived matrix.
    check_batched(
        &x,
        &[],
        &x.reshape(&[2, -1]).sum(0),
        &xs,
        std::slice::from_ref(&batch),
    );
    check_batched(
        &x,
        &[],
        &x.reshape(&[2, 2]).t().flatten(),
        &xs,
        std::slice::from_ref(&batch),
    );
    // A join of a batched piece with a shared one.
    check_batched(
        &x,
        &[&u],
        &concatenate(&[&x.sin(), &u], 0),
        &xs,
        &[batch, shared],
    );
}

#[test]
fn splits_region_writes_and_ifelse_batch() {
    let x = vector("x", Float64);
    let xs = matrix("xs", Float64);
    let batch = spread(&[3, 6], -1.0, 1.0);
    let no_blockwise = |v: &Var, pairs: &[(&Var, &Var)]| {
        let b = vectorize_graph(&[v], pairs).unwrap();
        let printed = dprint(&[&b[0]]).unwrap();
        assert!(!printed.contains("Blockwise"), "{printed}");
    };
    // Split along the shifted axis.
    let parts = split(&x, &[2, 4], 0).unwrap();
    let joined = &parts[1].sum(All) * 2.0 + parts[0].get(vec![1i64.into()]);
    no_blockwise(&joined, &[(&x, &xs)]);
    check_batched(&x, &[], &joined, &xs, std::slice::from_ref(&batch));
    // A region write: batched x with a scalar, with a batched y, and an unbatched x
    // written with a batched y.
    let y = scalar("y", Float64);
    let written = x.set(
        vec![Idx::slice(Some(1i64.into()), Some(4i64.into()), None)],
        &y,
    );
    no_blockwise(&written, &[(&x, &xs)]);
    check_batched(
        &x,
        &[&y],
        &written,
        &xs,
        &[batch.clone(), TensorData::scalar(0.5)],
    );
    let (w, ws) = (vector("w", Float64), matrix("ws", Float64));
    let bumped = x.inc(vec![Idx::slice(None, Some(3i64.into()), None)], &w);
    check_batched(
        &w,
        &[&x],
        &bumped,
        &ws,
        &[spread(&[4, 3], -1.0, 1.0), spread(&[6], -1.0, 1.0)],
    );
    // IfElse with an unbatched condition stays lazy; a batched one becomes a switch.
    let c = scalar("c", Bool);
    let chosen = ifelse(
        &c,
        &[&x.exp().sum(All)],
        &[&(x.get(vec![0i64.into()]) + 1.0)],
    );
    let b = vectorize_graph(&[&chosen[0]], &[(&x, &xs)]).unwrap();
    assert!(dprint(&[&b[0]]).unwrap().contains("IfElse"));
    for cond in [true, false] {
        check_batched(
            &x,
            &[&c],
            &chosen[0],
            &xs,
            &[batch.clone(), TensorData::scalar(cond)],
        );
    }
    // A branch that does not read the batch is spread over it.
    let k = scalar("k", Float64);
    let mixed = ifelse(&c, &[&x.sum(All)], &[&k]);
    check_batched(
        &x,
        &[&c, &k],
        &mixed[0],
        &xs,
        &[
            batch.clone(),
            TensorData::scalar(false),
            TensorData::scalar(2.5),
        ],
    );
    // A batched condition: a switch per element (both branches run).
    let (t, ts) = (scalar("t", Float64), vector("ts", Float64));
    let per_element = ifelse(&t.gt(0.0), &[&x.sum(All)], &[&x.max(All)]);
    let b = vectorize_graph(&[&per_element[0]], &[(&x, &xs), (&t, &ts)]).unwrap();
    let printed = dprint(&[&b[0]]).unwrap();
    assert!(
        printed.contains("Switch") && !printed.contains("IfElse"),
        "{printed}"
    );
    let conds = ndarray::array![1.0, -1.0, 2.0];
    for mode in [Mode::Reference, Mode::Jit] {
        let f = function(&[&xs, &ts], &[&b[0]])
            .mode(mode.clone())
            .compile()
            .unwrap();
        let got = f.call(&[batch.clone(), conds.clone().into()]).unwrap()[0].to_f64_vec();
        let g = function(&[&x, &t], &[&per_element[0]])
            .mode(mode)
            .compile()
            .unwrap();
        for (i, value) in got.iter().enumerate() {
            let want = g
                .call(&[element(&batch, i), TensorData::scalar(conds[i])])
                .unwrap()[0]
                .item_f64()
                .unwrap();
            assert_eq!(*value, want);
        }
    }
}

#[test]
fn scans_batch_their_body() {
    let is_scan = |v: &Var, pairs: &[(&Var, &Var)]| {
        let b = vectorize_graph(&[v], pairs).unwrap();
        let printed = dprint(&[&b[0]]).unwrap();
        assert!(
            printed.contains("Scan") && !printed.contains("Blockwise"),
            "{printed}"
        );
    };
    // An RNN over a batched sequence (T × d per element), shared weights, last state
    // and trace.
    let (xseq, h0, w) = (
        matrix("xseq", Float64),
        vector("h0", Float64),
        matrix("w", Float64),
    );
    let rnn = scan(|s| vec![(s.non_sequence(0).dot(&s.state(0)) + s.sequence(0)).tanh()])
        .sequences(&[&xseq])
        .states(&[&h0])
        .non_sequences(&[&w])
        .build();
    let xs = tensor("xs", Float64, [None, None, None]);
    let (h0v, wv) = (spread(&[3], -0.5, 0.5), spread(&[3, 3], -0.4, 0.4));
    let seqs = spread(&[4, 5, 3], -1.0, 1.0);
    for out in [rnn.last(0), rnn.trace(0).sum(All)] {
        is_scan(&out, &[(&xseq, &xs)]);
        check_batched(
            &xseq,
            &[&h0, &w],
            &out,
            &xs,
            &[seqs.clone(), h0v.clone(), wv.clone()],
        );
    }
    // The trace itself, with the batch moved back in front.
    check_batched(
        &xseq,
        &[&h0, &w],
        &rnn.trace(0),
        &xs,
        &[seqs.clone(), h0v.clone(), wv.clone()],
    );
    // A batched initial state with an unbatched sequence.
    let h0s = matrix("h0s", Float64);
    let seq1 = spread(&[5, 3], -1.0, 1.0);
    check_batched(
        &h0,
        &[&xseq, &w],
        &rnn.last(0),
        &h0s,
        &[spread(&[4, 3], -0.5, 0.5), seq1, wv.clone()],
    );
    // Two taps with a batched initial block.
    let (block, n) = (matrix("block", Float64), scalar("n", Int64));
    let fib = scan(|s| vec![s.state_at(0, -2) * 0.5 + s.state_at(0, -1)])
        .state_taps(&block, &[-2, -1])
        .n_steps(&n)
        .build();
    let blocks = tensor("blocks", Float64, [None, None, None]);
    is_scan(&fib.last(0), &[(&block, &blocks)]);
    check_batched(
        &block,
        &[&n],
        &fib.trace(0),
        &blocks,
        &[spread(&[3, 2, 4], -1.0, 1.0), TensorData::scalar(6i64)],
    );
    // A while-scan whose stop depends on the batch: each element stops at its own step
    // (Blockwise of the scan).
    let x0 = scalar("x0", Float64);
    let halving = scan(|s| {
        let next = s.state(0) * 0.5;
        s.until(&next.lt(0.1));
        vec![next]
    })
    .states(&[&x0])
    .build();
    let x0s = vector("x0s", Float64);
    check_batched(
        &x0,
        &[],
        &halving.last(0),
        &x0s,
        &[ndarray::array![1.0, 7.0, 0.3].into()],
    );
}
