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
    model = MiniLM(bert, MiniLMParams(frozen_layers=frozen_layers), info)
    model.tiny_info = info  # for tiny_context
    return model


def tiny_text_stream(n_per_class: int = 8, setting: str = "class_il"):
    """An Avalanche benchmark of random token-id inputs (B, 2, 6) for ``tiny_minilm``'s vocabulary: 4 classes
    in 2 experiences, each class marked by its own token in position 1 (learnable in a few steps)."""
    import torch
    from avalanche.benchmarks import nc_benchmark

    from benchmarks.data.tensors import LabelledTensorDataset

    def make(seed: int):
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(4).repeat_interleave(n_per_class)
        ids = torch.randint(5, 50, (len(y), 6), generator=g)
        ids[:, 1] = y + 1  # the class token
        return LabelledTensorDataset(torch.stack([ids, torch.ones_like(ids)], dim=1), y)

    return nc_benchmark(make(0), make(1), n_experiences=2, task_labels=setting == "task_il", shuffle=False,
                        seed=0, fixed_class_order=[0, 1, 2, 3])


def tiny_context(model, setting: str = "class_il", **train):
    """A StrategyContext for ``model`` on ``tiny_text_stream`` (CPU, batch 8, one epoch)."""
    import dataclasses

    import torch

    from benchmarks.engine.evaluation import make_evaluator
    from strategies import StrategyContext, TrainConfig

    info = dataclasses.replace(model_info(model), setting=setting)
    return StrategyContext(model=model, info=info, device=torch.device("cpu"), evaluator=make_evaluator(),
                           train=TrainConfig(**{"epochs": 1, "batch_size": 8, "eval_batch_size": 16, **train}))


def model_info(model):
    """The ScenarioInfo ``tiny_minilm`` was built with (kept on the model by the helper)."""
    return model.tiny_info
