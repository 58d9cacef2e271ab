"""A typed PRNG key in a checkpoint is refused before anything is written (issue 17, item 4)."""

import jax
import jax.numpy as jnp
import pytest

from mlwork.train import checkpoint


def test_typed_key_is_refused_before_touching_disk(tmp_path):
    manager = checkpoint.checkpoint_manager(tmp_path, async_save=False)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    state = {"params": jnp.ones(3), "rng": jax.random.key(0)}
    with pytest.raises(ValueError, match=r"typed PRNG keys at \['rng'\].*key_data"):
        checkpoint.save(manager, 1, state, {})
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert manager.latest_step() is None
    # Raw key data (what TrainState holds) saves and restores as before.
    ok = {"params": jnp.ones(3), "rng": jax.random.key_data(jax.random.key(0))}
    checkpoint.save(manager, 1, ok, {})
    restored, _ = checkpoint.restore(manager, ok)
    assert bool(jnp.all(restored["rng"] == ok["rng"]))
    manager.close()
