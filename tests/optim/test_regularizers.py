import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlwork import nn, optim


def _params():
    return [{"W": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.3, -0.7])},
            {"W": jnp.array([[2.0, -1.0]]), "b": jnp.array([4.0])}]


def test_default_mask_decays_weights_not_biases_or_scales():
    mask = optim.decay_mask(_params())
    assert mask == [{"W": True, "b": False}, {"W": True, "b": False}]
    cnn_vars = nn.cnn(channels=(4,), convs_per_block=1, hidden=8).init(jax.random.key(0), (28, 28, 1))
    flat = jax.tree_util.tree_flatten_with_path(optim.decay_mask(cnn_vars["params"]))[0]
    by_name = {jax.tree_util.keystr(path): m for path, m in flat}
    assert all(m for k, m in by_name.items() if k.endswith("['kernel']"))
    assert not any(m for k, m in by_name.items() if k.endswith("['scale']") or k.endswith("['bias']"))


def test_l2_penalty_value_and_gradient():
    p, lam = _params(), 0.1
    expected = 0.5 * lam * (1 + 4 + 0.25 + 9 + 4 + 1)
    assert float(optim.l2_penalty(p, lam, mask="weights")) == pytest.approx(expected, rel=1e-6)
    g = jax.grad(optim.l2_penalty)(p, lam, "weights")
    np.testing.assert_allclose(g[0]["W"], lam * p[0]["W"], rtol=1e-6)   # + λW
    np.testing.assert_allclose(g[0]["b"], 0.0)                          # biases not penalised
    assert float(optim.l2_penalty(p, lam, mask=None)) == pytest.approx(
        expected + 0.5 * lam * (0.09 + 0.49 + 16), rel=1e-6)


def test_l2_penalty_overflow_is_inf_not_nan():
    # Σ‖W‖² overflows to inf; with λ the smallest normal float32, λ/2 is subnormal and flushes to
    # 0, so (λ/2)·Σ was 0·inf = NaN (found by fuzzing). An overflowing penalty is +inf.
    big = [{"W": jnp.full((1, 1), 1e30), "b": jnp.zeros(2)}]
    for lam in (float(np.finfo(np.float32).tiny), 1e-3):
        assert float(optim.l2_penalty(big, lam)) == np.inf
    assert float(optim.l2_penalty(big, 0.0)) == 0.0


def test_l1_penalty_value():
    p = _params()
    assert float(optim.l1_penalty(p, 0.2, mask="weights")) == pytest.approx(0.2 * (1 + 2 + 0.5 + 3 + 2 + 1), rel=1e-6)


def test_sgd_l2_two_ways_give_the_deck_update():
    # W ← W(1 − ηλ) − η∇J, with the penalty in the loss or decoupled decay in the chain.
    eta, lam = 0.1, 0.3
    p = _params()
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.25), p)  # ∇J of the data term
    expected = [{"W": l["W"] * (1 - eta * lam) - eta * 0.25, "b": l["b"] - eta * 0.25} for l in p]

    coupled_g = jax.tree.map(jnp.add, grads, jax.grad(optim.l2_penalty)(p, lam, "weights"))
    tx = optim.optimizer("sgd", eta)
    u, _ = tx.update(coupled_g, tx.init(p), p)
    coupled = optax.apply_updates(p, u)

    tx = optim.optimizer("sgd", eta, weight_decay=lam)
    u, _ = tx.update(grads, tx.init(p), p)
    decoupled = optax.apply_updates(p, u)

    chain = optax.chain(optim.weight_decay(lam, mask="weights"), optax.sgd(eta))
    u, _ = chain.update(grads, chain.init(p), p)
    for got in (coupled, decoupled, optax.apply_updates(p, u)):
        for g, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
            np.testing.assert_allclose(g, e, rtol=1e-6)


