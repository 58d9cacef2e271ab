"""Seeing inside training (deck: "Tips for Successful Training", "Debugging Checklist").

* :mod:`~mlwork.train.diagnostics.monitor`: gradient, parameter and update norms and dead ReLU
  units, computed inside the trainer's compiled epoch;
* :mod:`~mlwork.train.diagnostics.checklist`: the deck's debugging checklist, one function per
  check, each returning a :class:`CheckResult` with evidence and the likely cause;
* :mod:`~mlwork.train.diagnostics.landscape`: loss along the line between two parameter sets and
  on a 2-D slice along filter-normalised random directions (Li et al., 2018).
"""

from mlwork.train.diagnostics.checklist import (
    CheckResult,
    check_gradient_flow,
    check_initial_loss,
    check_labels,
    check_loss_matches_task,
    check_normalization,
    check_overfit_one_batch,
    check_shapes,
    check_train_eval_mode,
    format_table,
    run_checklist,
)
from mlwork.train.diagnostics.landscape import (
    filter_normalized_direction,
    interpolate,
    loss_along_line,
    loss_surface,
)
from mlwork.train.diagnostics.monitor import (
    MONITOR_EVERY,
    PROBE_SIZE,
    UPDATE_BATCH,
    accumulate_monitor,
    dead_relu_fraction,
    gradient_statistics,
    layer_groups,
    make_epoch_monitor,
    monitor_row,
    norms,
    sampled_gradient_statistics,
    summarize_steps,
    update_ratios,
)

__all__ = [
    "CheckResult", "check_gradient_flow", "check_initial_loss", "check_labels", "check_loss_matches_task",
    "check_normalization", "check_overfit_one_batch", "check_shapes", "check_train_eval_mode", "format_table",
    "run_checklist",
    "filter_normalized_direction", "interpolate", "loss_along_line", "loss_surface",
    "MONITOR_EVERY", "PROBE_SIZE", "UPDATE_BATCH", "accumulate_monitor", "dead_relu_fraction",
    "gradient_statistics", "layer_groups", "make_epoch_monitor", "monitor_row", "norms",
    "sampled_gradient_statistics", "summarize_steps", "update_ratios",
]
