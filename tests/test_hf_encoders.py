"""hf_encoder (benchmarks/models/hf_encoder.py) on tiny random encoders built here, no download.

Each architecture (BERT, RoBERTa, DistilBERT, DeBERTa-v2, ELECTRA) is a 2-block, D = 16 model saved
with save_pretrained next to one tiny WordPiece tokenizer (also saved in each folder). Checked: every
strategy that needs a Transformer runs on each through a suite (tokenizer taken from the model's
folder), the attention maps clbench reads (encode, the attention penalty, the diagnostics reader)
are the model's own ``output_attentions``, LoRA targets follow the architecture, pooling options,
token-cache keys per tokenizer, id width per vocabulary, and bad folders are refused before training.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
import torch

from benchmarks.config.loader import expand
from benchmarks.config.preflight import preflight
from benchmarks.core import ScenarioInfo
from benchmarks.core.typed import ConfigError
from benchmarks.engine.runner import run_one
from strategies import STRATEGIES

WORDS = ("play", "some", "music", "set", "an", "alarm", "for", "seven", "what", "is", "the", "weather",
         "book", "a", "table", "tonight", "call", "mom", "transfer", "money", "to", "my", "savings", "how",
         "much", "do", "i", "owe", "turn", "on", "lights", "off")
VOCAB = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS)
KINDS = ("bert", "roberta", "distilbert", "deberta-v2", "electra")
TRANSFORMER_STRATEGIES = sorted(n for n in STRATEGIES if STRATEGIES.get(n).meta["needs_transformer"])
GROUPS = [["a", "b"], ["c", "d"]]


def _config(kind: str):
    from transformers import BertConfig, DebertaV2Config, DistilBertConfig, ElectraConfig, RobertaConfig

    common = {"vocab_size": len(VOCAB), "pad_token_id": 0}
    bert = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                max_position_embeddings=40, **common)
    if kind == "bert":
        return BertConfig(**bert)
    if kind == "roberta":  # positions start after pad_token_id = 0 (RoBERTa's own rule)
        return RobertaConfig(**bert)
    if kind == "electra":  # embedding size 8 != hidden size: the embeddings_project path
        return ElectraConfig(embedding_size=8, **bert)
    if kind == "distilbert":
        return DistilBertConfig(dim=16, n_layers=2, n_heads=2, hidden_dim=32, max_position_embeddings=40, **common)
    return DebertaV2Config(relative_attention=True, position_buckets=8, max_relative_positions=16,
                           pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm", position_biased_input=False,
                           **bert)


def _save_model(folder: Path, config, tokenizer=None) -> Path:
    from transformers import AutoModel

    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def _wordpiece(words) -> object:
    """A WordPiece tokenizer (BERT's rules) over ``words``, ids in order."""
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab={w: i for i, w in enumerate(words)})


@pytest.fixture(scope="module")
def tokenizer():
    tok = _wordpiece(VOCAB)
    assert tok("play music")["input_ids"] == [2, 5, 7, 3]  # [CLS] play music [SEP]: words are known
    return tok


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("encoders")
    return {kind: _save_model(root / kind, _config(kind), tokenizer) for kind in KINDS}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """4 intents x (4 train + 2 test) utterances of the tiny vocabulary."""
    path = tmp_path_factory.mktemp("data") / "intents.csv"
    rng = random.Random(0)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "split"])
        writer.writeheader()
        for c, label in enumerate("abcd"):
            topic = WORDS[8 * c: 8 * c + 8]  # each intent draws most words from its own 8
            for i in range(6):
                words = [rng.choice(topic) for _ in range(rng.randint(2, 6))] + [rng.choice(WORDS)]
                writer.writerow({"text": " ".join(words), "label": label, "split": "train" if i < 4 else "test"})
    return path


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CLBENCH_CACHE", str(tmp_path / "cache"))


def _doc(data: Path, model: dict, strategies, hparams=None, **train) -> dict:
    table = {"scenario": "split_text_class_il", "dataset": "file", "path": str(data), "groups": GROUPS,
             "max_length": 12, "model": model, "hparams": hparams or {}}
    return {"suite": {"seeds": [0], "strategies": list(strategies), "device": "cpu"},
            "train": {"epochs": 1, "batch_size": 8, **train}, "scenarios": {"mine": table}}


def _info(n_outputs: int = 4, length: int = 12) -> ScenarioInfo:
    return ScenarioInfo(name="tiny", family="split_text", setting="class_il", n_experiences=2, n_outputs=n_outputs,
                        input_shape=(2, length), modality="text", classes_per_experience=((0, 1), (2, 3)),
                        sample_bytes=length)


