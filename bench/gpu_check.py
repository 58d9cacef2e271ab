"""Check mlwork on an accelerator in one command, and record what it measured.

    python -m bench.make_gpu_data                       # here, once: the ignored gpu_data/ folder
    PYTHONPATH=. python3 -m bench.gpu_check --out OUT   # on the accelerator machine (<= 8 minutes)
    JAX_PLATFORMS=cpu uv run python -m bench.gpu_check --quick --out /tmp/gpuq   # small, on a CPU

Writes ``OUT/results.json`` and ``OUT/results.md`` (a summary table and one table per section),
rewritten after every section, so a crash or a timeout still leaves everything measured so
far; ``OUT/logs/<section>.log`` holds each section's output and ``OUT/pytest.log`` the test run.

Each section runs in its own process with its own time budget (killed when it runs over; what
it recorded until then is kept), in this order:

* ``env``: JAX and jaxlib versions, backend, device kind and count, library versions, which
  optional packages are importable, ``nvidia-smi``, a float32 matmul rate;
* ``resume``: for the MLP and the CNN on the 5,000-image MNIST sample, the final
  ``params_sha256`` of a run interrupted after epoch 1 (``--stop-after 1``) and resumed, of an
  uninterrupted run, and of a second uninterrupted run (equal first two: resume is exact;
  unequal last two: the kernels themselves are not deterministic);
* ``resume_deterministic``: the same with ``XLA_FLAGS=--xla_gpu_deterministic_ops=true``, run
  only when ``resume`` found a difference (or with ``--deterministic-resume always``);
* ``epochs``: MLP and CNN at batch 64/128/512 on Fashion-MNIST (54,000 training images an
  epoch): the CLI's compile time (``--no-compile-cache``: cold) and the median epoch time
  after the first epoch, with this repository's CPU figures (``bench/results.jsonl``);
* ``tta``: CNN time-to-accuracy on Fashion-MNIST — the run goes one epoch per CLI call
  (``--epochs 15 --stop-after 1``, then ``--resume``), so after each epoch ``summary.json``
  gives the test accuracy of the best-by-validation checkpoint (the pipeline's own model
  selection); reported: the epochs and the summed epoch times until it reaches 91%;
* ``bf16``: MLP and CNN trained in float32 and with ``--compute-dtype bfloat16``: test
  accuracy and steady epoch time of each;
* ``population``: ``--population 64`` against 1 (MLP, Fashion-MNIST): epoch time per member;
* ``tests``: ``pytest -m "not slow"`` on the device, within what time is left (its pass,
  fail and skip counts, also when cut short); test modules that import a package missing here
  (e.g. ``hypothesis``) are not collected and are listed;
* ``trees``: random-forest and gradient-boosting fit times on the device against the CPU
  figures recorded by ``bench.trees`` (same data, same settings).

A global ``--deadline`` (seconds, default 450) bounds the whole run: a section that would start
after it is recorded as skipped. Training goes through the CLI (``experiments.mnist.main``
with its flags, in the section's process) and reads ``summary.json`` and ``metrics.jsonl``.
``--quick`` shrinks everything (data cut to 800 + 200 images, 1-2 epochs, fewer configurations)
so the whole check runs on a CPU in a few minutes; its figures test the check, not the machine.

Data: ``--data`` (default ``gpu_data/``) with ``fashion_mnist/`` and ``mnist/``, each holding
the four IDX files (see :mod:`bench.make_gpu_data`). The machine needs only Python with jax,
flax, optax, orbax-checkpoint, chex, numpy, scipy, scikit-learn, matplotlib, tqdm and pytest.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
#: (name, budget in seconds, budget with --quick), in the order they run.
# The --quick budgets are generous: a shared 2-core CPU can take a minute to compile the CNN.
SECTIONS = (("env", 60, 300), ("resume", 100, 400), ("resume_deterministic", 80, 400), ("epochs", 100, 400),
            ("tta", 110, 300), ("bf16", 80, 300), ("population", 70, 300), ("tests", 150, 300), ("trees", 90, 300))
#: Packages the test modules may import that a bare accelerator machine may lack.
OPTIONAL_MODULES = ("hypothesis", "mlxtend", "tensorboardX", "tensorflow_datasets", "tensorflow", "torch", "PIL",
                    "xgboost", "lightgbm", "xdist")
DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
MIN_START_S = 5.0  # a section is not started with less time than this left
RESULTS = ROOT / "bench" / "results.jsonl"


# ----------------------------------------------------------------------------------------------
# The driver: runs each section in a child process, merges what it recorded, writes the report.
# ----------------------------------------------------------------------------------------------

def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.split("\n")[0])
    p.add_argument("--out", type=Path, required=True, help="folder for results.json, results.md and logs")
    p.add_argument("--data", type=Path, default=ROOT / "gpu_data",
                   help="folder with fashion_mnist/ and mnist/ IDX files (python -m bench.make_gpu_data)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks the check, on a CPU in minutes")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds for the whole check; sections that would start later are skipped "
                        "(default 450; 3000 with --quick, whose figures do not matter)")
    p.add_argument("--only", default=None, help="comma-separated sections to run (default: all)")
    p.add_argument("--budget", action="append", default=[], metavar="SECTION=SECONDS",
                   help="override one section's time budget (repeatable)")
    p.add_argument("--deterministic-resume", choices=("auto", "always", "never"), default="auto",
                   help="rerun the resume check with " + DETERMINISTIC_FLAG + ": when it found a difference "
                        "(auto), always, or never")
    p.add_argument("--tta-target", type=float, default=None, help="test accuracy to reach (default 0.91; quick 0.5)")
    p.add_argument("--tests", default=None,
                   help="test paths for the tests section (default: tests/; quick: two small modules)")
    # Internal: run one section in this process.
    p.add_argument("--section", default=None, help=argparse.SUPPRESS)
    p.add_argument("--work", type=Path, default=None, help=argparse.SUPPRESS)
    p.add_argument("--section-deadline", type=float, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    names = [s[0] for s in SECTIONS]
    if args.deadline is None:
        args.deadline = 3000.0 if args.quick else 450.0
    args.only = names if args.only is None else [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(names))
    if unknown:
        p.error(f"--only: unknown sections {unknown}; expected some of {', '.join(names)}")
    budgets = {name: (quick if args.quick else full) for name, full, quick in SECTIONS}
    for item in args.budget:
        name, _, seconds = item.partition("=")
        try:
            budgets[name] = float(seconds)
        except ValueError:
            p.error(f"--budget expects SECTION=SECONDS, got {item!r}")
        if name not in budgets or budgets[name] <= 0:
            p.error(f"--budget: {item!r} must name a section and a positive number of seconds")
    args.budgets = budgets
    if args.tta_target is None:
        args.tta_target = 0.5 if args.quick else 0.91
    return args


def _child_env(work: Path, extra_xla: str = "") -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    # Several processes may share the device (the tests start the CLI in subprocesses).
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    env.update(MLWORK_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3", MLWORK_CACHE_DIR=str(work / "cache"))
    env.pop("MLWORK_DATA_DIR", None)
    if extra_xla:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + extra_xla).strip()
    return env


def _run_child(args, name: str, budget: float, work: Path, extra_xla: str = "") -> dict[str, Any]:
    partial = args.out / "partial" / f"{name}.json"
    partial.unlink(missing_ok=True)
    log_path = args.out / "logs" / f"{name}.log"
    cmd = [sys.executable, "-m", "bench.gpu_check", "--section", name, "--out", str(args.out),
           "--data", str(args.data), "--work", str(work), "--section-deadline", str(time.time() + budget),
           "--tta-target", str(args.tta_target)] + (["--quick"] if args.quick else []) \
        + (["--tests", args.tests] if args.tests else [])
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_child_env(work, extra_xla), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=budget + 2.0)
            status = "ok" if rc == 0 else "error"
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the section and anything it started
            proc.wait()
            rc, status = None, "timeout"
    entry: dict[str, Any] = {"status": status, "seconds": round(time.monotonic() - t0, 2), "budget_s": budget,
                             "returncode": rc}
    try:
        entry["result"] = json.loads(partial.read_text())
    except (OSError, ValueError):
        entry["result"] = {}
    if status != "ok":
        tail = log_path.read_text(errors="replace").strip().splitlines()[-12:]
        entry["error"] = "\n".join(tail) if status == "error" else f"killed after its {budget:.0f} s budget"
    return entry


def drive(args) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "logs").mkdir(exist_ok=True)
    (args.out / "partial").mkdir(exist_ok=True)
    report: dict[str, Any] = {"command": " ".join(sys.argv), "started": datetime.now(UTC).isoformat(timespec="seconds"),
                              "quick": args.quick, "deadline_s": args.deadline, "data": str(args.data),
                              "sections": {}}
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    try:
        if args.quick:
            args.data = _shrink_data(args.data, work / "data")
            report["data"] += " (cut to 800 + 200 images for --quick)"
        for name, _, _ in SECTIONS:
            if name not in args.only:
                continue
            left = args.deadline - (time.monotonic() - t0)
            extra = ""
            if name == "resume_deterministic":
                why = _deterministic_needed(args, report["sections"].get("resume"))
                if why is not None:
                    report["sections"][name] = {"status": "not run", "seconds": 0.0, "reason": why, "result": {}}
                    write_report(args.out, report)
                    continue
                extra = DETERMINISTIC_FLAG
            if left < MIN_START_S:
                report["sections"][name] = {"status": "skipped", "seconds": 0.0, "result": {},
                                            "reason": f"the {args.deadline:.0f} s deadline had passed"}
            else:
                print(f"[gpu_check] {name} (budget {min(args.budgets[name], left):.0f} s)", flush=True)
                report["sections"][name] = _run_child(args, name, min(args.budgets[name], left), work, extra)
                print(f"[gpu_check] {name}: {report['sections'][name]['status']} in "
                      f"{report['sections'][name]['seconds']:.1f} s", flush=True)
            report["elapsed_s"] = round(time.monotonic() - t0, 2)
            write_report(args.out, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["elapsed_s"] = round(time.monotonic() - t0, 2)
    report["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    text = write_report(args.out, report)
    print(text)
    bad = [n for n, s in report["sections"].items() if s["status"] in ("error", "timeout")]
    return 1 if bad else 0


def _deterministic_needed(args, resume: dict | None) -> str | None:
    """None when the deterministic rerun should run, else why not."""
    if args.deterministic_resume == "never":
        return "--deterministic-resume never"
    if args.deterministic_resume == "always":
        return None
    models = (resume or {}).get("result", {}).get("models", {})
    if not models:
        return "the resume section recorded no comparison"
    if all(m.get("identical") and m.get("repeat_identical") for m in models.values()):
        return "resume was bit-exact without it"
    return None


def _shrink_data(data: Path, dest: Path) -> Path:
    """For --quick: the first 800 training and 200 test images of each folder, as IDX."""
    from bench.make_gpu_data import write_split
    from mlwork.data.idx import load_split

    for name in ("fashion_mnist", "mnist"):
        for split, n in (("train", 800), ("test", 200)):
            images, labels = load_split(data / name, split)
            write_split(dest / name, split, images[:n], labels[:n])
    return dest


# ----------------------------------------------------------------------------------------------
# The report.
# ----------------------------------------------------------------------------------------------

def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c)).replace("|", "/") for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def _headline(name: str, r: dict[str, Any]) -> str:
    """One line of key figures per section for the summary table."""
    if not r:
        return ""
    if name == "env":
        return f"JAX {r.get('jax')} on {r.get('device_count')} × {r.get('device_kind')} ({r.get('backend')})"
    if name.startswith("resume"):
        return "; ".join(f"{m}: resumed {'==' if v.get('identical') else 'DIFFERS from'} uninterrupted, "
                         f"repeat run {'identical' if v.get('repeat_identical') else 'DIFFERS'}"
                         for m, v in r.get("models", {}).items())
    if name == "epochs":
        return "; ".join(f"{x['model']}@{x['batch']} {x['epoch_s']:.3g} s" for x in r.get("rows", []))
    if name == "tta":
        if r.get("reached"):
            return (f"{r['target']:.0%} after {r['epochs']} epochs, {r['train_s']:.3g} s training "
                    f"(+{r['compile_s']:.3g} s compile)")
        return f"{r.get('target', 0):.0%} not reached in {len(r.get('rows', []))} epochs ({r.get('stopped', '')})"
    if name == "bf16":
        return "; ".join(f"{m}: acc {v['accuracy_delta']:+.4f}, {v['speedup']:.2f}× faster"
                         for m, v in r.get("compare", {}).items())
    if name == "population":
        c = r.get("compare")
        return f"per member: {c['ratio']:.3g}× one model's epoch (K={c['members']})" if c else ""
    if name == "tests":
        c = r.get("counts", {})
        return ", ".join(f"{v} {k}" for k, v in c.items() if v) + ("" if r.get("finished") else " (cut short)")
    if name == "trees":
        return "; ".join(f"{x['dataset']} {x['model']} {x['fit_s']:.3g} s"
                         + (f" ({x['cpu_over_device']:.2g}× the CPU)" if x.get("cpu_over_device") else "")
                         for x in r.get("rows", []))
    return ""


DETAIL_COLUMNS = {
    "epochs": ["model", "batch", "compile_s", "epoch_s", "first_epoch_s", "images_per_s", "test_accuracy",
               "cpu_epoch_s", "cpu_over_device"],
    "tta": ["epoch", "epoch_time_s", "train_s", "val_accuracy", "best_epoch", "test_accuracy"],
    "bf16": ["model", "compute_dtype", "test_accuracy", "epoch_s", "compile_s"],
    "population": ["members", "epoch_s", "epoch_s_per_member", "compile_s", "member_block"],
    "trees": ["dataset", "model", "n_estimators", "first_s", "fit_s", "accuracy", "cpu_fit_s", "cpu_over_device"],
}


def write_report(out: Path, report: dict[str, Any]) -> str:
    """Write results.json and results.md (atomically); return the Markdown."""
    lines = [f"# GPU check{' (--quick: sizes test the check, not the machine)' if report['quick'] else ''}", "",
             f"Command: `{report['command']}`; started {report['started']}; "
             f"{report.get('elapsed_s', 0):.0f} s of a {report['deadline_s']:.0f} s deadline; "
             f"data: {report['data']}.", "",
             "| section | status | seconds | figures |", "|---|---|---|---|"]
    for name, s in report["sections"].items():
        figures = _headline(name, s.get("result") or {}) if s["status"] in ("ok", "timeout", "error") else ""
        note = s.get("reason") or (s.get("error", "").splitlines()[-1][:200] if s.get("error") else "")
        cell = "; ".join(x for x in (figures, note) if x).replace("|", "/").replace("\n", " ")
        lines.append(f"| {name} | {s['status']} | {s['seconds']:.1f} | {cell} |")
    for name, s in report["sections"].items():
        r = s.get("result") or {}
        if name in DETAIL_COLUMNS and r.get("rows"):
            lines += ["", f"## {name}", "", _table(r["rows"], DETAIL_COLUMNS[name])]
        if name.startswith("resume") and r.get("models"):
            rows = [{"model": m, **v} for m, v in r["models"].items()]
            lines += ["", f"## {name} (XLA_FLAGS: {r.get('xla_flags') or 'none'})", "",
                      _table(rows, ["model", "identical", "repeat_identical", "uninterrupted", "resumed", "repeat"])]
        if name == "tests" and r:
            lines += ["", "## tests", "", f"`{r.get('command', '')}`", ""]
            if r.get("ignored"):
                lines.append("Not collected (a package missing here): " + ", ".join(
                    f"{f} ({m})" for f, m in r["ignored"].items()))
            if r.get("failed"):
                lines.append("Failed: " + ", ".join(r["failed"][:40]))
    text = "\n".join(lines) + "\n"
    for name, content in (("results.json", json.dumps(report, indent=2, default=str)), ("results.md", text)):
        tmp = out / (name + ".part")
        tmp.write_text(content)
        tmp.replace(out / name)
    return text


# ----------------------------------------------------------------------------------------------
# Inside a section's process.
# ----------------------------------------------------------------------------------------------

class Section:
    """What a section's function gets: paths, sizes, its deadline, and ``record`` (saved at once)."""

    def __init__(self, args):
        self.args, self.quick, self.name = args, args.quick, args.section
        self.fashion, self.mnist = args.data / "fashion_mnist", args.data / "mnist"
        self.work = Path(tempfile.mkdtemp(prefix=f"{args.section}-", dir=args.work))
        self.result: dict[str, Any] = {}
        self._path = args.out / "partial" / f"{args.section}.json"
        self._runs = 0

    def remaining(self) -> float:
        return self.args.section_deadline - time.time()

    def record(self, key: str, value: Any) -> None:
        self.result[key] = value
        tmp = self._path.with_suffix(".part")
        tmp.write_text(json.dumps(self.result, indent=1, default=str))
        tmp.replace(self._path)

    def append(self, key: str, value: Any) -> None:
        self.record(key, [*self.result.get(key, []), value])

    def cli(self, argv: list[str], workdir: Path | None = None) -> dict[str, Any]:
        """Run ``python -m experiments.mnist`` (its ``main``) here; its summary and metrics rows."""
        from experiments.mnist import main

        if workdir is None:
            self._runs += 1
            workdir = self.work / f"run{self._runs}"
        argv = [*argv, "--workdir", str(workdir)]
        print(f"\n$ python -m experiments.mnist {' '.join(argv)}", flush=True)
        t0, error = time.perf_counter(), None
        try:
            rc = main(argv)
        except SystemExit as e:
            rc = e.code
        except Exception as e:  # e.g. the plots, drawn after summary.json is written, on a machine without Pillow
            traceback.print_exc()
            rc, error = "exception", f"{type(e).__name__}: {e}"
        wall = time.perf_counter() - t0
        summary_path, metrics_path = workdir / "summary.json", workdir / "metrics.jsonl"
        if rc not in (0, "exception") or not summary_path.exists():
            raise RuntimeError(f"experiments.mnist {' '.join(argv)} exited with {rc}{': ' + error if error else ''}")
        if error:
            self.append("warnings", f"after summary.json: {error}")
        rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()] \
            if metrics_path.exists() else []
        return {"summary": json.loads(summary_path.read_text()), "rows": rows, "wall_s": wall, "workdir": workdir}


