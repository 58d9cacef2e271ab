"""Training: the state pytree, the compiled step/epoch/evaluation, Orbax checkpoints, the loop."""

from mlwork.train.checkpoint import CheckpointError, best_step, checkpoint_manager
from mlwork.train.compile_cache import enable_compilation_cache
from mlwork.train.export import export_run, load_exported
from mlwork.train.guard import EXIT_PREEMPTED, Preempted, PreemptionGuard, WorkdirInUse, WorkdirLock
from mlwork.train.inference import predict
from mlwork.train.load import LoadedRun, load_run
from mlwork.train.logs import epoch_line, use_progress_bar
from mlwork.train.loop import (
    MODELS,
    Compiled,
    FitResult,
    NonFiniteLossError,
    Run,
    RunError,
    TrainConfig,
    build_model,
    build_schedule,
    compile_run,
    fit,
    init_state,
    make_evaluator,
    prepare,
    run_epochs,
    train_and_evaluate,
)
from mlwork.train.provenance import reproducibility_record
from mlwork.train.report import params_sha256
from mlwork.train.state import TrainState, create_train_state
from mlwork.train.step import make_evaluate, make_train_chunk, make_train_epoch, make_train_step
from mlwork.train.tensorboard import TensorBoardWriter

__all__ = [
    "FitResult", "Run", "compile_run", "fit", "init_state", "make_evaluator", "prepare", "run_epochs",
    "CheckpointError", "EXIT_PREEMPTED", "Preempted", "PreemptionGuard", "WorkdirInUse", "WorkdirLock", "Compiled",
    "make_train_chunk",
    "MODELS", "NonFiniteLossError", "RunError", "TrainConfig", "TrainState", "best_step", "build_model",
    "build_schedule", "checkpoint_manager", "create_train_state", "enable_compilation_cache",
    "make_evaluate", "make_train_epoch", "make_train_step", "params_sha256", "train_and_evaluate",
    "LoadedRun", "TensorBoardWriter", "epoch_line", "export_run", "load_exported", "load_run", "predict",
    "reproducibility_record", "use_progress_bar",
]
