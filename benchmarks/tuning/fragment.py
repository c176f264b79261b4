"""The TOML fragment ``tune`` writes and a suite includes: one [tuned.<scenario>.<strategy>] table per pair.

    # clbench tuned hyper-parameters: protocol chaudhry2019 (first k experiences' training data, ...)
    [tuned.clinc150_class_il_ft.olora]
    hparams = { lambda_1 = 0.31, r = 8 }
    train = { lr = 0.0021 }
    protocol = "chaudhry2019"
    k = 2
    ...

Read back by benchmarks/config/loader.py (``[suite] include``); validated there like every suite key.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROTOCOL = "chaudhry2019"


def toml_value(value: Any) -> str:
    """A scalar or an inline table as TOML (floats keep full precision)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} {value!r} to TOML")


def entry(params: Mapping[str, Any], *, k: int, validation_fraction: float, trials: int, metric: str,
          score: float, study: str) -> dict[str, Any]:
    """A [tuned.S.X] entry from a best trial's params (``train.<key>`` names go to ``train``)."""
    return {
        "hparams": {n: v for n, v in params.items() if not n.startswith("train.")},
        "train": {n.removeprefix("train."): v for n, v in params.items() if n.startswith("train.")},
        "protocol": PROTOCOL, "k": k, "validation_fraction": validation_fraction, "trials": trials,
        "metric": metric, "score": score, "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "study": study,
    }


def write_fragment(path: Path, entries: Mapping[tuple[str, str], Mapping[str, Any]], header: list[str]) -> Path:
    """Write the fragment: ``header`` lines as comments, then one table per (scenario, strategy)."""
    lines = [f"# {h}" if h else "#" for h in header] + [""]
    for (scenario, strategy), e in entries.items():
        lines.append(f"[tuned.{scenario}.{strategy}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in e.items()]
        lines.append("")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines))
    tmp.replace(path)
    return path
