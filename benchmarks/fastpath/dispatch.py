"""Lean plugin dispatch for the per-iteration events of the fast path.

Avalanche's ``trigger_plugins(strategy, event)`` calls every plugin at every event, 8 times per
training iteration and 4 times per evaluation iteration. Most of those calls are no-ops inherited from
``avalanche.core.BasePlugin``, and each call to the EvaluationPlugin builds a logging view of the
experience (``experience.logging()``) before finding that no metric listens: with the suite's
evaluator (per-experience accuracy on the test stream) that is ~10 % of an MLP's CPU iteration, and on
a GPU, where the model's work shrinks, a larger share.

``lean_events(cls)`` returns replacements for the per-iteration trigger methods of template ``cls``
that call only the plugins whose handler can do something, in the same order with the same arguments.
A handler is skipped only when it provably does nothing:

* a plugin method inherited unchanged from ``avalanche.core`` (the base classes' empty methods);
* the EvaluationPlugin's forwarded callback when it has no loggers and none of its metrics has a
  handler for the event: a metric's handler counts unless it is ``PluginMetric``'s empty method, or
  ``GenericPluginMetric``'s unchanged iteration handler on a metric of the other phase (those only
  act when ``_mode`` is "train" for training iterations, "eval" for evaluation iterations; the
  ``before_`` ones only reset, and only when ``_reset_at == "iteration"``).

The handler lists are rebuilt whenever the plugin list changes (its identity tuple is checked at every
event; plugins added mid-run are seen at the next event). Templates that override a trigger method
themselves (DER's ``_before_forward``) keep it: only triggers still equal to Avalanche's
``BaseSGDTemplate`` implementation are replaced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

TRAIN_EVENTS = (
    "before_training_iteration", "before_forward", "after_forward", "before_backward", "after_backward",
    "before_update", "after_update", "after_training_iteration",
)
EVAL_EVENTS = ("before_eval_iteration", "before_eval_forward", "after_eval_forward", "after_eval_iteration")
_BASE_PLUGINS = ("BasePlugin", "BaseSGDPlugin", "SupervisedPlugin")


def _is_core_noop(func: Any) -> bool:
    """True for the empty event methods of avalanche.core's base plugin classes."""
    return getattr(func, "__module__", None) == "avalanche.core" and \
        getattr(func, "__qualname__", "").split(".")[0] in _BASE_PLUGINS


def _metric_listens(metric: Any, event: str) -> bool:
    """Whether ``metric``'s handler for ``event`` can emit or update anything (conservative: True)."""
    from avalanche.evaluation.metric_definitions import GenericPluginMetric, PluginMetric

    if event in getattr(metric, "__dict__", {}):
        return True
    func = getattr(type(metric), event, None)
    if func is None or func is getattr(PluginMetric, event, None):
        return False
    if func is getattr(GenericPluginMetric, event, None) and event in _PHASE_OF:
        acts = getattr(metric, "_mode", None) == _PHASE_OF[event]
        if event.startswith("before_"):  # only resets, and only per iteration
            acts = acts and getattr(metric, "_reset_at", None) == "iteration"
        return acts
    return True


#: iteration events whose GenericPluginMetric handler acts only in one phase (``_mode``)
_PHASE_OF = {
    "before_training_iteration": "train", "after_training_iteration": "train",
    "before_eval_iteration": "eval", "after_eval_iteration": "eval",
}


def handler(plugin: Any, event: str) -> Callable[..., Any] | None:
    """The callable ``trigger_plugins`` would invoke for ``plugin`` at ``event``, or None if it is a no-op."""
    from avalanche.training.plugins import EvaluationPlugin

    if event in getattr(plugin, "__dict__", {}):
        return getattr(plugin, event)
    func = getattr(type(plugin), event, None)
    if func is not None:
        return None if _is_core_noop(func) else getattr(plugin, event)
    if isinstance(plugin, EvaluationPlugin):  # callbacks forwarded by EvaluationPlugin.__getattribute__
        if plugin.loggers or any(_metric_listens(m, event) for m in plugin.metrics):
            return getattr(plugin, event)
        return None
    return getattr(plugin, event) if hasattr(plugin, event) else None


def handlers(plugins: list, event: str) -> list[Callable[..., Any]]:
    """Handlers of ``event`` in plugin order, no-ops left out."""
    return [h for h in (handler(p, event) for p in plugins) if h is not None]


def _lean_trigger(event: str) -> Callable[..., None]:
    def trigger(self, **kwargs) -> None:
        key = tuple(map(id, self.plugins))
        table = self.__dict__.get("_lean_table")
        if table is None or table[0] != key:
            table = (key, {})
            self.__dict__["_lean_table"] = table
        calls = table[1].get(event)
        if calls is None:
            calls = table[1][event] = handlers(self.plugins, event)
        for call in calls:
            call(self, **kwargs)

    trigger.__name__ = trigger.__qualname__ = f"_{event}"
    trigger.__doc__ = f"Lean ``trigger_plugins(self, {event!r})`` (benchmarks/fastpath/dispatch.py)."
    return trigger


def lean_events(cls: type) -> dict[str, Callable[..., None]]:
    """Lean replacements for ``cls``'s per-iteration trigger methods that are still Avalanche's own."""
    from avalanche.training.templates.base_sgd import BaseSGDTemplate

    out = {}
    for event in TRAIN_EVENTS + EVAL_EVENTS:
        name = f"_{event}"
        if getattr(cls, name, None) is vars(BaseSGDTemplate).get(name):
            out[name] = _lean_trigger(event)
    return out


__all__ = ["EVAL_EVENTS", "TRAIN_EVENTS", "handler", "handlers", "lean_events"]
