"""Fuzzing the public API: bad input raises the documented ``ValueError`` — never an XLA crash,
another exception type, or a silent NaN.

Each case draws arguments that are often wrong — odd shapes, empty arrays, NaN, ±inf, huge
values, out-of-range hyperparameters, unknown names — calls one public function on concrete
values, and accepts exactly two outcomes: ``ValueError``, or a result with no NaN in it (±inf
is an honest float result: an overflow, or a documented infinity such as KL where p > 0 = q).
Anything else — another exception, an XLA error, a silent NaN — fails the test. The number of
cases run is reported at the end of the session.
"""

from __future__ import annotations

import collections
import json
import math
import os
import warnings
from pathlib import Path

import hypothesis.extra.numpy as hnp
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mlwork import foundations as fd
from mlwork import nn, optim, theory, trees

#: case name -> [calls, ValueErrors]
COUNTS: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])

JUNK = st.sampled_from([np.nan, np.inf, -np.inf, 1e30, -1e30, 0.0, -0.0, 1e-38])
FLOATS = st.one_of(st.floats(-10, 10, width=32), JUNK)
CLEAN = st.floats(-10, 10, width=32)


def arrays(min_dims=0, max_dims=2, max_side=3, elements=FLOATS, min_side=0):
    shape = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)
    return hnp.arrays(np.float32, shape, elements=elements)


def scalars():
    return st.one_of(st.floats(-5, 5), JUNK, st.integers(-3, 3))


#: Counts of every integer type and size: Python ints beyond int64, NumPy int64/uint64 beyond
#: int32 (which jnp.asarray wrapped), negative and zero ones.
BIG_COUNTS = st.one_of(
    st.integers(-2, 2**70),
    st.integers(-2**63, 2**63 - 1).map(np.int64),
    st.integers(0, 2**64 - 1).map(np.uint64),
)


def _no_nan(out) -> bool:
    for leaf in jax.tree.leaves(out):
        a = np.asarray(leaf)
        if a.dtype.kind in "fc" and np.isnan(a).any():
            return False
    return True


def check(name: str, fn, *args, allow_inf: bool = True, **kwargs):
    """Call ``fn``: a ``ValueError`` is accepted; otherwise no NaN may come out (±inf may: an
    overflow, or a documented infinity such as KL where p > 0 = q)."""
    del allow_inf
    COUNTS[name][0] += 1
    try:
        out = fn(*args, **kwargs)
    except ValueError:
        COUNTS[name][1] += 1
        return None
    assert _no_nan(out), f"{name} returned NaN silently for args {args} {kwargs}"
    return out


# Draws per case; raise it for a longer hunt: MLWORK_FUZZ_EXAMPLES=1000 uv run pytest tests/test_fuzz.py
FUZZ = settings(max_examples=int(os.environ.get("MLWORK_FUZZ_EXAMPLES", "25")), deadline=None)

# ------------------------------------------------------------------------------------------
# mlwork.nn
# ------------------------------------------------------------------------------------------

ELEMENTWISE = ["sigmoid", "relu", "tanh", "sigmoid_grad", "relu_grad", "tanh_grad", "softmax", "log_softmax",
               "softmax_grad"]


# One hypothesis run per name (rather than a drawn name): every function gets its share of the
# draws, well-formed ones included.
@pytest.mark.parametrize("name", ELEMENTWISE)
@FUZZ
@given(x=st.one_of(arrays(max_dims=2), arrays(1, 2, min_side=1, elements=CLEAN)))
def test_activations(name, x):
    check(f"nn.{name}", getattr(nn, name), x, allow_inf=False)


LOSSES = ["mse", "mae", "binary_cross_entropy", "binary_cross_entropy_with_logits", "categorical_cross_entropy",
          "softmax_cross_entropy"]


@st.composite
def loss_inputs(draw, name):
    """Predictions and targets of matching shapes with values valid for ``name``."""
    n, k = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    unit = st.floats(0.0009765625, 0.9990234375, width=32)
    if name in ("binary_cross_entropy", "categorical_cross_entropy"):
        a = draw(hnp.arrays(np.float32, (n, k), elements=unit))
    else:
        a = draw(hnp.arrays(np.float32, (n, k), elements=CLEAN))
    if name == "softmax_cross_entropy":
        b = draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, k - 1)))
    elif name == "categorical_cross_entropy":
        b = np.eye(k, dtype=np.float32)[draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, k - 1)))]
    elif "binary" in name:
        b = draw(hnp.arrays(np.float32, (n, k), elements=st.sampled_from([0.0, 1.0])))
    else:
        b = draw(hnp.arrays(np.float32, (n, k), elements=CLEAN))
    return a, b


