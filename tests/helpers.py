"""Test helpers: tiny run specs on the synthetic stream (no data files, CPU, fast)."""

from __future__ import annotations

from benchmarks.config.loader import expand


def tiny_doc(strategies, scenario="synthetic_class_il", seeds=(0,), **scenario_params):
    """A suite document with one synthetic scenario; strategies and params as given."""
    return {
        "suite": {"seeds": list(seeds), "strategies": list(strategies), "device": "cpu"},
        "train": {"epochs": 1, "batch_size": 16, "eval_batch_size": 64},
        "scenarios": {scenario: dict(scenario_params)},
    }


def tiny_specs(strategies, scenario="synthetic_class_il", seeds=(0,), **scenario_params):
    """Expanded run specs for ``tiny_doc``."""
    return expand(tiny_doc(strategies, scenario, seeds, **scenario_params), name="tiny", where="test")


def tiny_minilm(frozen_layers: int = 1):
    """A 2-block, D = 32 BERT (random weights) as clbench's MiniLM backbone, 4 classes in 2 experiences;
    ``frozen_layers = 1``: block 0 frozen (prefix-cached), block 1 fine-tuned."""
    import torch
    from transformers import BertConfig, BertModel

    from benchmarks.core import ScenarioInfo
    from benchmarks.models.minilm import MiniLM, MiniLMParams

    torch.manual_seed(0)
    bert = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                intermediate_size=64, attn_implementation="eager"), add_pooling_layer=False)
    info = ScenarioInfo(name="tiny", family="split_text", setting="class_il", n_experiences=2, n_outputs=4,
                        input_shape=(2, 6), modality="text", classes_per_experience=((0, 1), (2, 3)), sample_bytes=96)
    return MiniLM(bert, MiniLMParams(frozen_layers=frozen_layers), info)
