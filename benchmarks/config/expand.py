"""Validate a suite document and expand it into RunSpecs; collects every problem before raising."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from benchmarks.config.depth import depth_problems
from benchmarks.config.sources import key_sources
from benchmarks.config.spec import _SCENARIO_RESERVED, RunSpec, SuiteMeta, duplicates
from benchmarks.core.typed import ConfigError, build, coerce, to_dict

_TOP_LEVEL = ("suite", "train", "hparams", "variants", "scenarios", "tune")
#: keys of one [tuned.<scenario>.<strategy>] entry of a fragment (benchmarks/tuning/fragment.py)
_TUNED_KEYS = ("hparams", "train", "protocol", "k", "validation_fraction", "trials", "metric", "score", "date",
               "study")


def _hint(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(choices)}"


class SuiteExpander:
    """Turns a parsed suite TOML into run specs. Problems go to ``self.errors``; ``run`` raises them."""

    def __init__(self, doc: Mapping[str, Any], *, name: str, where: str,
                 tuned: Mapping[tuple[str, str], tuple[str, Mapping[str, Any]]] | None = None,
                 overridden: set[tuple[str, ...]] | None = None) -> None:
        from benchmarks.models import MODELS
        from benchmarks.scenarios import SCENARIOS
        from strategies import STRATEGIES

        self.doc, self.name, self.where = doc, name, where
        self.tuned = dict(tuned or {})  # (scenario, strategy) -> (fragment path, its entry)
        self.overridden = set(overridden or ())  # key paths changed by --set
        self.errors: list[str] = []
        self.scenarios, self.models, self.strategies = SCENARIOS, MODELS, STRATEGIES
        self.run_lists: dict[str, tuple[str, ...]] = {}  # scenario -> strategies it runs

    def run(self) -> list[RunSpec]:
        """All run specs of the suite, or ConfigError with every problem found."""
        for key in self.doc:
            if key not in _TOP_LEVEL:
                self.errors.append(f"{self.where}: unknown table [{key}]{_hint(key, list(_TOP_LEVEL))}")
        meta = build(SuiteMeta, self.doc.get("suite", {}), f"{self.where} [suite]", self.errors)
        self._check_hparam_tables(self.doc.get("hparams", {}), f"{self.where} [hparams]")
        variants = self._variants()
        specs: list[RunSpec] = []
        scenarios = self.doc.get("scenarios", {})
        if not scenarios:
            self.errors.append(f"{self.where}: no [scenarios.<name>] table; add at least one scenario")
        for sname, table in scenarios.items():
            specs += self._scenario(sname, table, meta, variants)
        self._check_tuned(variants)
        if "tune" in self.doc:
            from benchmarks.tuning.space import tune_problems

            self.errors += tune_problems(self.doc["tune"], f"{self.where} [tune]", self.run_lists,
                                         {v: t["strategy"] for v, t in variants.items()})
        if self.errors:
            raise ConfigError(list(dict.fromkeys(self.errors)))  # one line per distinct problem
        return specs

    def _check_tuned(self, variants: Mapping[str, Any]) -> None:
        """Fragment entries name a scenario of this suite and a strategy it knows, with known keys only."""
        for (sname, strategy), (path, entry) in self.tuned.items():
            where = f"{path} [tuned.{sname}.{strategy}]"
            if sname not in self.doc.get("scenarios", {}):
                self.errors.append(f"{where}: this suite has no scenario {sname!r}; tune again or drop the include")
            elif strategy not in self.strategies and strategy not in variants:
                self.errors.append(f"{where}: unknown strategy {strategy!r}")
            for key in sorted(set(entry) - set(_TUNED_KEYS)):
                self.errors.append(f"{where}: unknown key {key!r}; an entry has {', '.join(_TUNED_KEYS)}")

    # -- strategies and variants -------------------------------------------------------------
    def _check_hparam_tables(self, tables: Mapping[str, Any], where: str, extra: tuple[str, ...] = ()) -> None:
        for key in tables:
            if key not in self.strategies and key not in extra:
                names = self.strategies.names() + list(extra)
                self.errors.append(f"{where}: unknown strategy {key!r}{_hint(key, names)}")

    def _variants(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for vname, table in self.doc.get("variants", {}).items():
            where = f"{self.where} [variants.{vname}]"
            base = table.get("strategy")
            unknown = set(table) - {"strategy", "hparams", "train"}
            for key in sorted(unknown):
                self.errors.append(f"{where}: unknown key {key!r}; a variant has strategy, hparams, train")
            if vname in self.strategies:
                self.errors.append(f"{where}: {vname!r} is already a registered strategy; rename the variant")
            elif base not in self.strategies:
                self.errors.append(
                    f"{where}: strategy = {base!r} is not a registered strategy{_hint(str(base), self.strategies.names())}"
                )
            else:
                out[vname] = {"strategy": base, "hparams": table.get("hparams", {}), "train": table.get("train", {})}
        return out

    # -- scenarios -----------------------------------------------------------------------------
    def _scenario(self, sname: str, table: Mapping[str, Any], meta, variants) -> list[RunSpec]:
        where = f"{self.where} [scenarios.{sname}]"
        entry_name = table.get("scenario", sname)
        if entry_name not in self.scenarios:
            self.errors.append(f"{where}: unknown scenario {entry_name!r}{self.scenarios.suggest(entry_name)}; "
                               f"known: {', '.join(self.scenarios.names())}")
            return []
        entry = self.scenarios.get(entry_name)
        params = {k: v for k, v in table.items() if k not in _SCENARIO_RESERVED}
        sparams = build(entry.params, params, where, self.errors)
        model = self._model(table.get("model", {}), entry, where)
        sparams = self._tokenizer(sparams, model, where)
        seeds = self._list(table, "seeds", int, meta.seeds if meta else (0,), where)
        names = self._list(table, "strategies", str, meta.strategies if meta else (), where)
        self.run_lists[sname] = names
        if not names and meta is not None:
            self.errors.append(f"{where}: no strategies (set [suite] strategies or this scenario's strategies)")
        self._check_hparam_tables(table.get("hparams", {}), f"{where} hparams", tuple(variants))
        if sparams is None or model is None or meta is None:
            return []
        specs = []
        for strategy in names:
            specs += self._runs(sname, entry, sparams, model, strategy, table, meta, variants, seeds, where)
        diagnostics = self._diagnostics(table.get("diagnostics", False), model, where)
        return [replace(s, diagnostics=diagnostics) for s in specs] if diagnostics is not None else specs

    def _diagnostics(self, value: Any, model: tuple[str, Any], where: str) -> dict[str, Any] | None:
        """``diagnostics = true | false | {options}`` -> the options of benchmarks/diagnostics, or None."""
        from benchmarks.diagnostics.params import DiagnosticsParams

        if value is False:
            return None
        if value is not True and not isinstance(value, Mapping):
            self.errors.append(f"{where}: diagnostics must be true, false or a table of options, got {value!r}")
            return None
        if not self.models.get(model[0]).meta.get("transformer"):
            self.errors.append(f"{where}: diagnostics = true needs a Transformer model (vit, text_transformer, "
                               f"minilm, hf_encoder), not {model[0]!r}; remove it or change the model")
            return None
        params = build(DiagnosticsParams, {} if value is True else value, f"{where} diagnostics", self.errors)
        return None if params is None else to_dict(params)

    def _list(self, table: Mapping[str, Any], key: str, item: type, default: tuple, where: str) -> tuple:
        """``table[key]`` checked to be a list of ``item`` (default when absent; () when invalid)."""
        if key not in table:
            return tuple(default)
        try:
            values = coerce(table[key], tuple[item, ...])
        except TypeError as exc:
            self.errors.append(f"{where}: {key} {exc}")
            return ()
        twice = duplicates(values)
        if twice:
            self.errors.append(f"{where}: {key} = {list(values)} lists {twice} more than once; "
                               "each would run twice with one run id: list each once")
        return tuple(dict.fromkeys(values))

    def _model(self, table: Mapping[str, Any], entry, where: str) -> tuple[str, Any] | None:
        """(registered model name, its params) or None when invalid."""
        name = table.get("name", entry.meta["default_model"])
        if name not in self.models:
            self.errors.append(f"{where} model: unknown model {name!r}{self.models.suggest(name)}")
            return None
        mentry = self.models.get(name)
        params = build(mentry.params, {k: v for k, v in table.items() if k != "name"}, f"{where} model", self.errors)
        return None if params is None else (name, params)

    def _tokenizer(self, sparams: Any, model: tuple[str, Any] | None, where: str) -> Any:
        """Scenario params tokenizing with the model's tokenizer (hf_encoder: its folder), when the scenario
        has a ``tokenizer`` (split_text) and the model declares one (registry meta ``tokenizer``)."""
        folder_of = None if model is None else self.models.get(model[0]).meta.get("tokenizer")
        if sparams is None or folder_of is None:
            return sparams
        folder = folder_of(model[1])
        if not hasattr(sparams, "tokenizer"):
            if folder:  # it would tokenize with another tokenizer, or not be text at all
                self.errors.append(f"{where}: model {model[0]!r} tokenizes with {folder!r}, but this scenario has no "
                                   "tokenizer option; use a split_text scenario (split_text_class_il, ...)")
                return None
            return sparams
        if sparams.tokenizer and sparams.tokenizer != folder:
            self.errors.append(f"{where}: tokenizer = {sparams.tokenizer!r} but model {model[0]!r} tokenizes with "
                               f"{folder or 'all-MiniLM-L6-v2'!r}; remove tokenizer (it follows the model)")
            return None
        return replace(sparams, tokenizer=folder)

    def _runs(self, sname, entry, sparams, model, strategy, table, meta, variants, seeds, where) -> list[RunSpec]:
        from strategies import StrategyNotApplicable, TrainConfig, check_applicable

        mname, mparams = model
        variant = variants.get(strategy)
        base = variant["strategy"] if variant else strategy
        if base not in self.strategies:
            names = self.strategies.names() + list(variants)
            self.errors.append(f"{where}: unknown strategy {strategy!r}{_hint(strategy, names)}")
            return []
        setting = entry.meta["setting"]
        try:
            check_applicable(base, setting, bool(self.models.get(mname).meta.get("transformer")))
        except StrategyNotApplicable as exc:
            self.errors.append(f"{where}: {exc}; remove it from this scenario's strategies")
            return []
        sentry = self.strategies.get(base)
        hp_layers, train_layers, tuned = self._layers(sname, strategy, base, setting, table, variant)
        hp = {k: v for _, _, values in hp_layers for k, v in values.items()}
        params = build(sentry.params, hp, f"{where} strategy {strategy!r}", self.errors)
        train_raw = {k: v for _, _, values in train_layers for k, v in values.items()}
        twhere = f"{self.where} [variants.{strategy}] / [train]" if variant else f"{where} / [train]"
        train = build(TrainConfig, train_raw, twhere, self.errors)
        if params is None or train is None:
            return []
        sources = {
            "strategy": key_sources(sentry.params, hp_layers, where=self.where, overridden=self.overridden),
            "train": key_sources(TrainConfig, train_layers, where=self.where, overridden=self.overridden),
            **({"tuned": tuned} if tuned else {}),
        }
        for problem in depth_problems(mname, mparams, params):
            self.errors.append(f"{where} strategy {strategy!r}: {problem}")
        return [
            RunSpec(
                suite=self.name, scenario=sname, scenario_entry=entry.name, setting=setting,
                strategy=strategy, strategy_entry=base, seed=seed, device=meta.device, reference=meta.reference,
                scenario_params=to_dict(sparams), model={"name": mname, **to_dict(mparams)},
                strategy_params=to_dict(params), train=to_dict(train), sources=sources, log=meta.log,
            )
            for seed in seeds
        ]

    def _layers(self, sname, strategy, base, setting, table, variant):
        """(strategy-parameter layers, train layers, tuned record or None), in increasing precedence."""
        hp_layers = [
            ("default", (setting,), self.strategies.get(base).meta["per_setting"].get(setting, {})),
            ("hand-set", ("hparams", base), self.doc.get("hparams", {}).get(base, {})),
            ("hand-set", ("variants", strategy, "hparams"), variant["hparams"] if variant else {}),
            ("hand-set", ("scenarios", sname, "hparams", strategy), table.get("hparams", {}).get(strategy, {})),
        ]
        train_layers = [
            ("hand-set", ("train",), self.doc.get("train", {})),
            ("hand-set", ("scenarios", sname, "train"), table.get("train", {})),
            ("hand-set", ("variants", strategy, "train"), variant["train"] if variant else {}),
        ]
        if (sname, strategy) not in self.tuned:
            return hp_layers, train_layers, None
        path, entry = self.tuned[(sname, strategy)]
        hp_layers.append(("tuned", (path,), entry.get("hparams", {})))
        train_layers.append(("tuned", (path,), entry.get("train", {})))
        record = {k: v for k, v in entry.items() if k not in ("hparams", "train")}
        return hp_layers, train_layers, {"fragment": path, **record}