def _steady(rows: list[dict[str, Any]]) -> float | None:
    """Median epoch time after the first epoch (which pays one-off allocation), or the only one."""
    times = [r["epoch_time_s"] for r in rows if r.get("epoch_time_s") is not None]
    if not times:
        return None
    return statistics.median(times[1:] if len(times) > 1 else times)


def _machine(record: dict[str, Any]) -> str:
    m = record.get("machine", {})
    return f"{m.get('cpu')} x{m.get('cpu_count')}, JAX {m.get('jax')} ({record.get('time', '')[:10]})"


def _cpu_records(benchmark: str) -> list[dict[str, Any]]:
    if not RESULTS.exists():
        return []
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("benchmark") == benchmark and r.get("machine", {}).get("backend") == "cpu"]


def section_env(s: Section) -> None:
    import platform
    from importlib import metadata

    import jax
    import jaxlib

    devices = jax.devices()
    s.record("jax", jax.__version__)
    s.record("jaxlib", jaxlib.__version__)
    s.record("backend", jax.default_backend())
    s.record("device_kind", devices[0].device_kind)
    s.record("device_count", len(devices))
    s.record("devices", [str(d) for d in devices])
    s.record("python", platform.python_version())
    versions = {}
    for package in ("flax", "optax", "orbax-checkpoint", "chex", "numpy", "scipy", "scikit-learn", "matplotlib",
                    "pytest", "jax-cuda13-plugin", "jax-cuda12-plugin"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[package] = metadata.version(package)
    s.record("versions", versions)
    s.record("importable", {m: _available(m) for m in OPTIONAL_MODULES})
    s.record("env", {k: os.environ.get(k) for k in ("XLA_FLAGS", "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_PLATFORMS")})
    if shutil.which("nvidia-smi"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            q = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                                "--format=csv,noheader"], capture_output=True, text=True, timeout=30)
            s.record("nvidia_smi", q.stdout.strip() or q.stderr.strip())
    from bench.mnist_epoch import matmul_peak_gflops

    s.record("matmul_f32_gflops", matmul_peak_gflops(512 if s.quick else 4096))