def _encoder(folder: Path, **params):
    from benchmarks.models import build_model
    from benchmarks.models.hf_encoder import HFEncoderParams

    torch.manual_seed(0)
    return build_model("hf_encoder", HFEncoderParams(path=str(folder), **params), _info())


def _batch(tokenizer) -> torch.Tensor:
    enc = tokenizer(["play some music", "what is the weather for seven tonight", "call mom"],
                    max_length=12, padding="max_length", truncation=True, return_tensors="pt")
    return torch.stack([enc["input_ids"], enc["attention_mask"]], dim=1)  # (3, 2, 12), padded


def _real_pairs(mask: torch.Tensor) -> torch.Tensor:
    """(B, 1, L, L) bool: query and key both real tokens (HF models differ only on padded rows)."""
    return (mask[:, None, :, None] & mask[:, None, None, :]).bool()


# -- every Transformer strategy runs on every architecture --------------------------------------------
_SMALL = {"replay+attn_reg": {"mem_size": 4}, "feature_replay": {"mem_size": 4},
          "feature_replay+attn_reg": {"mem_size": 4}}


@pytest.mark.parametrize("strategy", TRANSFORMER_STRATEGIES)
@pytest.mark.parametrize("kind", ("bert", "roberta", "distilbert", "deberta-v2"))
def test_every_transformer_strategy_runs_on_each_architecture(kind, strategy, folders, data):
    doc = _doc(data, {"name": "hf_encoder", "path": str(folders[kind]), "frozen_layers": 1}, [strategy],
               {strategy: _SMALL.get(strategy, {})})
    (spec,) = expand(doc, name="t", where="suite.toml")
    assert spec.scenario_params["tokenizer"] == str(folders[kind].resolve())  # follows the model
    assert preflight([spec]) == []
    result = run_one(spec)
    assert result["status"] == "ok", result["error"]
    R = result["accuracy_matrix"]
    assert len(R) == 2 and all(0.0 <= a <= 1.0 for row in R for a in row)


# -- attention maps: ours == the model's own output_attentions -----------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_maps_and_states_match_the_models_own_forward(kind, folders, tokenizer):
    from benchmarks.diagnostics.reader import LayerReader, prepare_inputs
    from strategies.plugins.attention_reg import AttentionRegPlugin

    model = _encoder(folders[kind], frozen_layers=-1).eval()
    x = _batch(tokenizer)
    ids, mask = x[:, 0], x[:, 1]
    with torch.no_grad():
        ours = model.encode(x, output_attentions=True)
        ref = model.bert(input_ids=ids, attention_mask=mask, output_attentions=True)
        plugin_maps, _ = AttentionRegPlugin(lambda_=1.0)._maps(model, x)
    real = mask.bool()
    assert torch.allclose(ours.hidden[real], ref.last_hidden_state[real], atol=1e-5)
    assert len(ref.attentions) == len(ours.attentions) == len(plugin_maps) == 2
    pairs = _real_pairs(mask)
    for mine, theirs, penalty_map in zip(ours.attentions, ref.attentions, plugin_maps):
        assert mine.shape == theirs.shape == (3, 2, 12, 12)
        assert torch.allclose(mine * pairs, theirs * pairs, atol=1e-6)
        assert torch.equal(penalty_map, mine)
    x_read = prepare_inputs(model, x)  # the diagnostics read trimmed inputs (L' = longest utterance)
    maps = LayerReader(x_read, torch.zeros(3, dtype=torch.long), batch_size=2, with_maps=True).read(model).maps
    n = x_read.size(-1)
    for read, theirs in zip(maps, ref.attentions):
        p = pairs[:, :, :n, :n]
        assert torch.allclose(read * p, theirs[:, :, :n, :n] * p, atol=1e-6)


def test_attention_penalty_is_zero_for_the_snapshot_and_grows_with_change(folders, tokenizer):
    import copy

    from strategies.plugins.attention_reg import AttentionRegPlugin

    model = _encoder(folders["distilbert"], frozen_layers=-1)  # q_lin/k_lin/v_lin: not BERT's names
    plugin = AttentionRegPlugin(lambda_=1.0)
    plugin.snapshot = copy.deepcopy(model).eval()
    x = _batch(tokenizer)
    assert plugin.penalty(model, x).item() == 0.0
    with torch.no_grad():
        model.blocks[1].attention.q_lin.weight.add_(torch.randn(16, 16))
    assert plugin.penalty(model, x).item() > 1e-3


# -- LoRA targets and pooling ---------------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "targets"), [("bert", ["query", "value"]), ("roberta", ["query", "value"]),
                                               ("distilbert", ["q_lin", "v_lin"]),
                                               ("deberta-v2", ["query_proj", "value_proj"])])
