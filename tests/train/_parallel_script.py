"""Run by tests/train/test_parallel.py in a subprocess with 4 simulated CPU devices."""

import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import jax
import numpy as np

from mlwork.data import Dataset, from_sample
from mlwork.train import (
    Preempted,
    RunError,
    TrainConfig,
    checkpoint,
    exit_code,
    fit,
    init_state,
    lifecycle,
    prepare,
    train_and_evaluate,
)


def flat(tree):
    return np.concatenate([np.ravel(np.asarray(x)) for x in jax.tree.leaves(tree)])


full = from_sample()
ds = Dataset("mnist", full.train_images[:700], full.train_labels[:700], full.test_images[:200],
             full.test_labels[:200], source="test-sample")
quiet = {"log": lambda m: None}
out = {"n_devices": len(jax.devices())}

one = fit(TrainConfig(epochs=2, batch_size=64, devices=1, seed=3), ds)
four = fit(TrainConfig(epochs=2, batch_size=64, devices=4, seed=3), ds)
p1, p4 = flat(one.state.params), flat(four.state.params)
out["max_abs_diff"] = float(np.max(np.abs(p1 - p4)))
out["max_abs_param"] = float(np.max(np.abs(p1)))
out["params_sharding"] = str(jax.tree.leaves(four.state.params)[0].sharding)
out["history_1"] = [(r["train_loss"], r["val_accuracy"]) for r in one.history]
out["history_4"] = [(r["train_loss"], r["val_accuracy"]) for r in four.history]

# A checkpoint saved with 4 devices restores on 1 (and training continues).
work = Path(tempfile.mkdtemp()) / "run"
train_and_evaluate(TrainConfig(epochs=2, batch_size=64, devices=4, seed=3), work, ds, stop_after=1,
                   progress=False, plots=False, **quiet)
resumed = train_and_evaluate(TrainConfig(epochs=2, batch_size=64, devices=1, seed=3), work, ds, resume=True,
                             progress=False, plots=False, **quiet)
run = prepare(TrainConfig(epochs=2, batch_size=64, devices=1, seed=3), ds)
manager = checkpoint.checkpoint_manager(work, read_only=True)
state, _ = checkpoint.restore(manager, init_state(run), manager.latest_step())
manager.close()
out["resumed_epochs"] = resumed["epochs_run"]
out["resumed_max_abs_diff"] = float(np.max(np.abs(flat(state.params) - p1)))
out["resumed_device_count"] = len(jax.tree.leaves(state.params)[0].sharding.device_set)

# SIGUSR1 (SLURM's warning) mid-epoch on 4 devices: a checkpoint, Preempted (exit 75), and the resumed
# run ends where the uninterrupted one does.
usr1 = TrainConfig(epochs=2, batch_size=64, devices=4, seed=3, steps_per_call=2)
real_train_epochs = lifecycle.train_epochs


def signalled(*args, interrupt, **kwargs):
    polls = [0]

    def polled():
        polls[0] += 1
        if polls[0] == 3:  # after step 6 of epoch 1
            os.kill(os.getpid(), signal.SIGUSR1)
        return interrupt()

    return real_train_epochs(*args, interrupt=polled, **kwargs)


lifecycle.train_epochs = signalled
work = Path(tempfile.mkdtemp()) / "usr1"
try:
    train_and_evaluate(usr1, work, ds, progress=False, plots=False, **quiet)
    out["usr1"] = None
except Preempted as e:
    out["usr1"] = [e.signal_name, exit_code(e), e.step]
lifecycle.train_epochs = real_train_epochs
resumed = train_and_evaluate(usr1, work, ds, resume=True, progress=False, plots=False, **quiet)
reference = train_and_evaluate(usr1, Path(tempfile.mkdtemp()) / "ref", ds, progress=False, plots=False, **quiet)
out["usr1_exact"] = resumed["params_sha256"] == reference["params_sha256"]

try:
    prepare(TrainConfig(batch_size=62, devices=4), ds)
    out["indivisible_error"] = None
except RunError as e:
    out["indivisible_error"] = str(e)
json.dump(out, sys.stdout)