def test_l1_proximal_soft_thresholds():
    tx = optim.l1_proximal(strength=1.0, learning_rate=0.1, mask=None)
    params = jnp.array([0.5, 0.05, -0.08, -0.3, 0.0])
    updates = jnp.array([0.0, 0.0, 0.0, 0.0, 0.02])
    new_u, state = tx.update(updates, tx.init(params), params)
    # θ' = θ + u, then sign(θ') max(|θ'| − ηλ, 0) with ηλ = 0.1
    np.testing.assert_allclose(params + new_u, [0.4, 0.0, 0.0, -0.2, 0.0], atol=1e-7)
    assert int(state.count) == 1
    assert isinstance(state, optim.L1ProximalState)
    sched_tx = optim.l1_proximal(1.0, optim.schedule("step", init_value=0.1, step_size=1, gamma=0.5),
                                 mask=None)
    s = sched_tx.init(params)
    _, s = sched_tx.update(updates, s, params)
    u2, s = sched_tx.update(updates, s, params)  # second step: ηλ = 0.05
    np.testing.assert_allclose((params + u2)[:2], [0.45, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="params must be the parameters"):
        tx.update(updates, tx.init(params))


def test_proximal_l1_gives_exact_zeros_where_the_penalty_only_shrinks():
    # Sparse linear regression: 3 informative features out of 20.
    k1, k2 = jax.random.split(jax.random.key(0))
    X = jax.random.normal(k1, (200, 20))
    w_true = jnp.zeros(20).at[jnp.array([2, 7, 11])].set(jnp.array([2.0, -3.0, 1.5]))
    y = X @ w_true + 0.1 * jax.random.normal(k2, (200,))
    lam, eta, steps = 0.05, 0.05, 600

    def data_loss(w):
        return 0.5 * jnp.mean((X @ w - y) ** 2)

    def train(tx, loss):
        @jax.jit
        def run(w):
            def body(carry, _):
                w, s = carry
                u, s = tx.update(jax.grad(loss)(w), s, w)
                return (optax.apply_updates(w, u), s), None
            return jax.lax.scan(body, (w, tx.init(w)), None, length=steps)[0][0]
        return run(jnp.zeros(20))

    w_prox = train(optim.optimizer("sgd", eta, l1=lam, mask=None), data_loss)
    w_pen = train(optim.optimizer("sgd", eta),
                  lambda w: data_loss(w) + optim.l1_penalty({"w": w}, lam))
    support = np.zeros(20, bool)
    support[[2, 7, 11]] = True
    assert np.all(np.asarray(w_prox)[~support] == 0.0)             # exactly zero
    assert np.all(np.abs(np.asarray(w_prox)[support]) > 1.0)       # signal kept
    off = np.abs(np.asarray(w_pen)[~support])
    assert np.all(off < 0.05) and np.count_nonzero(off) >= 15     # small, but not zero


def test_batch_norm_train_and_eval():
    x = jax.random.normal(jax.random.key(0), (256, 4)) * jnp.array([[1.0, 5.0, 0.1, 2.0]]) + 3.0
    params, state = nn.batch_norm_init(4)
    y, new_state = nn.batch_norm(x, params, state, train=True)
    np.testing.assert_allclose(y.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.std(0), 1.0, rtol=1e-3)
    np.testing.assert_allclose(new_state["mean"], 0.1 * x.mean(0), rtol=1e-5)
    np.testing.assert_allclose(new_state["var"], 0.9 + 0.1 * x.var(0), rtol=1e-5)
    # γ and β scale and shift.
    gb = {"gamma": jnp.full(4, 2.0), "beta": jnp.full(4, -1.0)}
    y2, _ = nn.batch_norm(x, gb, state, train=True)
    np.testing.assert_allclose(y2, 2 * y - 1, rtol=1e-5, atol=1e-5)
    # Evaluation uses the running statistics, not the batch's, and leaves the state alone.
    running = {"mean": jnp.array([1.0, 2.0, 3.0, 4.0]), "var": jnp.array([4.0, 1.0, 0.25, 9.0])}
    ye, s = nn.batch_norm(x[:3], params, running, train=False)
    expected = (np.asarray(x[:3]) - np.asarray(running["mean"])) / np.sqrt(np.asarray(running["var"]) + 1e-5)
    np.testing.assert_allclose(ye, expected, rtol=1e-5)
    assert s is running
    with pytest.raises(ValueError, match="features"):
        nn.batch_norm(x[:, :3], params, state, train=True)


def test_mlp_with_batch_norm_and_dropout_train_eval():
    model = nn.mlp([6, 16, 3], batch_norm=True, dropout=0.3)
    v = model.init(jax.random.key(0))
    assert "b" not in v["params"][0] and {"gamma", "beta"} <= set(v["params"][0])
    x = jax.random.normal(jax.random.key(1), (32, 6)) * 4 + 2
    out, st = model.apply(v, x, train=True, key=jax.random.key(2))
    assert not np.allclose(st["batch_norm"][0]["mean"], 0.0)
    e1, s1 = model.apply(v, x)
    e2, _ = model.apply(v, x)
    np.testing.assert_array_equal(e1, e2)
    assert s1 == v["state"]
    assert nn.count_params(v) == 6 * 16 + 2 * 16 + 16 * 3 + 3


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: optim.l2_penalty(_params(), -1.0), "strength must be a finite real number >= 0; got -1.0"),
        (lambda: optim.l1_proximal(0.1, -0.5), "learning_rate must be a finite real number >= 0; got -0.5"),
        (lambda: optim.weight_decay(0.1, mask="biases"), "mask must be 'weights', 'all', None, .*; got 'biases'"),
        (lambda: nn.dropout(jnp.ones(3), 1.0, key=jax.random.key(0), train=True), r"dropout must be"),
        (lambda: nn.batch_norm_init(0), r"n_features must be an integer in \[1, 2147483647\]; got 0"),
    ],
)
def test_bad_regularizer_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---------------------------------------------------------------------------------------------
# Mask convention (issue 17): mask=None (the default) is every leaf, as in Optax; a mask that
# selects no leaf is an error; optim.optimizer (the trainer's) keeps "weights" explicitly.
# ---------------------------------------------------------------------------------------------

