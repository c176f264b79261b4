"""Checks before any training: data present (or obtainable), devices available, solvers installed."""

from __future__ import annotations

from benchmarks.config.spec import RunSpec


def preflight(specs: list[RunSpec], local_gpu: bool = True) -> list[str]:
    """Problems that would make runs fail; empty when the suite can start.

    Args:
        specs: the suite's runs.
        local_gpu: runs execute on this machine, so 'cuda' needs a GPU here (False for Ray clusters).
    """
    problems: list[str] = []
    families = {s.scenario_entry.split("_")[0] + "_" + s.scenario_entry.split("_")[1] for s in specs}
    if "split_mnist" in families:
        try:
            from benchmarks.data.mnist import load_mnist

            load_mnist(True)
            load_mnist(False)
        except Exception as exc:  # noqa: BLE001  DataMissingError and checksum errors name the fix
            problems.append(str(exc))
    seen_loss = {s.scenario for s in specs if s.scenario_params.get("loss_on_seen_classes") and s.setting != "class_il"}
    problems += [f"[scenarios.{name}]: loss_on_seen_classes applies to class_il only (no growing head); remove it"
                 for name in sorted(seen_loss)]
    text = [s for s in specs if _family(s.scenario_entry) == "split_text"]  # also the literature protocols
    if text:  # data present, groups valid, tokens cached (benchmarks/scenarios/split_text.py)
        from benchmarks.scenarios.split_text import check_specs

        problems += check_specs(text)
    if local_gpu and any(s.device == "cuda" for s in specs):
        import torch

        if not torch.cuda.is_available():
            problems.append("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu or auto")
    if any(s.strategy_entry == "gem" for s in specs):
        try:
            import quadprog  # noqa: F401
        except ImportError:
            problems.append("strategy 'gem' needs the QP solver quadprog: pip install quadprog")
    problems += _logger_problems({name for s in specs for name in s.log})
    return problems


def _logger_problems(kinds: set[str]) -> list[str]:
    """A run logger that the suite asks for but cannot import (the packages are the optional extra [log])."""
    problems = []
    for kind, module in (("tensorboard", "tensorboard"), ("wandb", "wandb")):
        if kind in kinds:
            try:
                __import__(module)
            except ImportError:
                problems.append(f"log = {kind!r} needs the {module} package: pip install -e '.[log]' "
                                f"(or pip install {module}), or leave {kind!r} out of log / --log")
    return problems


def _family(entry: str) -> str | None:
    """The registered family of scenario ``entry`` (e.g. "split_text" for the literature protocols too)."""
    from benchmarks.scenarios import SCENARIOS

    return SCENARIOS.get(entry).meta.get("family") if entry in SCENARIOS else None