def _available(module: str) -> bool:
    """Whether ``module`` can be found (without importing it: TensorFlow takes long to import).
    A module blocked by a finder that raises ImportError, or by ``sys.modules[name] = None``,
    counts as absent."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def section_resume(s: Section) -> None:
    s.record("xla_flags", os.environ.get("XLA_FLAGS"))
    epochs = 2 if s.quick else 3
    for model in ("mlp",) if s.quick else ("mlp", "cnn"):
        base = ["--model", model, "--dataset", "mnist", "--data-dir", str(s.mnist), "--epochs", str(epochs),
                "--batch-size", "128", "--seed", "0"]
        uninterrupted = s.cli(base)
        resumed_dir = s.work / f"resumed-{model}"
        s.cli([*base, "--stop-after", "1"], resumed_dir)
        resumed = s.cli([*base, "--resume"], resumed_dir)
        repeat = s.cli(base)
        a, b, c = (r["summary"]["params_sha256"] for r in (uninterrupted, resumed, repeat))
        s.record("models", {**s.result.get("models", {}), model: {
            "uninterrupted": a[:16], "resumed": b[:16], "repeat": c[:16], "identical": a == b,
            "repeat_identical": a == c, "epochs": epochs, "interrupted_after": 1,
            "test_accuracy": uninterrupted["summary"]["test_accuracy"]}})


def section_epochs(s: Section) -> None:
    cpu = {(r["model"], r["batch"]): r for r in _cpu_records("mnist_epoch")}  # the latest wins
    epochs = 1 if s.quick else 3
    for model in ("mlp", "cnn"):
        for batch in (128,) if s.quick else (64, 128, 512):
            r = s.cli(["--model", model, "--dataset", "fashion_mnist", "--data-dir", str(s.fashion),
                       "--epochs", str(epochs), "--batch-size", str(batch), "--seed", "0", "--no-compile-cache"])
            summary, steady = r["summary"], _steady(r["rows"])
            row = {"model": model, "batch": batch, "compile_s": summary["compile_time_s"], "epoch_s": steady,
                   "first_epoch_s": r["rows"][0]["epoch_time_s"],
                   "epoch_times_s": [x["epoch_time_s"] for x in r["rows"]],
                   "test_accuracy": summary["test_accuracy"], "wall_s": r["wall_s"]}
            steps = json.loads((r["workdir"] / "config.json").read_text()).get("steps_per_epoch")
            row["images_per_s"] = steps * batch / steady if steps and steady else None
            base = cpu.get((model, batch))
            if base and not s.quick:
                row["cpu_epoch_s"] = base["mlwork_epoch_s"]
                row["cpu_compile_s"] = base["mlwork_compile_s"]
                row["cpu_over_device"] = base["mlwork_epoch_s"] / steady
                row["cpu_machine"] = _machine(base)
            s.append("rows", row)


def section_tta(s: Section) -> None:
    target, max_epochs = s.args.tta_target, 2 if s.quick else 15
    s.record("target", target)
    s.record("protocol", "CNN, batch 128, one epoch per CLI call (--epochs N --stop-after 1, then --resume); "
                         "test accuracy of the best-by-validation checkpoint after each epoch; train_s = summed "
                         "epoch_time_s (compile excluded)")
    workdir = s.work / "tta"
    base = ["--model", "cnn", "--dataset", "fashion_mnist", "--data-dir", str(s.fashion), "--epochs", str(max_epochs),
            "--batch-size", "128", "--seed", "0", "--stop-after", "1"]
    train_s, wall_s, last_wall = 0.0, 0.0, 0.0
    for epoch in range(1, max_epochs + 1):
        if epoch > 1 and s.remaining() < 1.5 * last_wall + 2:
            s.record("stopped", f"section budget: {s.remaining():.0f} s left after epoch {epoch - 1}")
            return
        r = s.cli(base + (["--resume"] if epoch > 1 else []), workdir)
        if epoch == 1:
            s.record("compile_s", r["summary"]["compile_time_s"])
        row = r["rows"][-1]
        last_wall = r["wall_s"]
        train_s += row["epoch_time_s"]
        wall_s += last_wall
        acc = r["summary"]["test_accuracy"]
        s.append("rows", {"epoch": row["epoch"], "epoch_time_s": row["epoch_time_s"], "train_s": train_s,
                          "val_accuracy": row["val_accuracy"], "best_epoch": r["summary"]["best_epoch"],
                          "test_accuracy": acc, "wall_s": wall_s})
        if acc >= target:
            s.record("reached", True)
            s.record("epochs", row["epoch"])
            s.record("train_s", train_s)
            s.record("wall_s", wall_s)
            return
    s.record("reached", False)
    s.record("stopped", f"max {max_epochs} epochs")


def section_bf16(s: Section) -> None:
    epochs = 1 if s.quick else 5
    for model in ("mlp",) if s.quick else ("mlp", "cnn"):
        got = {}
        for dtype in ("float32", "bfloat16"):
            r = s.cli(["--model", model, "--dataset", "fashion_mnist", "--data-dir", str(s.fashion), "--epochs",
                       str(epochs), "--batch-size", "128", "--seed", "0", "--compute-dtype", dtype])
            got[dtype] = {"model": model, "compute_dtype": dtype, "test_accuracy": r["summary"]["test_accuracy"],
                          "epoch_s": _steady(r["rows"]), "compile_s": r["summary"]["compile_time_s"], "epochs": epochs}
            s.append("rows", got[dtype])
        f32, b16 = got["float32"], got["bfloat16"]
        s.record("compare", {**s.result.get("compare", {}), model: {
            "accuracy_delta": b16["test_accuracy"] - f32["test_accuracy"],
            "speedup": f32["epoch_s"] / b16["epoch_s"]}})


def section_population(s: Section) -> None:
    k, epochs = (4, 1) if s.quick else (64, 3)
    rows = {}
    for members in (1, k):
        r = s.cli(["--model", "mlp", "--dataset", "fashion_mnist", "--data-dir", str(s.fashion), "--epochs",
                   str(epochs), "--batch-size", "128", "--seed", "0", "--population", str(members)])
        summary = r["summary"]
        rows[members] = {"members": members, "epoch_s": summary["epoch_time_s_median"],
                         "epoch_s_per_member": summary["epoch_time_s_median"] / members,
                         "compile_s": summary["compile_time_s"], "member_block": summary.get("member_block"),
                         "test_accuracy": summary.get("ensemble_test_accuracy", summary.get("test_accuracy"))}
        s.append("rows", rows[members])
    s.record("compare", {"members": k, "ratio": rows[k]["epoch_s_per_member"] / rows[1]["epoch_s"]})


def _module_roots(path: Path) -> set[str]:
    """Top-level packages a Python file imports at module level."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError):
        return set()
    roots = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
            if node.module.split(".")[0] == "tests":  # a helper module of the suite: follow it once
                helper = ROOT / (node.module.replace(".", "/") + ".py")
                roots |= {r for r in _module_roots(helper) if r != "tests"} if helper.exists() else set()
    return roots