def test_lora_targets_follow_the_architecture(kind, targets, folders):
    from strategies.plugins.lora_modules import default_targets

    model = _encoder(folders[kind])
    assert default_targets(model) == targets
    names = {n.rsplit(".", 1)[-1] for n, _ in model.blocks.named_modules()}
    assert set(targets) <= names


def test_pooling_options(folders, tokenizer):
    from benchmarks.models.text_backbone import masked_mean

    x = _batch(tokenizer)
    mean, cls, pooler = (_encoder(folders["bert"], pooling=p).eval() for p in ("mean", "cls", "pooler"))
    with torch.no_grad():
        hidden = mean.encode(x).hidden
        ref = pooler.bert(input_ids=x[:, 0], attention_mask=x[:, 1])
        assert torch.allclose(mean.features(x), masked_mean(hidden, x[:, 1].bool()), atol=1e-6)
        assert torch.allclose(cls.features(x), hidden[:, 0], atol=1e-6)
        assert torch.allclose(pooler.features(x), ref.pooler_output, atol=1e-6)
    assert not any(p.requires_grad for p in pooler.bert.pooler.parameters())  # frozen with the whole encoder
    top = _encoder(folders["bert"], pooling="pooler", frozen_layers=1)
    assert all(p.requires_grad for p in top.bert.pooler.parameters())  # trains with the top blocks


def test_frozen_prefix_cache_is_exact_on_deberta(folders, tokenizer):
    """Relative positions come from the length: cached per-input states must give the full forward's output."""
    cached = _encoder(folders["deberta-v2"], frozen_layers=1).eval()
    plain = _encoder(folders["deberta-v2"], frozen_layers=1, cache_prefix=False).eval()
    x = _batch(tokenizer)
    assert cached.uses_prefix_cache() and not plain.uses_prefix_cache()
    with torch.no_grad():
        assert torch.allclose(cached(x), plain(x), atol=1e-5)
    assert cached.prefix_cache.misses == 3


# -- MiniLM is one instance of hf_encoder ----------------------------------------------------------------
@pytest.mark.integration  # the real MiniLM (22M parameters), 4 runs of 3 epochs
def test_hf_encoder_on_the_minilm_folder_gives_minilms_matrices(data):
    from benchmarks.data.tokenize import minilm_folder

    hparams = {"replay+attn_reg": {"mem_size": 4, "attn_lambda": 10.0, "attn_layers": [4, 5]}}
    runs = {}
    for model in ({"name": "minilm", "frozen_layers": 4},
                  {"name": "hf_encoder", "path": str(minilm_folder()), "frozen_layers": 4}):
        specs = expand(_doc(data, model, ["naive", "replay+attn_reg"], hparams, epochs=3), name="t", where="suite.toml")
        runs[model["name"]] = [run_one(s) for s in specs]
    for a, b in zip(runs["minilm"], runs["hf_encoder"]):
        assert a["status"] == b["status"] == "ok", (a["error"], b["error"])
        assert a["accuracy_matrix"] == b["accuracy_matrix"]  # bit for bit
    assert runs["minilm"][0]["accuracy_matrix"][0][0] > 0.5  # it learned the first pair of intents


# -- tokenizer: cache key, id width -------------------------------------------------------------------------
def test_token_cache_is_keyed_per_tokenizer(folders, tmp_path):
    from benchmarks.data.tokenize import cache_key, tokenize, tokenizer_id

    texts = ["play some music", "call mom"]
    tiny, default = str(folders["bert"]), ""
    assert tokenizer_id(tiny) != tokenizer_id(default)
    assert cache_key(texts, 12, tiny) != cache_key(texts, 12, default)
    ours, minilm = tokenize(texts, 12, tiny), tokenize(texts, 12, default)
    assert len(list((tmp_path / "cache" / "tokens").glob("*.pt"))) == 2
    assert int(ours[:, 0].max()) < len(VOCAB) < int(minilm[:, 0].max())  # each its own vocabulary
    assert torch.equal(tokenize(texts, 12, tiny), ours)  # from the cache


