import dataclasses
import json

import jax
import numpy as np
import pytest

from mlwork.train import TrainConfig, fit
from mlwork.train.population import (
    Member,
    ensemble_predict,
    fit_population,
    members_from,
    parse_sweep,
    train_population,
)

CONFIG = TrainConfig(epochs=2, batch_size=64, seed=2)
QUIET = {"progress": False, "log": lambda m: None}


def _flat(tree, k=None):
    return np.concatenate([np.ravel(np.asarray(x if k is None else x[k])) for x in jax.tree.leaves(tree)])


MEMBERS = [Member(2, 1e-3, 0.0), Member(3, 3e-3, 1e-2)]  # differ in seed, learning rate and weight decay


@pytest.fixture(scope="module")
def pop(small_mnist):
    return fit_population(CONFIG, small_mnist, MEMBERS)


def test_each_member_equals_training_it_alone(small_mnist, pop):
    members = MEMBERS
    assert jax.tree.leaves(pop.state.params)[0].shape[0] == 2
    for k, m in enumerate(members):
        alone = fit(dataclasses.replace(CONFIG, seed=m.seed, lr=m.lr, weight_decay=m.weight_decay), small_mnist,
                    log=lambda msg: None)
        a, b = _flat(alone.state.params), _flat(pop.state.params, k)
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())
        mine = [r for r in pop.history if r["member"] == k]
        np.testing.assert_allclose([r["val_accuracy"] for r in mine], [r["val_accuracy"] for r in alone.history],
                                   atol=1 / 70 + 1e-6)   # at most one of the 70 validation images flips


def test_cache_sized_blocks_of_members_change_nothing_but_speed(small_mnist):
    # Blocks of 2 over 3 members (a full block, then the remainder) end where lockstep ends.
    members = [*MEMBERS, Member(4, 1e-3, 0.0)]
    config = dataclasses.replace(CONFIG, epochs=1)
    blocked = fit_population(config, small_mnist, members, member_block=2)
    lockstep = fit_population(config, small_mnist, members, member_block=3)
    assert (blocked.member_block, lockstep.member_block) == (2, 3)
    for k in range(3):
        a, b = _flat(lockstep.state.params, k), _flat(blocked.state.params, k)
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())
    assert int(blocked.state.step[2]) == int(lockstep.state.step[2]) > 0
    with pytest.raises(ValueError, match="member block must be between 1 and the population size 3"):
        fit_population(config, small_mnist, members, member_block=4)


def test_ensemble_is_the_mean_of_member_softmaxes(pop):
    x = pop.run.test[0][:50]
    probs = np.asarray(ensemble_predict(pop.run, pop.state.params, pop.state.model_state, x))
    from mlwork.data.device import preprocess

    manual = []
    for k in range(2):
        p = jax.tree.map(lambda a, k=k: a[k], pop.state.params)
        logits, _ = pop.run.model.apply({"params": p, "state": {}}, preprocess(x, pop.run.mean, pop.run.std))
        manual.append(np.asarray(jax.nn.softmax(logits)))
    np.testing.assert_allclose(probs, np.mean(manual, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_train_population_writes_outputs_and_resumes_exactly(tmp_path, small_mnist):
    members = members_from(CONFIG, 2, {"lr": [1e-3]})
    full = train_population(CONFIG, tmp_path / "full", small_mnist, members, **QUIET)
    assert full["population"] == 2 and len(full["members"]) == 2
    assert 0.5 < full["ensemble_test_accuracy"] <= 1.0
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and {json.loads(line)["member"] for line in lines} == {0, 1}
    assert (tmp_path / "full" / "plots" / "population_val.png").stat().st_size > 5000
    # One epoch, then resumed to two: the same members end bit-identical.
    train_population(dataclasses.replace(CONFIG, epochs=1), tmp_path / "split", small_mnist, members, **QUIET)
    resumed = train_population(CONFIG, tmp_path / "split", small_mnist, members, resume=True, **QUIET)
    assert [m["params_sha256"] for m in resumed["members"]] == [m["params_sha256"] for m in full["members"]]


def test_members_and_sweeps():
    config = TrainConfig(seed=10, lr=1e-3, weight_decay=0.0)
    assert members_from(config, 2) == [Member(10, 1e-3, 0.0), Member(11, 1e-3, 0.0)]
    sweep = parse_sweep("lr=1e-4,3e-4,1e-3,3e-3")
    assert sweep == {"lr": [1e-4, 3e-4, 1e-3, 3e-3]}
    assert [m.lr for m in members_from(config, 1, sweep)] == [1e-4, 3e-4, 1e-3, 3e-3]
    grid = members_from(config, 2, parse_sweep("lr=1e-3,3e-3; weight-decay=0,1e-4"))
    assert len(grid) == 8 and {m.seed for m in grid} == {10, 11}
    for bad in ("momentum=0.9", "lr", "lr=a,b", "lr=-1"):
        with pytest.raises(ValueError, match="--sweep"):
            parse_sweep(bad)
    with pytest.raises(ValueError, match="population must be a positive integer"):
        members_from(config, 0)