@pytest.mark.parametrize("name", LOSSES)
@FUZZ
@given(a=arrays(1, 2), b=st.one_of(arrays(1, 2), hnp.arrays(np.int32, st.integers(0, 3), elements=st.integers(-2, 4))),
       valid=st.booleans(), data=st.data())
def test_losses(name, a, b, valid, data):
    if valid:
        a, b = data.draw(loss_inputs(name))
    check(f"nn.{name}", getattr(nn, name), a, b)


@FUZZ
@given(sizes=st.one_of(st.lists(st.one_of(st.integers(-2, 4), st.just(2.5), st.just("3")), min_size=0, max_size=4),
                       st.lists(st.integers(1, 4), min_size=2, max_size=4)),
       activation=st.sampled_from(["relu", "tanh", "sigmoid", "softmax", "swish", None]),
       dropout=st.sampled_from([0.0, 0.5, 1.0, -0.1, float("nan")]), x=arrays(0, 3, 4))
@example(sizes=[3, 4, 2], activation="relu", dropout=0.5, x=np.ones((2, 3), np.float32))
def test_mlp(sizes, activation, dropout, x):
    model = check("nn.mlp", nn.mlp, sizes, activation=activation, dropout=dropout)
    if model is None:
        return
    variables = model.init(jax.random.key(0))
    check("nn.mlp.apply", model.apply, variables, x)
    check("nn.count_params", nn.count_params, variables)


@FUZZ
@given(n=st.integers(-1, 4), x=arrays(0, 2, 4), activation=st.sampled_from(["sigmoid", "identity", "softmax", "x"]),
       valid=st.booleans(), data=st.data())
def test_perceptron(n, x, activation, valid, data):
    if valid:  # n inputs, a batch of finite rows of width n
        n, activation = data.draw(st.integers(1, 4)), data.draw(st.sampled_from(["sigmoid", "identity"]))
        x = data.draw(hnp.arrays(np.float32, (data.draw(st.integers(1, 3)), n), elements=CLEAN))
    model = check("nn.perceptron", nn.perceptron, n, activation)
    if model is not None:
        check("nn.perceptron.apply", model.apply, model.init(jax.random.key(1)), x)


@FUZZ
@given(x=arrays(1, 2, 4), y=arrays(0, 2, 4), loss=st.sampled_from(["mse", "softmax_cross_entropy", "hinge"]),
       valid=st.booleans(), data=st.data())
def test_backprop(x, y, loss, valid, data):
    params = nn.mlp([3, 4, 2]).init(jax.random.key(0))["params"]
    if valid:
        n = data.draw(st.integers(1, 4))
        x = data.draw(hnp.arrays(np.float32, (n, 3), elements=CLEAN))
        y = (data.draw(hnp.arrays(np.int32, (n,), elements=st.integers(0, 1))) if loss == "softmax_cross_entropy"
             else data.draw(hnp.arrays(np.float32, (n, 2), elements=CLEAN)))
    check("nn.backprop", nn.backprop, params, x, y, loss=loss)


@FUZZ
@given(x=arrays(0, 2, 4), rate=st.sampled_from([0.0, 0.3, 1.0, 2.0, -1.0, float("nan")]))
def test_dropout(x, rate):
    check("nn.dropout", nn.dropout, x, rate, key=jax.random.key(0), train=True)


# ------------------------------------------------------------------------------------------
# mlwork.optim
# ------------------------------------------------------------------------------------------


@FUZZ
@given(name=st.sampled_from([*optim.OPTIMIZERS, "adagrad"]), lr=scalars(),
       hp=st.dictionaries(st.sampled_from(["beta", "b1", "b2", "eps", "weight_decay", "clip_norm", "l1"]), scalars(),
                          max_size=2),
       grads=arrays(1, 1, 3, min_side=3))
def test_optimizer(name, lr, hp, grads):
    tx = check("optim.optimizer", optim.optimizer, name, lr, **hp)
    if tx is None:
        return
    params = jnp.ones(3)
    state = check("optim.optimizer.init", tx.init, params)  # weight_decay/l1 with a mask selecting nothing
    if state is not None:
        check("optim.optimizer.update", tx.update, jnp.asarray(grads), state, params)


