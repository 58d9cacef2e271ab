"""Preemption as schedulers send it: SIGUSR1 (SLURM's warning before its time limit) is SIGTERM."""

import os
import signal
import threading

import pytest

from mlwork.train import PreemptionGuard
from mlwork.train.errors import EXIT_PREEMPTED, Preempted, exit_code


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGUSR1", "SIGINT"])
def test_the_guard_turns_each_preemption_signal_into_a_request(signame):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are installed only in the main thread")
    signum = getattr(signal, signame)
    before = signal.getsignal(signum)
    with PreemptionGuard() as guard:
        assert not guard.requested
        os.kill(os.getpid(), signum)  # the handler runs before the next bytecode
        assert guard.requested and guard.signal_name == signame
        os.kill(os.getpid(), signal.SIGTERM)  # the first signal is the one named
        assert guard.signal_name == signame
    assert signal.getsignal(signum) is before


def test_sigusr1_ends_a_run_like_sigterm():
    stopped = Preempted(13, 1, None, "SIGUSR1")
    assert exit_code(stopped) == EXIT_PREEMPTED == exit_code(Preempted(13, 1, None, "SIGTERM")) == 75
    assert str(stopped).startswith("preempted (SIGUSR1): checkpoint saved at step 13 (epoch 1)")