def test_lasso_on_a_bare_weight_vector_shrinks_it():
    # The deck's Lasso: a linear model's 1-D w. The old default mask kept only matrices and
    # kernels, so this chain silently changed nothing.
    w = jnp.array([0.5, 0.01, -0.3])
    tx = optax.chain(optax.sgd(0.1), optim.l1_proximal(0.5, 0.1))
    u, _ = tx.update(jnp.zeros(3), tx.init(w), w)
    np.testing.assert_allclose(optax.apply_updates(w, u), [0.45, 0.0, -0.25], atol=1e-7)
    tx = optax.chain(optim.weight_decay(0.5), optax.sgd(0.1))
    u, _ = tx.update(jnp.zeros(3), tx.init(w), w)
    np.testing.assert_allclose(optax.apply_updates(w, u), w * (1 - 0.05), rtol=1e-6)
    assert float(optim.l2_penalty(w, 2.0)) == pytest.approx(0.25 + 0.0001 + 0.09, rel=1e-6)
    assert float(optim.l1_penalty(w, 2.0)) == pytest.approx(2 * 0.81, rel=1e-6)


@pytest.mark.parametrize("make", [
    lambda params: optim.l1_proximal(0.5, 0.1, mask="weights").init(params),
    lambda params: optim.weight_decay(0.1, mask="weights").init(params),
    lambda params: optim.l1_penalty(params, 0.1, mask="weights"),
    lambda params: optim.l2_penalty(params, 0.1, mask="weights"),
    lambda params: optim.l2_penalty(params, 0.0, mask="weights"),
    lambda params: optim.weight_decay(0.1, mask=lambda p: jax.tree.map(lambda _: False, p)).init(params),
    lambda params: optim.optimizer("sgd", 0.1, weight_decay=0.1).init(params),
    lambda params: optim.optimizer("adam", 0.1, l1=0.1).init(params),
], ids=["l1_proximal", "weight_decay", "l1_penalty", "l2_penalty", "l2_penalty_zero", "callable", "optimizer_wd",
        "optimizer_l1"])
def test_a_mask_selecting_no_leaf_is_an_error(make):
    for params in (jnp.ones(3), {"b": jnp.ones(2), "scale": jnp.ones(2)}):
        with pytest.raises(ValueError, match="mask must be a mask that selects at least one leaf"):
            make(params)


def test_prefix_masks_and_empty_params():
    params = {"enc": {"W": jnp.ones((2, 2)), "b": jnp.ones(2)}, "head": jnp.ones(2)}
    tx = optim.weight_decay(1.0, mask={"enc": True, "head": False})
    u, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    np.testing.assert_array_equal(u["enc"]["b"], 1.0)
    np.testing.assert_array_equal(u["head"], 0.0)
    assert float(optim.l1_penalty(params, 1.0, mask={"enc": False, "head": True})) == 2.0
    assert float(optim.l2_penalty({}, 1.0)) == 0.0                  # nothing to select: no error
    optim.optimizer("sgd", 0.1).init(jnp.ones(3))                    # no regularization asked: fine


def test_optimizer_keeps_the_weights_only_mask_bit_for_bit():
    # What the trainer builds: optim.optimizer(...) with its default mask is exactly the chain
    # with mask="weights" passed explicitly, and it never decays biases or normalisation scales.
    variables = nn.cnn(channels=(4,), convs_per_block=1, hidden=8).init(jax.random.key(0), (28, 28, 1))
    params = variables["params"]
    grads = jax.tree.map(lambda x: jnp.full_like(x, 0.01), params)
    outs = []
    for kw in ({}, {"mask": "weights"}):
        tx = optim.optimizer("adamw", 1e-2, weight_decay=0.5, l1=1e-3, **kw)
        state = tx.init(params)
        u, state = tx.update(grads, state, params)
        u, state = tx.update(grads, state, optax.apply_updates(params, u))
        outs.append(u)
    for a, b in zip(jax.tree.leaves(outs[0]), jax.tree.leaves(outs[1]), strict=True):
        np.testing.assert_array_equal(a, b)
    tx = optim.optimizer("sgd", 1.0, weight_decay=0.5)
    u, _ = tx.update(jax.tree.map(jnp.zeros_like, params), tx.init(params), params)
    flat = {jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_flatten_with_path(u)[0]}
    assert all(np.all(np.asarray(v) == 0) for k, v in flat.items() if k.endswith("['bias']") or k.endswith("['scale']"))
    assert any(np.any(np.asarray(v) != 0) for k, v in flat.items() if k.endswith("['kernel']"))