@FUZZ
@given(name=st.sampled_from([*optim.SCHEDULES, "linear"]),
       kw=st.fixed_dictionaries({}, optional={k: scalars() for k in ("value", "init_value", "step_size", "gamma",
                                                                     "rate", "total_steps", "min_value",
                                                                     "peak_value", "warmup_steps")}),
       t=st.integers(0, 50))
def test_schedule(name, kw, t):
    sched = check("optim.schedule", optim.schedule, name, **kw)
    if sched is not None:
        check("optim.schedule(t)", sched, t)


@FUZZ
@given(strength=scalars(), w=arrays(2, 2, 3))
def test_penalties(strength, w):
    params = {"W": jnp.asarray(w), "b": jnp.zeros(2)}
    check("optim.l2_penalty", optim.l2_penalty, params, strength)
    check("optim.l1_penalty", optim.l1_penalty, params, strength)
    tx = check("optim.l1_proximal", optim.l1_proximal, strength, 0.1)
    if tx is not None:
        check("optim.l1_proximal.update", tx.update, params, tx.init(params), params)


@FUZZ
@given(x=arrays(0, 3, 4), n=st.integers(-1, 4), momentum=st.sampled_from([0.9, 1.0, -0.5]),
       valid=st.booleans(), data=st.data())
def test_batch_norm(x, n, momentum, valid, data):
    if valid:  # a batch of finite rows with n features, and a momentum in [0, 1)
        n = data.draw(st.integers(1, 4))
        x = data.draw(hnp.arrays(np.float32, (data.draw(st.integers(1, 5)), n), elements=CLEAN))
        momentum = data.draw(st.sampled_from([0.0, 0.5, 0.9]))
    made = check("nn.batch_norm_init", nn.batch_norm_init, n)
    if made is not None:
        check("nn.batch_norm", nn.batch_norm, x, *made, train=True, momentum=momentum)


@FUZZ
@given(patience=st.one_of(st.integers(-2, 3), st.just(1.5)), delta=scalars(), mode=st.sampled_from(["min", "max", "x"]),
       value=scalars())
def test_early_stopping(patience, delta, mode, value):
    es = check("optim.early_stopping", optim.early_stopping, patience, delta, mode)
    if es is not None:
        check("optim.early_stopping.update", es.update, es.init(), value, allow_inf=True)


# ------------------------------------------------------------------------------------------
# mlwork.theory
# ------------------------------------------------------------------------------------------

PROBS = st.one_of(st.floats(0, 1, width=32), JUNK, st.just(-0.2))


def distributions(shape):
    """Rows that are probability distributions (zeros allowed) of ``shape``."""
    weights = hnp.arrays(np.float32, shape, elements=st.one_of(st.floats(0.0078125, 1, width=32), st.just(0.0)))
    normalise = lambda w: (w / w.sum(-1, keepdims=True)).astype(np.float32)  # noqa: E731
    return weights.filter(lambda w: np.all(w.sum(-1) > 0)).map(normalise)


@pytest.mark.parametrize("name", ["entropy", "self_information", "entropy_from_logits", "joint_entropy",
                                  "conditional_entropy", "mutual_information"])
@FUZZ
@given(p=st.one_of(arrays(0, 2, 3, elements=PROBS), distributions((3,)), distributions((2, 3))),
       normalize=st.booleans(), valid=st.booleans(), data=st.data())
def test_information_one(name, p, normalize, valid, data):
    if valid:  # what ``name`` takes: a joint distribution, a distribution, probabilities or logits
        if name in ("joint_entropy", "conditional_entropy", "mutual_information"):
            p = data.draw(distributions((6,)).map(lambda w: w.reshape(2, 3)))
        elif name == "entropy_from_logits":
            p = data.draw(hnp.arrays(np.float32, (2, 3), elements=CLEAN))
        else:
            p = data.draw(distributions((3,)))
    fn = getattr(theory, name)
    kwargs = {} if name in ("self_information", "entropy_from_logits") else {"normalize": normalize}
    check(f"theory.{name}", fn, p, allow_inf=name == "information", **kwargs)


@pytest.mark.parametrize("name", ["cross_entropy", "kl_divergence", "js_divergence", "kl_from_logits"])
@FUZZ
@given(p=arrays(1, 2, 3, elements=PROBS), q=arrays(1, 2, 3, elements=PROBS),
       base=st.sampled_from([2.0, math.e, 1.0, -2.0]), valid=st.booleans(), data=st.data())
