"""Kill a training run at random moments, resume it, and check it ends bit-identical.

    uv run python -m bench.torture_resume [--trials 20] [--max-kills 4] [--epochs 6]
    uv run python -m bench.torture_resume --stream --checkpoint-every-steps 20   # streamed, saved on a clock

Each trial runs ``python -m experiments.mnist`` (the MLP on the embedded 5,000-image MNIST
sample) in a fresh workdir and sends SIGKILL after a random delay — inside an epoch, during a
checkpoint save, right after one, or before the first — then restarts it with ``--resume``,
again and again (up to ``--max-kills`` kills), until a run exits 0. After every kill each
finished checkpoint in the workdir is restored and its SHA-256 verified; a failure counts as an
unrestorable checkpoint. A trial passes when the final ``params_sha256`` equals that of one
uninterrupted run of the same command. Prints a table and appends it to
``bench/results.jsonl``. Targets: every trial identical, 0 unrestorable checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def command(workdir: Path, epochs: int, resume: bool, extra: tuple[str, ...] = ()) -> list[str]:
    cmd = [sys.executable, "-m", "experiments.mnist", "--epochs", str(epochs), "--batch-size", "64",
           "--keep-checkpoints", "2", "--workdir", str(workdir), *extra]
    return cmd + (["--resume"] if resume else [])


def environment(cache: Path) -> dict[str, str]:
    env = {**os.environ, "MLWORK_OFFLINE": "1", "MLWORK_CACHE_DIR": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": str(ROOT)}
    env.pop("MLWORK_DATA_DIR", None)
    return env


def summary_sha(workdir: Path) -> str:
    return json.loads((workdir / "summary.json").read_text())["params_sha256"]


def reference(epochs: int, cache: Path, base: Path, extra: tuple[str, ...] = ()) -> tuple[str, float, float]:
    """The uninterrupted run's hash, wall time, and when its first epoch ended (the training phase
    starts about one epoch before that)."""
    # A first run fills the compilation cache, so the timed one starts up as a resumed run will.
    subprocess.run(command(base / "warm-up", epochs, False, extra), env=environment(cache), cwd=ROOT, check=True,
                   capture_output=True)
    workdir = base / "reference"
    t0 = time.perf_counter()
    proc = subprocess.Popen(command(workdir, epochs, False, extra), env=environment(cache), cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_epoch = None
    while proc.poll() is None:
        if first_epoch is None and (workdir / "metrics.jsonl").exists() and \
                (workdir / "metrics.jsonl").read_text().strip():
            first_epoch = time.perf_counter() - t0
        time.sleep(0.02)
    if proc.returncode != 0:
        raise RuntimeError(f"the uninterrupted run failed (exit {proc.returncode})")
    total = time.perf_counter() - t0
    return summary_sha(workdir), total, first_epoch or 0.0


def unrestorable(workdir: Path, epochs: int) -> list[int]:
    """Finished checkpoints in ``workdir`` that do not restore and verify."""
    from mlwork.data import load_dataset
    from mlwork.train import TrainConfig, checkpoint, init_state, prepare

    if not (workdir / "checkpoints").is_dir():
        return []
    run = prepare(TrainConfig(epochs=epochs, batch_size=64, devices=1), load_dataset("mnist", source="sample"))
    template = init_state(run)
    manager = checkpoint.checkpoint_manager(workdir, read_only=True)
    bad = []
    try:
        for step in manager.all_steps():
            try:
                checkpoint.restore(manager, template, step)
            except checkpoint.CheckpointError:
                bad.append(step)
    finally:
        manager.close()
    return bad


def trial(workdir: Path, epochs: int, max_kills: int, window: tuple[float, float], rng: np.random.Generator,
          cache: Path, extra: tuple[str, ...] = ()) -> dict:
    """Kill delays: half uniform over the whole run ``[0, total]`` (start-up, compile, saves,
    the end), half uniform over its training phase ``[train_start, total]``."""
    kills, starts, bad, delays = 0, 0, [], []
    while True:
        # Resume whenever the run has begun (its config is written); a kill before that restarts it.
        resume = (workdir / "config.json").exists()
        proc = subprocess.Popen(command(workdir, epochs, resume, extra), env=environment(cache), cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        starts += 1
        train_start, total = window
        low = 0.0 if rng.random() < 0.5 else train_start
        delay = float(rng.uniform(low, total)) if kills < max_kills else None
        try:
            _, err = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            kills += 1
            delays.append(round(delay, 2))
            bad += unrestorable(workdir, epochs)
            continue
        if proc.returncode != 0:
            return {"kills": kills, "starts": starts, "ok": False, "error": err.strip().splitlines()[-1:],
                    "unrestorable": bad, "delays": delays}
        return {"kills": kills, "starts": starts, "ok": True, "sha": summary_sha(workdir), "unrestorable": bad,
                "delays": delays}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--max-kills", type=int, default=4)
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-record", action="store_true", help="do not append to bench/results.jsonl")
    p.add_argument("--stream", action="store_true", help="streamed runs (the Grain input path)")
    p.add_argument("--checkpoint-every-steps", type=int, default=None, help="checkpoints on a clock too")
    args = p.parse_args(argv)
    extra = (("--stream",) if args.stream else ()) + (
        ("--checkpoint-every-steps", str(args.checkpoint_every_steps)) if args.checkpoint_every_steps else ())
    base = Path(tempfile.mkdtemp(prefix="torture-"))
    cache = base / "jax-cache"
    rng = np.random.default_rng(args.seed)
    try:
        ref_sha, ref_time, first_epoch = reference(args.epochs, cache, base, extra)
        train_start = max(0.0, first_epoch - (ref_time - first_epoch) / max(1, args.epochs - 1))
        print(f"uninterrupted run: {ref_time:.1f} s (first epoch done at {first_epoch:.1f} s), params_sha256 "
              f"{ref_sha[:16]}…; kills land uniformly in [0, {ref_time:.1f}] s or in the training phase "
              f"[{train_start:.1f}, {ref_time:.1f}] s", flush=True)
        results = []
        for i in range(args.trials):
            r = trial(base / f"trial-{i}", args.epochs, args.max_kills, (train_start, ref_time), rng, cache, extra)
            r["identical"] = r.get("sha") == ref_sha
            results.append(r)
            print(f"  trial {i + 1:2d}: {r['kills']} kills at {r['delays']} s, {r['starts']} starts, "
                  f"{'identical' if r['identical'] else 'DIFFERENT'}, unrestorable {r['unrestorable']}"
                  + ("" if r["ok"] else f", failed: {r['error']}"), flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    identical = sum(r["identical"] for r in results)
    kills = sum(r["kills"] for r in results)
    unrestorable_total = sum(len(r["unrestorable"]) for r in results)
    killed = sum(r["kills"] > 0 for r in results)
    row = {"trials": len(results), "identical": identical, "kills": kills, "trials_killed": killed,
           "unrestorable_checkpoints": unrestorable_total, "epochs": args.epochs,
           "reference_s": round(ref_time, 2)}
    print(f"\n| trials | identical | trials killed at least once | SIGKILLs | unrestorable checkpoints |\n"
          f"|---|---|---|---|---|\n"
          f"| {len(results)} | {identical}/{len(results)} | {killed} | {kills} | {unrestorable_total} |")
    if not args.no_record:
        from bench.common import append_results

        append_results("torture_resume", [row], notes="MLP, embedded MNIST sample, SIGKILL at uniform random times"
                       + (f"; flags {' '.join(extra)}" if extra else ""))
    return 0 if identical == len(results) and unrestorable_total == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