def test_stored_bytes_use_the_vocabularys_id_width(folders, data, tmp_path):
    from benchmarks.core.storage import token_bytes
    from benchmarks.data.tokenize import vocab_size
    from benchmarks.scenarios import SCENARIOS, build_scenario

    (spec,) = expand(_doc(data, {"name": "hf_encoder", "path": str(folders["bert"])}, ["naive"]),
                     name="t", where="suite.toml")
    params = SCENARIOS.get(spec.scenario_entry).params(**{k: tuple(v) if isinstance(v, list) else v
                                                          for k, v in spec.scenario_params.items()})
    assert build_scenario(spec.scenario_entry, params, seed=0).info.sample_bytes == 12  # 37 ids: uint8
    big = tmp_path / "big"
    _wordpiece([*VOCAB, *(f"w{i}" for i in range(70_000))]).save_pretrained(big)
    assert vocab_size(str(big)) > 65_536 and token_bytes(12, vocab_size(str(big))) == 48  # uint32
    assert token_bytes(12, vocab_size("")) == 24  # all-MiniLM-L6-v2: uint16


def test_a_scenario_tokenizer_other_than_the_models_is_refused(folders, data):
    doc = _doc(data, {"name": "hf_encoder", "path": str(folders["bert"])}, ["naive"])
    doc["scenarios"]["mine"]["tokenizer"] = str(folders["roberta"].resolve())
    with pytest.raises(ConfigError, match="remove tokenizer"):
        expand(doc, name="t", where="suite.toml")


def test_a_scenario_without_a_tokenizer_option_is_refused(folders):
    doc = {"suite": {"seeds": [0], "strategies": ["naive"], "device": "cpu"},
           "scenarios": {"synthetic_class_il": {"model": {"name": "hf_encoder", "path": str(folders["bert"])}}}}
    with pytest.raises(ConfigError, match="this scenario has no tokenizer option; use a split_text scenario"):
        expand(doc, name="t", where="suite.toml")


# -- bad folders: refused before training, naming the folder and the fix ---------------------------------
def _refusal(data: Path, path: Path, **model) -> str:
    with pytest.raises(ConfigError) as info:
        expand(_doc(data, {"name": "hf_encoder", "path": str(path), **model}, ["naive"]), name="t", where="suite.toml")
    message = str(info.value)
    assert str(path) in message and "suite.toml [scenarios.mine] model" in message
    return message


def test_a_decoder_only_model_is_refused(tmp_path, data, tokenizer):
    from transformers import GPT2Config

    folder = _save_model(tmp_path / "gpt2", GPT2Config(vocab_size=len(VOCAB), n_embd=16, n_layer=2, n_head=2),
                         tokenizer)
    assert "'gpt2' is a decoder (causal attention)" in _refusal(data, folder)


def test_a_folder_without_tokenizer_is_refused(tmp_path, data):
    folder = _save_model(tmp_path / "no_tok", _config("bert"))
    assert "no tokenizer" in _refusal(data, folder) and "tokenizer.save_pretrained(folder)" in _refusal(data, folder)


def test_a_folder_without_config_is_refused(tmp_path, data, tokenizer):
    folder = tmp_path / "no_config"
    tokenizer.save_pretrained(folder)
    assert "no config.json" in _refusal(data, folder) and "model.save_pretrained(folder)" in _refusal(data, folder)


def test_a_missing_folder_is_refused(tmp_path, data):
    assert "no such folder" in _refusal(data, tmp_path / "nowhere")


def test_an_architecture_whose_maps_clbench_cannot_read_is_refused(tmp_path, data, tokenizer):
    from transformers import MPNetConfig

    folder = _save_model(tmp_path / "mpnet", MPNetConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                                                         num_attention_heads=2, intermediate_size=32), tokenizer)
    message = _refusal(data, folder)
    assert "cannot read its per-block hidden states and attention maps" in message
    assert "choose another checkpoint" in message


def test_options_the_architecture_lacks_are_refused(data, folders):
    assert "a distilbert model, which has no pooler" in _refusal(data, folders["distilbert"], pooling="pooler")
    assert "frozen_layers = 3 must be in -1..2" in _refusal(data, folders["bert"], frozen_layers=3)


def test_a_literature_protocol_tokenizes_with_the_encoders_own_tokenizer(folders):
    """The literature's named scenarios (text_protocols.py) take hf_encoder's folder as their tokenizer."""
    doc = {"suite": {"seeds": [0], "strategies": ["naive"], "device": "cpu"},
           "scenarios": {"banking77_lor_class_il": {"model": {"name": "hf_encoder", "path": str(folders["bert"])}}}}
    (spec,) = expand(doc, name="t", where="suite.toml")
    assert spec.scenario_params["tokenizer"] == str(folders["bert"].resolve())
    from benchmarks.scenarios.text_protocols import TextProtocolParams, protocols, split_text_params

    params = split_text_params(protocols()["banking77_lor"], TextProtocolParams(**spec.scenario_params))
    assert params.tokenizer == spec.scenario_params["tokenizer"] and params.dataset == "banking77"