def test_information_two(name, p, q, base, valid, data):
    if valid:
        shape = data.draw(st.sampled_from([(2,), (3,), (2, 3)]))
        p, q = data.draw(distributions(shape)), data.draw(distributions(shape))
    check(f"theory.{name}", getattr(theory, name), p, q, base=base,
          allow_inf=name in ("cross_entropy", "kl_divergence"))


@FUZZ
@given(mu=arrays(0, 1, 3), sigma=arrays(0, 1, 3))
def test_gaussians(mu, sigma):
    check("theory.gaussian_kl", theory.gaussian_kl, mu, sigma, jnp.zeros(()), jnp.ones(()))
    check("theory.gaussian_entropy", theory.gaussian_entropy, sigma)


@FUZZ
@given(r=scalars(), d=scalars(), n=scalars(), delta=scalars(), kl=scalars(),
       form=st.sampled_from(["mcallester", "kl", "other"]), valid=st.booleans(), data=st.data())
def test_bounds(r, d, n, delta, kl, form, valid, data):
    if valid:
        r, delta = data.draw(st.floats(0, 1)), data.draw(st.floats(1e-6, 0.999))
        d, n = data.draw(st.integers(1, 100)), data.draw(st.integers(1, 10**6))
        kl = data.draw(st.floats(0, 100))
        form = data.draw(st.sampled_from(["mcallester", "kl"]))
    elif data.draw(st.booleans()):  # huge counts of any integer type
        d, n = data.draw(BIG_COUNTS), data.draw(BIG_COUNTS)
    check("theory.vc_bound", theory.vc_bound, r, d, n, delta, allow_inf=True)
    check("theory.finite_class_bound", theory.finite_class_bound, r, d, n, delta)
    check("theory.vc_sample_complexity", theory.vc_sample_complexity, r, delta, d)
    check("theory.finite_class_sample_complexity", theory.finite_class_sample_complexity, r, delta, d)
    check("theory.pac_bayes_bound", theory.pac_bayes_bound, r, kl, n, delta, form=form)
    check("theory.kl_inverse", theory.kl_inverse, r, kl)


@FUZZ
@given(points=arrays(0, 2, 5), cls=st.sampled_from(["linear", "interval", "rectangle", "circle"]))
def test_shattering(points, cls):
    check("theory.shatters", theory.shatters, points, cls)


# ------------------------------------------------------------------------------------------
# mlwork.foundations
# ------------------------------------------------------------------------------------------


@FUZZ
@given(x=scalars(), h=st.one_of(scalars(), st.none()), method=st.sampled_from(["forward", "central", "backward"]),
       f=st.sampled_from([jnp.sin, jnp.log, jnp.sqrt]))
def test_derivative(x, h, method, f):
    check("foundations.derivative", fd.derivative, f, x, h, method=method)


@FUZZ
@given(a=st.one_of(scalars(), st.sampled_from([math.inf, -math.inf])),
       b=st.one_of(scalars(), st.sampled_from([math.inf, -math.inf])),
       rtol=st.one_of(st.none(), st.floats(-1, 1), JUNK), center=st.one_of(st.none(), scalars()),
       scale=st.one_of(st.just(1.0), scalars()))
def test_integrate(a, b, rtol, center, scale):
    with warnings.catch_warnings():  # not reaching the tolerance is a warning, not a failure here
        warnings.simplefilter("ignore", fd.IntegrationWarning)
        check("foundations.integrate", fd.integrate, lambda x: jnp.exp(-x * x), a, b, rtol=rtol,
              center=center, scale=scale)


def _converged_limit(f, a, side, **kwargs):
    """The limit's value where it converged (a NaN value is how "no limit" is reported)."""
    result = fd.limit(f, a, side, **kwargs)
    return result.value if result.kind == "converges" else 0.0


@FUZZ
@given(a=st.one_of(scalars(), st.sampled_from([math.inf, -math.inf])),
       side=st.sampled_from(["both", "left", "right", "up"]), terms=st.one_of(st.integers(-1, 9), st.just(2.5)),
       tol=st.one_of(st.floats(-1, 2), JUNK))
def test_limit(a, side, terms, tol):
    check("foundations.limit", _converged_limit, lambda x: jnp.sin(x) / x, a, side, terms=terms, tol=tol)


@FUZZ
@given(a=scalars(), b=scalars(), n=st.one_of(st.integers(-2, 8), st.just(2.5)),
       rule=st.sampled_from(["left", "right", "midpoint", "simpson"]), valid=st.booleans(), data=st.data())