COUNT_WORDS = ("passed", "failed", "skipped", "error", "xfailed", "xpassed")


def section_tests(s: Section) -> None:
    paths = (s.args.tests or ("tests/data/test_idx.py" if s.quick else "tests")).split(",")
    missing = {m for m in OPTIONAL_MODULES if m != "xdist" and not _available(m)}
    ignored = {}
    for path in paths:
        files = [ROOT / path] if path.endswith(".py") else sorted((ROOT / path).rglob("*.py"))
        for f in files:
            need = _module_roots(f) & missing
            if need and (f.name.startswith("test_") or f.name == "conftest.py"):
                ignored[str(f.relative_to(ROOT))] = ",".join(sorted(need))
    s.record("missing_modules", sorted(missing))
    s.record("ignored", ignored)
    paths = [p for p in paths if p not in ignored]
    if not paths:
        s.record("counts", {})
        return
    workers = min(8, os.cpu_count() or 1) if _available("xdist") and not s.quick else 0
    cmd = [sys.executable, "-m", "pytest", *paths, "-m", "not slow", "-o", "addopts=", "-p", "no:cacheprovider",
           "-v", "--tb=line", "-rfE", "--strict-markers"] + [f"--ignore={f}" for f in ignored] \
        + (["-p", "xdist.plugin", "-n", str(workers)] if workers else [])
    s.record("command", " ".join(cmd[1:]))
    # Only the plugins named here: whatever else the machine has installed stays out of the run.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    timeout = max(5.0, s.remaining() - 8.0)
    log = s.args.out / "pytest.log"
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            finished = True
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            finished = False
    s.record("seconds", time.perf_counter() - t0)
    s.record("finished", finished)
    s.record("returncode", proc.returncode)
    text = log.read_text(errors="replace")
    final = [line for line in text.splitlines()
             if re.match(r"^=+ .*\b(passed|failed|error|skipped|no tests ran)\b", line)]
    counts = {w: 0 for w in COUNT_WORDS}
    if finished and final:
        s.record("summary_line", final[-1].strip("= "))
        for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed)", final[-1]):
            counts["error" if word.startswith("error") else word] = int(n)
    else:  # cut short: count the per-test verdict lines printed so far (-v)
        for line in text.splitlines():
            m = re.search(r"\b(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)\b", line)
            if m and "::" in line:
                word = {"XFAIL": "xfailed", "XPASS": "xpassed"}.get(m.group(1), m.group(1).lower())
                counts[word] += 1
    s.record("counts", counts)
    failed = re.findall(r"^(?:FAILED|ERROR) (\S+)", text, flags=re.M)
    s.record("failed", sorted(set(failed)))
    if finished and not final:
        raise RuntimeError("pytest ended without a summary line (see pytest.log): "
                           + " / ".join(text.strip().splitlines()[-3:]))


