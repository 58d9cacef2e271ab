import json
import re

import jax
import numpy as np
import pytest

from mlwork.train import RunError, TrainConfig, ensemble_predict, fit, train_and_evaluate
from mlwork.train.config import Member, parse_sweep

CONFIG = TrainConfig(epochs=2, batch_size=64, seed=2)
QUIET = {"progress": False, "log": lambda m: None}
#: Four members: learning rate x weight decay; members 0 and 3 differ in both.
SWEPT = CONFIG.replace(sweep="lr=1e-3,3e-3;weight_decay=0,1e-2")


def _flat(tree, k=None):
    return np.concatenate([np.ravel(np.asarray(x if k is None else x[k])) for x in jax.tree.leaves(tree)])


@pytest.fixture(scope="module")
def pop(small_mnist):
    return fit(SWEPT, small_mnist)


def test_each_member_equals_training_it_alone(small_mnist, pop):
    assert pop.run.members == [Member(2, 1e-3, 0.0), Member(2, 1e-3, 1e-2), Member(2, 3e-3, 0.0),
                               Member(2, 3e-3, 1e-2)]
    assert jax.tree.leaves(pop.state.params)[0].shape[0] == 4
    for k in (0, 3):
        m = pop.run.members[k]
        alone = fit(CONFIG.replace(seed=m.seed, lr=m.lr, weight_decay=m.weight_decay), small_mnist)
        a, b = _flat(alone.state.params), _flat(pop.state.params, k)
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())
        mine = [r for r in pop.history if r["member"] == k]
        np.testing.assert_allclose([r["val_accuracy"] for r in mine], [r["val_accuracy"] for r in alone.history],
                                   atol=1 / 70 + 1e-6)   # at most one of the 70 validation images flips


@pytest.mark.slow
def test_cache_sized_blocks_of_members_change_nothing_but_speed(small_mnist):
    # Blocks of 2 over 3 members (a full block, then the remainder) end where lockstep ends.
    config = CONFIG.replace(epochs=1, population=3)
    blocked = fit(config, small_mnist, member_block=2)
    lockstep = fit(config, small_mnist, member_block=3)
    assert (blocked.member_block, lockstep.member_block) == (2, 3)
    for k in range(3):
        a, b = _flat(lockstep.state.params, k), _flat(blocked.state.params, k)
        np.testing.assert_allclose(b, a, atol=1e-5 * np.abs(a).max())
    assert int(blocked.state.step[2]) == int(lockstep.state.step[2]) > 0
    with pytest.raises(RunError, match="member block must be between 1 and the population size 3"):
        fit(config, small_mnist, member_block=4)


def test_ensemble_is_the_mean_of_member_softmaxes(pop):
    x = pop.run.test[0][:50]
    probs = np.asarray(ensemble_predict(pop.run, pop.state.params, pop.state.model_state, x))
    from mlwork.data.device import preprocess

    manual = []
    for k in range(4):
        p = jax.tree.map(lambda a, k=k: a[k], pop.state.params)
        logits, _ = pop.run.model.apply({"params": p, "state": {}}, preprocess(x, pop.run.mean, pop.run.std))
        manual.append(np.asarray(jax.nn.softmax(logits)))
    np.testing.assert_allclose(probs, np.mean(manual, axis=0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_train_population_writes_outputs_and_resumes_exactly(tmp_path, small_mnist):
    config = CONFIG.replace(population=2)
    full = train_and_evaluate(config, tmp_path / "full", small_mnist, **QUIET)
    assert full["population"] == 2 and len(full["members"]) == 2
    assert 0.5 < full["ensemble_test_accuracy"] <= 1.0
    lines = (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and {json.loads(line)["member"] for line in lines} == {0, 1}
    assert (tmp_path / "full" / "plots" / "population_val.png").stat().st_size > 5000
    # One epoch, then resumed to two: the same members end bit-identical.
    train_and_evaluate(config, tmp_path / "split", small_mnist, stop_after=1, **QUIET)
    resumed = train_and_evaluate(config, tmp_path / "split", small_mnist, resume=True, **QUIET)
    assert [m["params_sha256"] for m in resumed["members"]] == [m["params_sha256"] for m in full["members"]]
    assert resumed["params_sha256"] == full["params_sha256"]


def test_members_and_sweeps():
    config = TrainConfig(seed=10, lr=1e-3, weight_decay=0.0)
    assert config.members() == [Member(10, 1e-3, 0.0)] and not config.is_population
    assert config.replace(population=2).members() == [Member(10, 1e-3, 0.0), Member(11, 1e-3, 0.0)]
    assert parse_sweep("lr=1e-4,3e-4,1e-3,3e-3") == {"lr": [1e-4, 3e-4, 1e-3, 3e-3]}
    swept = config.replace(sweep="lr=1e-4,3e-4,1e-3,3e-3")
    assert swept.is_population and [m.lr for m in swept.members()] == [1e-4, 3e-4, 1e-3, 3e-3]
    grid = config.replace(population=2, sweep="lr=1e-3,3e-3; weight-decay=0,1e-4").members()
    assert len(grid) == 8 and {m.seed for m in grid} == {10, 11}
    for bad in ("momentum=0.9", "lr", "lr=a,b", "lr=-1", "lr=0,1e-3", ""):
        with pytest.raises(RunError, match="sweep"):
            config.replace(sweep=bad)
    for bad, says in (("lr=-1", "sweep lr needs positive finite values (learning rates)"),  # 0 is no learning rate
                      ("lr=0,1e-3", "sweep lr needs positive finite values"),
                      ("weight_decay=-1", "sweep weight_decay needs non-negative finite values")):
        with pytest.raises(RunError, match=re.escape(says)):
            config.replace(sweep=bad)
    assert config.replace(sweep="weight_decay=0,1e-4").members()[0].weight_decay == 0.0
    with pytest.raises(RunError, match="population must be >= 1"):
        config.replace(population=0)
    with pytest.raises(RunError, match="a population runs on one device"):
        config.replace(population=2, devices=2)
    with pytest.raises(RunError, match="patience"):
        config.replace(population=2, patience=3)