def test_quadrature(a, b, n, rule, valid, data):
    if valid:  # finite limits and an even, positive number of panels (what Simpson's rule needs)
        a, b = data.draw(st.floats(-5, 5)), data.draw(st.floats(-5, 5))
        n = 2 * data.draw(st.integers(1, 4))
    check("foundations.riemann_sum", fd.riemann_sum, jnp.cos, a, b, n, rule=rule)
    check("foundations.trapezoid", fd.trapezoid, jnp.cos, a, b, n)
    check("foundations.simpson", fd.simpson, jnp.cos, a, b, n)


@FUZZ
@given(adj=arrays(0, 2, 4, elements=st.one_of(st.sampled_from([0.0, 1.0]), JUNK)), valid=st.booleans(),
       data=st.data())
def test_graphs(adj, valid, data):
    if valid:  # a DAG: a strictly upper-triangular 0/1 matrix with its vertices relabelled
        n = data.draw(st.integers(1, 5))
        upper = np.triu(data.draw(hnp.arrays(np.float32, (n, n), elements=st.sampled_from([0.0, 1.0]))), k=1)
        order = np.asarray(data.draw(st.permutations(range(n))))
        adj = upper[np.ix_(order, order)]
    for name in ("degree", "in_degree", "out_degree", "is_connected", "is_dag", "is_bipartite",
                 "topological_order"):
        check(f"foundations.{name}", getattr(fd, name), adj)
    check("foundations.shortest_path_lengths", fd.shortest_path_lengths, adj, allow_inf=True)


@FUZZ
@given(z=st.one_of(st.complex_numbers(max_magnitude=1e3), st.sampled_from([complex(np.nan, 0), complex(np.inf, 1)])),
       theta=scalars())
def test_complex(z, theta):
    check("foundations.modulus", fd.modulus, z)
    check("foundations.argument", fd.argument, z)
    check("foundations.rotate", fd.rotate, z, theta)
    check("foundations.euler", fd.euler, theta)


# ------------------------------------------------------------------------------------------
# mlwork.trees
# ------------------------------------------------------------------------------------------

COUNT = st.floats(0, 10, width=32)
POSITIVE = st.floats(0.5, 10, width=32)
COUNTS_ELEMENTS = st.one_of(COUNT, COUNT, COUNT, JUNK, st.just(-1.0))


@st.composite
def parent_and_children(draw):
    """Parent class counts and two child rows that add up to it, sometimes corrupted."""
    parent = draw(st.one_of(arrays(1, 1, 4, elements=POSITIVE, min_side=1), arrays(1, 1, 4, elements=COUNTS_ELEMENTS)))
    frac = draw(hnp.arrays(np.float32, parent.shape, elements=st.floats(0, 1, width=32)))
    with np.errstate(invalid="ignore"):  # inf - inf in a corrupted parent
        children = np.stack([parent * frac, parent - parent * frac])
    if draw(st.integers(0, 3)) == 0:  # break the sum, the shape or a value
        children = draw(st.sampled_from([children + 1, children[:, :-1], np.where(children > 1, np.nan, children)]))
    return parent, children


@FUZZ
@given(counts=st.one_of(arrays(1, 2, 4, elements=POSITIVE, min_side=1), arrays(0, 2, 4, elements=COUNTS_ELEMENTS)),
       split=parent_and_children())
def test_impurities(counts, split):
    check("trees.gini_impurity", trees.gini_impurity, counts)
    check("trees.entropy_impurity", trees.entropy_impurity, counts)
    check("trees.variance_impurity", trees.variance_impurity, counts)
    for criterion in ("entropy", "gini", "x"):
        check("trees.information_gain", trees.information_gain, *split, criterion=criterion)


TREE_FUZZ = settings(max_examples=20, deadline=None)  # every new shape compiles a tree program
FEATURE = st.floats(-10, 10, width=32)
CLASS_INDEX = st.sampled_from([0, 1, 2])


