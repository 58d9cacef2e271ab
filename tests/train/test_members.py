"""Members: every single-model-or-population decision of the trainer, checked on its own.

The end-to-end paths (tests/train/test_population.py, test_loop.py, test_reliability.py, ...)
run each method on both kinds of run; these tests pin what each method answers, with oracles
that do not go through it (the member's own seed, ``epoch_order`` called directly, a Python loop
over members).
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlwork import nn, optim
from mlwork.train import Members, RunError, TrainConfig, build_schedule
from mlwork.train.config import Member
from mlwork.train.parallel import make_mesh, replicated
from mlwork.train.state import create_train_state
from mlwork.train.step import epoch_order

SINGLE = Members(None)
PAIR = Members([Member(3, 1e-3, 0.0), Member(4, 2e-3, 1e-2)])
TRIO = Members([Member(0, 1e-3, 0.0), Member(1, 1e-3, 0.0), Member(2, 1e-3, 0.0)])


def test_of_reads_the_config():
    assert Members.of(TrainConfig()) == SINGLE
    assert Members.of(TrainConfig(population=2, seed=3)).members == [Member(3, 1e-3, 0.0), Member(4, 1e-3, 0.0)]


def test_names_and_records():
    assert (SINGLE.count, SINGLE.population, SINGLE.lead, SINGLE.kind) == (1, None, (), "a single model")
    assert (PAIR.count, PAIR.population, PAIR.lead, PAIR.kind) == (2, 2, (2,), "a population")
    assert (SINGLE.tag(" x{}"), PAIR.tag(" x{}")) == ("", " x2")
    assert SINGLE.record() == {}
    assert PAIR.record() == {"members": [{"seed": 3, "lr": 1e-3, "weight_decay": 0.0},
                                         {"seed": 4, "lr": 2e-3, "weight_decay": 1e-2}]}
    rows = [{"epoch": 1, "member": 0}, {"epoch": 1, "member": 1}]
    assert PAIR.unsplit(rows) == rows and SINGLE.unsplit(rows[:1]) == rows[0]
    assert SINGLE.unsplit(SINGLE.split({"a": 1})) == {"a": 1}


def test_devices_and_custom_optimizers():
    assert SINGLE.devices(None) is None and SINGLE.devices(2) == 2
    assert PAIR.devices(None) == 1
    SINGLE.check_tx(optax.sgd(0.1))
    PAIR.check_tx(None)
    with pytest.raises(RunError, match="a custom tx is for single models"):
        PAIR.check_tx(optax.sgd(0.1))
    mesh = make_mesh(1)
    assert SINGLE.data_mesh(mesh) is mesh and PAIR.data_mesh(mesh) is None


@functools.cache
def _state(name):
    members = {"single": SINGLE, "pair": PAIR, "trio": TRIO}[name]
    model = nn.mlp([3, 2])
    config = TrainConfig()
    tx = optim.optimizer(config.optimizer, build_schedule(config, 10), weight_decay=config.weight_decay, l1=config.l1,
                         clip_norm=config.clip_norm)  # as prepare() builds it
    stopper = optim.early_stopping(patience=3, mode="max")
    create = lambda key: create_train_state(model, tx, key, (3,), stopper)  # noqa: E731
    return create, members.init_state(create, 3, 1e-3, make_mesh(1))


def test_init_state_seeds_each_member_as_alone():
    create, single = _state("single")
    _, pair = _state("pair")
    alone = create(jax.random.key(4))  # member 1's seed
    for a, b in zip(jax.tree.leaves(alone.params), jax.tree.leaves(pair.params), strict=True):
        np.testing.assert_array_equal(b[1], a)
    for a, b in zip(jax.tree.leaves(create(jax.random.key(3)).params), jax.tree.leaves(single.params), strict=True):
        np.testing.assert_array_equal(b, a)
    hyper = optim.current_learning_rate(pair.opt_state)  # member 1 trains at twice the base rate
    assert hyper is not None and float(hyper[1]) == pytest.approx(2 * float(hyper[0]))


def test_checkpoint_tree_round_trips_and_keeps_the_old_layout():
    _, single = _state("single")
    _, pair = _state("pair")
    assert SINGLE.checkpoint_tree(single) is single and SINGLE.split_tree(single) == (single, None)
    tree = PAIR.checkpoint_tree(pair)
    assert sorted(tree) == ["best_model_state", "best_params", "state"]
    state, (best_params, _) = PAIR.split_tree(tree)
    assert state is pair
    leaf, best_leaf = jax.tree.leaves(pair.params)[0], jax.tree.leaves(best_params)[0]
    np.testing.assert_array_equal(best_leaf, leaf)
    assert best_leaf is not leaf  # a copy: the compiled calls donate the state's buffers


def test_keep_best_takes_each_improved_member_and_never_stops_a_population():
    _, pair = _state("pair")
    old = jax.tree.map(jnp.zeros_like, (pair.params, pair.model_state))
    (params, _), stop = PAIR.keep_best(jnp.array([True, False]), pair, old, jnp.array([True, True]))
    new_leaf, kept = jax.tree.leaves(pair.params)[0], jax.tree.leaves(params)[0]
    np.testing.assert_array_equal(kept[0], new_leaf[0])       # improved: the new variables
    np.testing.assert_array_equal(kept[1], np.zeros_like(new_leaf[1]))  # not improved: the old ones
    assert stop is False
    assert SINGLE.keep_best(jnp.array(True), pair, None, "stop") == (None, "stop")
    assert SINGLE.initial_best(pair, None) is None and PAIR.initial_best(pair, old) is old
    assert SINGLE.stops_early(2) and not SINGLE.stops_early(None) and not PAIR.stops_early(2)


def test_epoch_orders_are_each_members_own():
    keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (5, 6)])
    both = np.asarray(PAIR.epoch_orders(keys, 2, 40, 8))
    assert both.shape == (2, 5, 8)
    for k, seed in enumerate((5, 6)):
        np.testing.assert_array_equal(both[k], epoch_order(jax.random.key(seed), 2, 40, 8))
        np.testing.assert_array_equal(np.asarray(SINGLE.epoch_orders(keys[k], 2, 40, 8)), both[k])


@pytest.mark.parametrize("block", [None, 3, 2, 1])
def test_jit_over_members_equals_a_loop_over_them(block):
    def fn(state, x, scale):  # the state and x carry the member axis; scale is shared
        return state * scale + x.sum(), {"sum": x.sum()}

    state, x, scale = jnp.arange(3.0), jnp.arange(12.0).reshape(3, 4), jnp.float32(2.0)
    expected = [k * 2.0 + float(np.arange(4 * k, 4 * k + 4).sum()) for k in range(3)]  # before the state is donated
    out, aux = TRIO.jit(fn, (True, True, False), (None,) * 3, block=block)(state, x, scale)
    np.testing.assert_array_equal(np.asarray(out), expected)
    np.testing.assert_array_equal(np.asarray(aux["sum"]), [6.0, 22.0, 38.0])


def test_jit_of_a_single_model_places_by_the_shardings():
    repl = replicated(make_mesh(1))
    out, _ = SINGLE.jit(lambda s, x: (s + x, None), (True, True), (repl, repl), donate=False)(jnp.ones(2),
                                                                                               jnp.ones(2))
    np.testing.assert_array_equal(np.asarray(out), [2.0, 2.0])
    assert out.sharding.is_equivalent_to(repl, 1)


def test_block_defaults_within_the_population_and_refuses_outside():
    _, trio = _state("trio")
    assert SINGLE.block(trio) is None
    assert 1 <= TRIO.block(trio) <= 3 and TRIO.block(trio, 2) == 2
    for bad in (0, 4):
        with pytest.raises(RunError, match="member block must be between 1 and the population size 3"):
            TRIO.block(trio, bad)


def test_put_batches_keeps_the_shapes():
    xs, ys = np.zeros((3, 4, 6), np.float32), np.zeros((3, 4), np.int32)  # (L, B, ...) for one model
    a, b = SINGLE.put_batches(xs, ys, make_mesh(1), 4)
    assert (a.shape, b.shape) == ((3, 4, 6), (3, 4))
    a, b = PAIR.put_batches(xs[None].repeat(2, 0), ys[None].repeat(2, 0), make_mesh(1), 4)
    assert (a.shape, b.shape) == ((2, 3, 4, 6), (2, 3, 4))
