"""Optional run logging to TensorBoard and Weights & Biases, through Avalanche's own loggers.

Off by default: a run whose spec has no ``log`` builds no logger and attaches no metric or plugin, so the
fast path and the results are exactly those of a run without this module. On (``[suite] log =
["tensorboard", "wandb"]`` or ``--log tensorboard,wandb``), a run logs:

* through loggers attached to the run's EvaluationPlugin (Avalanche's ``TensorboardLogger``; for W&B a
  small logger of the same protocol, as Avalanche 0.6.0's ``WandBLogger`` does not run with wandb 0.31):
  the training loss per iteration and per epoch (``Loss_MB/...``, ``Loss_Epoch/...``, x = training
  iteration) and the accuracy on every test experience after each evaluation (``Top1_Acc_Exp/...``);
* written here to the same loggers: the accuracy-matrix row after experience i as ``R/exp<j>``
  (x = i, the experience just trained), the final metrics as ``final/<name>``, and the full resolved
  config as hyper-parameters (TensorBoard's HParams tab; W&B's run config).

Layout (one run = one TensorBoard run = one W&B run, named scenario/strategy/seed):
``<results>/logs/tensorboard/<suite>/<results file stem>/`` and ``<results>/logs/wandb/wandb/*-run-*``.
W&B runs offline unless ``WANDB_MODE`` says otherwise (``wandb sync <run folder>`` uploads one later).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from benchmarks.config.spec import LOGGERS
from benchmarks.results.store import LOG_FOLDER

__all__ = ["LOGGERS", "LOG_FOLDER", "RunLog", "flat_config"]
WANDB_PROJECT = "clbench"  # default W&B project; $WANDB_PROJECT replaces it


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.1}}`` -> ``{"train.lr": 0.1}``; values other than bool/int/float/str as text."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, f"{name}."))
        else:
            out[name] = value if isinstance(value, (bool, int, float, str)) else str(value)
    return out


class RunLog:
    """The loggers of one run, and the scalars clbench adds to what Avalanche's metrics emit.

    Args:
        kinds: which loggers, a subset of ``LOGGERS``.
        log_dir: the results folder's ``logs`` folder.
        suite: suite name (TensorBoard sub-folder, W&B group).
        stem: the run's results file name without ``.json`` (TensorBoard run folder).
        run_name: ``scenario/strategy/seed<k>`` (W&B run name).
        config: the run's resolved config (``RunSpec.config()``), logged as hyper-parameters.
    """

    def __init__(self, *, kinds: tuple[str, ...], log_dir: Path, suite: str, stem: str, run_name: str,
                 config: dict[str, Any]) -> None:
        self.hparams = flat_config(config)
        self.tensorboard = self.wandb = None
        if "tensorboard" in kinds:
            from avalanche.logging import TensorboardLogger

            self.tensorboard = TensorboardLogger(tb_log_dir=Path(log_dir) / "tensorboard" / suite / stem)
        if "wandb" in kinds:
            self.wandb = _wandb_logger(Path(log_dir) / "wandb", suite, run_name, self.hparams)

    @property
    def loggers(self) -> list:
        """Avalanche loggers for the run's EvaluationPlugin."""
        return [lg for lg in (self.tensorboard, self.wandb) if lg is not None]

    def after_experience(self, i: int, row: list[float]) -> None:
        """Log row i of the accuracy matrix (accuracy on every test experience after training experience i)."""
        if self.tensorboard is not None:
            for j, acc in enumerate(row):
                self.tensorboard.writer.add_scalar(f"R/exp{j}", acc, global_step=i)
        if self.wandb is not None:  # W&B steps must grow: the row goes at the current step, x = "experience"
            self.wandb.run.log({"experience": i, **{f"R/exp{j}": a for j, a in enumerate(row)}},
                                 step=self.wandb.step)

    def finish(self, result: dict[str, Any]) -> None:
        """Log the final metrics and status with the hyper-parameters, then close every logger."""
        final = {f"final/{k}": float(v) for k, v in result.get("metrics", {}).items() if _is_number(v)}
        final["final/ok"] = float(result.get("status") == "ok")
        if self.tensorboard is not None:
            writer, step = self.tensorboard.writer, max(len(result.get("accuracy_matrix", [])) - 1, 0)
            for name, value in final.items():
                writer.add_scalar(name, value, global_step=step)
            _tensorboard_hparams(writer, self.hparams, final)
            writer.close()
        if self.wandb is not None:
            run = self.wandb.run
            run.summary.update({**final, "status": result.get("status")})
            run.finish()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _wandb_logger(folder: Path, suite: str, run_name: str, hparams: dict[str, Any]):
    """A W&B run wrapped as an Avalanche logger: offline unless WANDB_MODE is set, no code or console capture."""
    import uuid

    import wandb
    from avalanche.logging import BaseLogger

    class WandbLogger(BaseLogger):
        """Avalanche's logger protocol over ``wandb.log``. Avalanche 0.6.0's own WandBLogger does not run
        with wandb 0.31: it calls ``wandb.util.generate_id`` and reads ``wandb.viz``, which 0.31 lacks."""

        def __init__(self, run) -> None:
            super().__init__()
            self.run, self.step = run, 0

        def log_single_metric(self, name, value, x_plot) -> None:
            if _is_number(value):  # Avalanche's scalars; images and histograms are not among our metrics
                self.step = max(self.step, int(x_plot))  # W&B drops a step lower than the last one logged
                self.run.log({name: float(value)}, step=self.step)

    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), name=run_name, group=suite, job_type=str(hparams.get("strategy.name")),
        id=uuid.uuid4().hex[:12], config=hparams, dir=str(folder), reinit="finish_previous", save_code=False,
        mode=os.environ.get("WANDB_MODE", "offline"), settings=wandb.Settings(console="off", silent=True),
    )
    run.define_metric("experience")
    run.define_metric("R/*", step_metric="experience")
    return WandbLogger(run)


def _tensorboard_hparams(writer, hparams: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the HParams summary into the run's own event file (``add_hparams`` would open a new sub-run)."""
    from torch.utils.tensorboard.summary import hparams as hparams_summary

    for summary in hparams_summary(hparams, metrics):
        writer.file_writer.add_summary(summary)
