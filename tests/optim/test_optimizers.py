"""Each optimizer against the deck's update equations, written out in NumPy (float64)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlwork import optim

# A fixed convex quadratic J(θ) = ½ θᵀAθ − bᵀθ; the gradient depends on θ, so the optimizer's
# state must be threaded correctly for the hand-computed steps to agree.
A = np.array([[3.0, 0.5], [0.5, 1.0]])
B = np.array([1.0, -2.0])
THETA0 = np.array([0.7, -1.3])


def grad_np(theta):
    return A @ theta - B


def run_optax(tx, steps=4):
    theta = jnp.asarray(THETA0, jnp.float32)
    state = tx.init(theta)
    path = []
    for _ in range(steps):
        g = jnp.asarray(A, jnp.float32) @ theta - jnp.asarray(B, jnp.float32)
        updates, state = tx.update(g, state, theta)
        theta = optax.apply_updates(theta, updates)
        path.append(np.asarray(theta))
    return np.array(path)


def deck_sgd(eta, steps=4):
    theta, path = THETA0.copy(), []
    for _ in range(steps):
        theta = theta - eta * grad_np(theta)
        path.append(theta.copy())
    return np.array(path)


def deck_momentum(eta, beta, steps=4, nesterov=False):
    theta, v, path = THETA0.copy(), np.zeros(2), []
    for _ in range(steps):
        g = grad_np(theta)
        v = beta * v + g                                   # v_t = β v_{t−1} + ∇J
        theta = theta - eta * ((g + beta * v) if nesterov else v)
        path.append(theta.copy())
    return np.array(path)


def deck_rmsprop(eta, beta, eps, steps=4):
    theta, s, path = THETA0.copy(), np.zeros(2), []
    for _ in range(steps):
        g = grad_np(theta)
        s = beta * s + (1 - beta) * g**2                   # s_t = β s_{t−1} + (1 − β) g²
        theta = theta - eta * g / np.sqrt(s + eps)         # ε inside the root, as the deck writes
        path.append(theta.copy())
    return np.array(path)


def deck_adam(eta, b1, b2, eps, steps=4, weight_decay=0.0):
    theta, m, v, path = THETA0.copy(), np.zeros(2), np.zeros(2), []
    for t in range(1, steps + 1):
        g = grad_np(theta)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)  # bias correction
        theta = theta - eta * (m_hat / (np.sqrt(v_hat) + eps) + weight_decay * theta)
        path.append(theta.copy())
    return np.array(path)


@pytest.mark.parametrize(
    "name, kwargs, expected",
    [
        ("sgd", {"learning_rate": 0.1}, lambda: deck_sgd(0.1)),
        ("momentum", {"learning_rate": 0.05}, lambda: deck_momentum(0.05, 0.9)),
        ("momentum", {"learning_rate": 0.05, "beta": 0.5}, lambda: deck_momentum(0.05, 0.5)),
        ("nesterov", {"learning_rate": 0.05}, lambda: deck_momentum(0.05, 0.9, nesterov=True)),
        ("rmsprop", {"learning_rate": 0.01}, lambda: deck_rmsprop(0.01, 0.9, 1e-8)),
        ("rmsprop", {"learning_rate": 0.01, "eps": 0.1}, lambda: deck_rmsprop(0.01, 0.9, 0.1)),
        ("adam", {}, lambda: deck_adam(1e-3, 0.9, 0.999, 1e-8)),
        ("adam", {"learning_rate": 0.1, "b1": 0.8, "b2": 0.99}, lambda: deck_adam(0.1, 0.8, 0.99, 1e-8)),
        ("adamw", {"learning_rate": 0.1, "weight_decay": 0.05, "mask": None},
         lambda: deck_adam(0.1, 0.9, 0.999, 1e-8, weight_decay=0.05)),
    ],
)
def test_hand_computed_steps_match_the_deck_equations(name, kwargs, expected):
    got = run_optax(optim.optimizer(name, **kwargs))
    np.testing.assert_allclose(got, expected(), rtol=2e-5, atol=1e-6)


def test_defaults_are_the_decks():
    assert optim.DEFAULTS["momentum"]["beta"] == 0.9
    assert optim.DEFAULTS["rmsprop"] == {"beta": 0.9, "eps": 1e-8, "eps_in_sqrt": True}
    assert optim.DEFAULTS["adam"] == {"b1": 0.9, "b2": 0.999, "eps": 1e-8}
    # optimizer("adam") with no learning rate is the deck's η = 1e-3.
    np.testing.assert_allclose(run_optax(optim.optimizer("adam")), deck_adam(1e-3, 0.9, 0.999, 1e-8),
                               rtol=2e-5)


def test_pytorch_rmsprop_form_puts_eps_outside_the_root():
    eta, beta, eps = 0.01, 0.99, 0.5
    theta, s, path = THETA0.copy(), np.zeros(2), []
    for _ in range(4):
        g = grad_np(theta)
        s = beta * s + (1 - beta) * g**2
        theta = theta - eta * g / (np.sqrt(s) + eps)
        path.append(theta.copy())
    got = run_optax(optim.optimizer("rmsprop", eta, beta=beta, eps=eps, eps_in_sqrt=False))
    np.testing.assert_allclose(got, np.array(path), rtol=2e-5)
    assert not np.allclose(got, deck_rmsprop(eta, beta, eps), rtol=1e-3)


def test_clip_norm_clips_the_global_gradient_norm():
    tx = optim.optimizer("sgd", 1.0, clip_norm=0.5)
    grads = {"a": jnp.array([3.0, 0.0]), "b": jnp.array([[0.0, 4.0]])}  # global norm 5
    updates, _ = tx.update(grads, tx.init(grads), grads)
    np.testing.assert_allclose(updates["a"], [-0.3, 0.0], rtol=1e-6)
    np.testing.assert_allclose(updates["b"], [[0.0, -0.4]], rtol=1e-6)


def test_learning_rate_is_observable_in_the_state():
    sched = optim.schedule("step", init_value=0.1, step_size=2, gamma=0.5)
    tx = optim.optimizer("momentum", sched)
    params = jnp.zeros(3)
    state = tx.init(params)
    seen = [float(optim.current_learning_rate(state))]
    for _ in range(5):
        _, state = tx.update(jnp.ones(3), state, params)
        seen.append(float(optim.current_learning_rate(state)))
    # before any update: the first step's rate; then the rate each update used: 0.1 0.1 0.05 0.05 0.025
    np.testing.assert_allclose(seen, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025], rtol=1e-6)
    assert optim.current_learning_rate(optax.sgd(0.1).init(params)) is None


def _minimise(tx, f, x0, steps):
    def body(carry, _):
        x, s = carry
        g = jax.grad(f)(x)
        u, s = tx.update(g, s, x)
        return (optax.apply_updates(x, u), s), None

    (x, _), _ = jax.lax.scan(body, (x0, tx.init(x0)), None, length=steps)
    return x


QUAD_A = jnp.array([[1.0, 0.0], [0.0, 10.0]])
QUAD_MIN = jnp.array([1.0, -2.0])


def quadratic(x):
    d = x - QUAD_MIN
    return 0.5 * d @ QUAD_A @ d


def rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


# Learning rates (quadratic, Rosenbrock) that suit each optimizer; LAMB's trust ratio makes a
# constant rate hover at a distance ∝ η‖θ‖ from the minimum, so it gets a decaying schedule.
SETTINGS = {
    "sgd": (0.03, 1e-3), "momentum": (0.01, 3e-4), "nesterov": (0.01, 3e-4), "rmsprop": (0.01, 3e-3),
    "adam": (0.03, 0.03), "adamw": (0.03, 0.03), "lamb": ("cosine", 0.03), "lion": (0.01, 3e-3),
}


@pytest.mark.parametrize("name", list(SETTINGS))
def test_every_optimizer_minimises_a_convex_quadratic_and_progresses_on_rosenbrock(name):
    kwargs = {"weight_decay": 0.0} if name == "adamw" else {}
    lr_quad, lr_rosen = SETTINGS[name]
    if lr_quad == "cosine":
        lr_quad = optim.schedule("cosine", init_value=0.03, total_steps=1500)
    x = _minimise(optim.optimizer(name, lr_quad, **kwargs), quadratic, jnp.array([-3.0, 3.0]), 1500)
    np.testing.assert_allclose(x, QUAD_MIN, atol=1e-2)
    x0 = jnp.array([-1.5, 2.0])
    xr = _minimise(optim.optimizer(name, lr_rosen, **kwargs), rosenbrock, x0, 2000)
    assert np.all(np.isfinite(xr))
    assert float(rosenbrock(xr)) < 0.1 * float(rosenbrock(x0))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: optim.optimizer("adagrad"), "name must be one of 'sgd', 'momentum', .*; got 'adagrad'"),
        (lambda: optim.optimizer("sgd", -0.1), "learning_rate must be a finite real number >= 0; got -0.1"),
        (lambda: optim.optimizer("sgd", float("nan")), "learning_rate must be a finite real number >= 0; got nan"),
        (lambda: optim.optimizer("momentum", 0.1, beta=1.0), r"beta must be .* in \[0, 1\); got 1.0"),
        (lambda: optim.optimizer("rmsprop", 0.1, beta=-0.1), r"beta must be .* in \[0, 1\); got -0.1"),
        (lambda: optim.optimizer("adam", b1=1.2), r"b1 must be .* in \[0, 1\); got 1.2"),
        (lambda: optim.optimizer("adam", b2=1.0), r"b2 must be .* in \[0, 1\); got 1.0"),
        (lambda: optim.optimizer("sgd", 0.1, beta=0.9),
         "hyperparameters must be among .* for optimizer 'sgd'; got \\['beta'\\]"),
        (lambda: optim.optimizer("adam", clip_norm=0.0), "clip_norm must be .* >= 1.17549e-38; got 0"),
        (lambda: optim.optimizer("adam", eps=1e-40), "eps must be a finite real number >= 1.17549e-38; got 1e-40"),
        (lambda: optim.optimizer("adamw", weight_decay=-1e-4), "weight_decay must be .* >= 0; got -0"),
        (lambda: optim.optimizer("sgd", lambda t: -1.0), "learning_rate must be a schedule whose .*; got -1"),
    ],
)
def test_bad_hyperparameters_are_clear_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_hyperparameters_in_the_state_can_differ_per_member():
    # A population: one optimizer, states with different lr_scale / weight_decay under vmap.
    tx = optim.optimizer("sgd", optim.schedule("step", init_value=0.1, step_size=1, gamma=0.5), mask=None)
    params = jnp.ones(3)
    states = jax.vmap(tx.init)(jnp.stack([params] * 3))
    states = optim.set_hyperparams(states, lr_scale=jnp.array([1.0, 2.0, 0.5]),
                                   weight_decay=jnp.array([0.0, 0.0, 0.1]))
    grads = jnp.full((3, 3), 0.2)
    updates, states = jax.vmap(tx.update)(grads, states, jnp.stack([params] * 3))
    # step 0: η = 0.1 × scale; member 3 also decays: u = −η(g + λθ)
    np.testing.assert_allclose(updates[:, 0], [-0.02, -0.04, -0.05 * (0.2 + 0.1)], rtol=1e-6)
    np.testing.assert_allclose(optim.current_learning_rate(states), [0.1, 0.2, 0.05], rtol=1e-6)
    with pytest.raises(ValueError, match="hyperparameters must be among .*; got \\['beta'\\]"):
        optim.set_hyperparams(states, beta=0.5)