@st.composite
def xy(draw, labels=CLASS_INDEX):
    """A small well-formed (X, y) with NaN (missing) features, corrupted one time in two: ±inf or
    huge values in X, junk labels, a length mismatch, an empty or 1-D X, a single class."""
    n, d = draw(st.integers(1, 9)), draw(st.integers(1, 3))
    X = draw(hnp.arrays(np.float32, (n, d), elements=st.one_of(FEATURE, FEATURE, FEATURE, st.just(np.nan))))
    y = draw(hnp.arrays(np.float32, (n,), elements=labels))
    corruption = draw(st.integers(0, 9))
    if corruption != 4 and n > 1:  # two classes at least, unless that is the corruption
        y[0], y[-1] = 0, 1
    if corruption == 0:
        X = X.copy()
        X[draw(st.integers(0, n - 1)), draw(st.integers(0, d - 1))] = draw(JUNK)
    elif corruption == 1:
        y = y.copy()
        y[draw(st.integers(0, n - 1))] = draw(JUNK)
    elif corruption == 2:
        y = np.append(y, 0.0)
    elif corruption == 3:
        X = draw(st.sampled_from([X[:0], X[:, 0], X[:, :0]]))
    return X, y


def one_bad(draw, good: dict, bad: dict) -> dict:
    """``good`` keyword arguments with, half the time, one of them replaced by a value from ``bad``."""
    kw = dict(good)
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(bad)))
        kw[name] = draw(st.sampled_from(bad[name]))
    return kw


@TREE_FUZZ
@given(data=xy(), task=st.sampled_from(["classification", "classification", "regression"]), draw=st.data())
def test_fit_tree(data, task, draw):
    X, y = data
    criterion = "variance" if task == "regression" else draw.draw(st.sampled_from(["gini", "entropy"]))
    kw = one_bad(draw.draw, dict(task=task, criterion=criterion, max_depth=draw.draw(st.integers(1, 3)),
                                 max_bins=draw.draw(st.sampled_from([None, 4, 255])), min_samples_leaf=1),
                 dict(task=["x"], criterion=["variance" if task != "regression" else "gini", "x"],
                      max_depth=[0, -1, 2.5, 99, "2"], max_bins=[1, 300, 2.5], min_samples_leaf=[0, -1, 1.5]))
    model = check("trees.fit_tree", trees.fit_tree, X, y, **kw)
    if model is not None:
        check("trees.predict", trees.predict, model, X)
        if kw["task"] == "classification":
            check("trees.predict_proba", trees.predict_proba, model, X)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["forest", "bagging", "adaboost", "logistic", "squared", "softmax"])
@settings(TREE_FUZZ, max_examples=10)  # per kind: every fit compiles its own programs
@given(data=xy(), draw=st.data())
def test_fit_ensembles(data, kind, draw):
    X, y = data
    key = jax.random.key(0)
    n = draw.draw(st.integers(1, 3))
    bad_n = [0, -1, 1.5, "3"]
    if kind in ("forest", "bagging"):
        fit = trees.fit_random_forest if kind == "forest" else trees.fit_bagging
        kw = one_bad(draw.draw, dict(n_estimators=n, max_depth=2, task="classification"),
                     dict(n_estimators=bad_n, max_depth=[0, 1.5]))
        model = check(f"trees.{fit.__name__}", fit, X, y, key=key, **kw)
    elif kind == "adaboost":
        kw = one_bad(draw.draw, dict(n_estimators=n, learning_rate=0.5),
                     dict(n_estimators=bad_n, learning_rate=[0.0, -1.0, np.nan, np.inf]))
        model = check("trees.fit_adaboost", trees.fit_adaboost, X, y, **kw)
    else:
        if kind == "logistic" and np.ndim(y) == 1:
            y = np.minimum(y, 1)
        kw = one_bad(draw.draw, dict(loss=kind, n_estimators=n, learning_rate=0.3, max_depth=2,
                                     second_order=draw.draw(st.booleans())),
                     dict(loss=["x"], n_estimators=bad_n, learning_rate=[0.0, -1.0, np.nan, np.inf],
                          subsample=[0.0, 1.5], reg_lambda=[-1.0, np.nan], min_child_weight=[-1.0]))
        model = check("trees.fit_gradient_boosting", trees.fit_gradient_boosting, X, y, **kw)
    if model is not None:
        check("trees.predict", trees.predict, model, X)
        check("trees.feature_importances", trees.feature_importances, model)


@pytest.fixture(scope="module", autouse=True)
def _report():
    """Leave this process's counts for the session summary (tests/conftest.py adds them up, also
    across pytest-xdist workers)."""
    yield
    folder = os.environ.get("MLWORK_FUZZ_COUNTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        path = Path(folder) / f"{os.getpid()}.json"
        path.write_text(json.dumps({k: v for k, v in COUNTS.items()}))