def section_trees(s: Section) -> None:
    import jax
    import numpy as np

    from bench.trees import load_synthetic
    from mlwork import trees
    from mlwork.data.idx import load_split

    n_rows = 2000 if s.quick else None
    n_est = 3 if s.quick else 100  # bench.trees' default, which the recorded CPU figures used
    cpu = {(r["dataset"], r["model"]): r for r in _cpu_records("trees") if str(r.get("impl", "")).startswith("mlwork")}
    s.record("settings", "as bench.trees: forest of n_estimators trees of depth 10 (compute_oob=False); boosting "
                         "of n_estimators rounds of depth 6, learning rate 0.1, second_order, lambda 1")
    for dataset in ("synthetic", "mnist"):
        if dataset == "synthetic":
            _, xtr, ytr, xte, yte = load_synthetic()
        else:
            xtr, ytr = load_split(s.fashion, "train")
            xte, yte = load_split(s.fashion, "test")
            xtr, xte = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
            ytr, yte = ytr.astype(np.int32), yte.astype(np.int32)
        xtr, ytr = xtr[:n_rows], ytr[:n_rows]
        for model in ("rf", "gb"):
            if s.remaining() < 10:
                s.append("not_run", f"{dataset} {model}: section budget")
                continue
            if model == "rf":
                def fit(x=xtr, y=ytr):
                    return jax.block_until_ready(trees.fit_random_forest(
                        x, y, n_est, key=jax.random.key(0), max_depth=10, compute_oob=False))
            else:
                def fit(x=xtr, y=ytr):
                    return jax.block_until_ready(trees.fit_gradient_boosting(
                        x, y, loss="logistic" if int(y.max()) == 1 else "softmax", n_estimators=n_est,
                        learning_rate=0.1, max_depth=6, second_order=True, reg_lambda=1.0, min_child_weight=1.0))
            t0 = time.perf_counter()
            fitted = fit()
            first = time.perf_counter() - t0
            steady = None
            if s.remaining() > 1.5 * first + 5:
                t0 = time.perf_counter()
                fitted = fit()
                steady = time.perf_counter() - t0
            acc = float(np.mean(np.asarray(trees.predict(fitted, xte)) == yte))
            row = {"dataset": dataset, "model": model, "n_estimators": n_est, "train_rows": len(ytr),
                   "first_s": first, "fit_s": steady if steady is not None else first, "accuracy": acc}
            base = cpu.get((dataset, model))
            if base and not s.quick:
                row.update(cpu_fit_s=base["fit_s"], cpu_first_s=base["first_s"], cpu_accuracy=base["accuracy"],
                           cpu_over_device=base["fit_s"] / row["fit_s"], cpu_notes=base.get("notes"),
                           cpu_machine=_machine(base))
            s.append("rows", row)


SECTION_FUNCTIONS = {"env": section_env, "resume": section_resume, "resume_deterministic": section_resume,
                     "epochs": section_epochs, "tta": section_tta, "bf16": section_bf16,
                     "population": section_population, "tests": section_tests, "trees": section_trees}


def run_section(args) -> int:
    section = Section(args)
    try:
        with contextlib.redirect_stderr(sys.stdout):
            SECTION_FUNCTIONS[args.section](section)
    finally:
        shutil.rmtree(section.work, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.section:
        return run_section(args)
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
