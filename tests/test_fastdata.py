"""The fast data path: materialisation, cache, loader semantics vs Avalanche's, every strategy's path."""

from __future__ import annotations

import gc
import pickle

import pytest
import torch

from benchmarks.fastpath import batches as fastdata
from benchmarks.fastpath import template
from benchmarks.fastpath.batches import GroupBatches, NotMaterializable, TensorBatches, TensorItems, materialize
from benchmarks.fastpath.gather import _read_with_loader, _walk, gather_items
from benchmarks.fastpath.replay import replay_batches
from benchmarks.scenarios import SCENARIOS, build_scenario


def _scenario(setting: str = "class_il", **params):
    name = f"synthetic_{setting}"
    defaults = {"n_classes": 4, "n_experiences": 2, "train_per_class": 12, "test_per_class": 5}
    return build_scenario(name, SCENARIOS.get(name).params(**{**defaults, **params}), seed=0)


def _same(a, b) -> bool:
    return len(a) == len(b) and all(x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("setting", ["class_il", "task_il", "domain_il"])
def test_gather_equals_per_sample_reads(setting):
    from avalanche.benchmarks.utils import concat_datasets

    bench = _scenario(setting).benchmark
    datasets = [e.dataset for e in bench.train_stream] + [e.dataset.eval() for e in bench.test_stream]
    whole = concat_datasets([e.dataset.train() for e in bench.train_stream])
    datasets += [whole, whole.subset(torch.randperm(len(whole))[:17])]
    for ds in datasets:
        assert _walk(ds, torch.arange(len(ds))) is not None  # read structurally, not by the loader fallback
        assert _same(gather_items(ds), _read_with_loader(ds))


def test_lazy_gather_reads_inputs_without_a_copy():
    from avalanche.benchmarks.utils import concat_datasets

    from benchmarks.fastpath.gather import Rows, dense

    bench = _scenario().benchmark
    for ds in (bench.train_stream[1].dataset.train(),
               concat_datasets([e.dataset.train() for e in bench.train_stream])):  # cumulative: one base
        lazy = gather_items(ds, lazy=True)
        assert isinstance(lazy[0], Rows) and lazy[0].shape == (len(ds), 1, 28, 28)
        assert _same([dense(f) for f in lazy], gather_items(ds))
        idx = torch.tensor([3, 0, 7])
        assert torch.equal(lazy[0][idx], gather_items(ds)[0][idx])
    on_cpu = materialize(ds, torch.device("cpu"), lazy=True)
    loader = fastdata.train_batches(on_cpu, batch_size=5)
    assert sorted(torch.cat([b[1] for b in loader]).tolist()) == sorted(gather_items(ds)[1].tolist())


def test_gather_reads_appended_attributes_like_ders_logits():
    from avalanche.benchmarks.utils import make_avalanche_dataset
    from avalanche.benchmarks.utils.data_attribute import TensorDataAttribute
    from avalanche.benchmarks.utils.flat_data import FlatData

    ds = _scenario().benchmark.train_stream[1].dataset
    logits = [torch.randn(4) for _ in range(len(ds))]
    attr = TensorDataAttribute(FlatData([logits], discard_elements_not_in_indices=True), name="logits",
                               use_in_getitem=True)
    with_logits = make_avalanche_dataset(ds, data_attributes=[attr]).subset([3, 0, 5])
    got = gather_items(with_logits)
    assert len(got) == 4 and torch.equal(got[3], torch.stack([logits[3], logits[0], logits[5]]))
    assert _same(got, _read_with_loader(with_logits))


def test_transformed_items_are_read_with_the_transform():
    ds = _scenario().benchmark.train_stream[0].dataset
    doubled = ds.replace_current_transform_group(lambda x: x * 2)
    assert torch.equal(gather_items(doubled)[0], 2 * gather_items(ds)[0])


def test_random_transforms_are_not_materialised():
    ds = _scenario().benchmark.train_stream[0].dataset
    noisy = ds.replace_current_transform_group(lambda x: x + torch.randn_like(x))
    with pytest.raises(NotMaterializable, match="random"):
        gather_items(noisy)


def test_cache_entries_die_with_their_owner_and_check_the_view():
    bench = _scenario().benchmark
    exp0, exp1 = bench.test_stream[0].dataset, bench.test_stream[1].dataset
    a = materialize(exp0.eval(), torch.device("cpu"), owner=exp0, tag="eval")
    assert materialize(exp0.eval(), torch.device("cpu"), owner=exp0, tag="eval") is a  # fresh view, same items
    # a different dataset under the same owner/tag is re-read, never served from the cache
    assert _same(materialize(exp1.eval(), torch.device("cpu"), owner=exp0, tag="eval"), gather_items(exp1.eval()))
    gc.collect()  # entries of earlier tests' garbage cycles must not die inside the count below
    n = fastdata.cache_size()
    view = exp1.train()
    materialize(view, torch.device("cpu"))
    assert fastdata.cache_size() == n + 1
    del view
    gc.collect()
    assert fastdata.cache_size() == n


def test_a_finished_run_leaves_no_cache_entries():
    from helpers import tiny_specs

    from benchmarks.engine.runner import run_one

    gc.collect()
    before = fastdata.cache_size()
    for spec in tiny_specs(["replay", "ewc"], hparams={"replay": {"mem_size": 20}}):
        assert run_one(spec)["status"] == "ok"
    gc.collect()
    assert fastdata.cache_size() == before


def test_tensor_batches_cover_every_sample_once():
    x = torch.arange(10).float()
    loader = TensorBatches((x, x.long(), torch.zeros(10, dtype=torch.long)), batch_size=4, shuffle=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 3 and [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[0] for b in batches]).tolist()) == x.tolist()
    assert all(isinstance(b, list) and torch.equal(b[0].long(), b[1]) for b in batches)
    ordered = list(TensorBatches((x,), batch_size=4, shuffle=False))
    assert torch.equal(torch.cat([b[0] for b in ordered]), x)


def _sizes_and_tasks(loader):
    return [(len(b[0]), tuple(torch.bincount(b[2], minlength=2).tolist())) for b in loader]


def test_task_balanced_batches_match_avalanche():
    from avalanche.benchmarks.utils import concat_datasets
    from avalanche.benchmarks.utils.data_loader import TaskBalancedDataLoader

    bench = _scenario("task_il", train_per_class=10).benchmark
    exps = list(bench.train_stream)
    both = concat_datasets([exps[0].dataset.train(), exps[1].dataset.train().subset(range(7))])  # 20 + 7
    ours = fastdata.train_batches(materialize(both, torch.device("cpu")), batch_size=6)
    theirs = TaskBalancedDataLoader(both, oversample_small_groups=True, batch_size=6, shuffle=True)
    assert isinstance(ours, GroupBatches) and len(ours) == len(theirs)
    assert _sizes_and_tasks(ours) == _sizes_and_tasks(theirs)


def test_replay_batches_match_replay_data_loader():
    from avalanche.benchmarks.utils.data_loader import ReplayDataLoader

    bench = _scenario(train_per_class=13).benchmark
    data = bench.train_stream[1].dataset.train()  # 26 samples
    memory = bench.train_stream[0].dataset.train().subset(range(9))
    theirs = ReplayDataLoader(data, memory, oversample_small_tasks=True, batch_size=8, batch_size_mem=4,
                              shuffle=True)
    ours = replay_batches(materialize(data, torch.device("cpu")), materialize(memory, torch.device("cpu")), 8, 4)
    assert len(ours) == len(theirs) == 4
    sizes = [len(b[0]) for b in ours]
    # current 8,8,8,2 (one pass); memory 4,4,1 (a pass of 9, short last chunk) then a new pass: 4
    assert sizes == [len(b[0]) for b in theirs] == [12, 12, 9, 6]
    batches = list(ours)
    current = torch.cat([b[1][: len(b[1]) - m] for b, m in zip(batches, [4, 4, 1, 4])])
    assert sorted(current.tolist()) == sorted(gather_items(data)[1].tolist())  # each current sample once
    assert all(set(b[1][len(b[1]) - m:].tolist()) <= {0, 1} for b, m in zip(batches, [4, 4, 1, 4]))  # memory last


def test_agem_memory_stream_equals_avalanche_batches():
    from avalanche.benchmarks.utils.data_loader import GroupBalancedInfiniteDataLoader

    from benchmarks.fastpath.replay import _group_forever

    bench = _scenario().benchmark
    buffers = [e.dataset.subset(range(5)) for e in bench.train_stream]
    theirs = iter(GroupBalancedInfiniteDataLoader(buffers, batch_size=3))
    ours = _group_forever([materialize(b, torch.device("cpu")) for b in buffers], 3)
    for _ in range(5):
        assert _same(next(ours), list(next(theirs)))


def test_ewc_importances_are_the_same_from_tensors():
    from avalanche.training.plugins import EWCPlugin

    from benchmarks.models import MODELS, build_model

    sc = _scenario()
    torch.manual_seed(0)
    model = build_model("mlp", MODELS.get("mlp").params(hidden=8, layers=1), sc.info)
    ds = sc.benchmark.train_stream[0].dataset
    args = (model, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1))
    plugin = EWCPlugin(ewc_lambda=1.0)
    slow = plugin.compute_importances(*args, ds, "cpu", 5)
    fast = plugin.compute_importances(*args, TensorItems(materialize(ds, torch.device("cpu"))), "cpu", 5)
    for (name, a), (_, b) in zip(slow.items(), fast.items()):
        assert torch.allclose(a.data, b.data, atol=1e-7), name


def test_templates_with_their_own_loader_are_left_alone():
    from avalanche.training import Naive

    class OwnLoader(Naive):
        def make_train_dataloader(self, **kwargs):
            return super().make_train_dataloader(**kwargs)

    assert template.fast_template(OwnLoader) is OwnLoader
    fast = template.fast_template(Naive)
    assert fast.__mro__[1] is template.FastDataMixin and template.fast_template(Naive) is fast
    assert pickle.loads(pickle.dumps(fast)) is fast  # importable by name


# -- every registered strategy: which path it takes (the table in benchmarks/fastpath/template.py) ------------

SMALL = {"replay": {"mem_size": 20}, "replay+attn_reg": {"mem_size": 20}, "gdumb": {"mem_size": 20}, "icarl": {"memory_size": 20},
         "der": {"mem_size": 20}, "gem": {"patterns_per_exp": 10}, "agem": {"patterns_per_exp": 10, "sample_size": 8},
         "bic": {"mem_size": 40, "stage_2_epochs": 2},
         "er_aml": {"mem_size": 80, "batch_size_mem": 4},  # per-class buffers >= batch 16 (pos/neg loaders)
         "ranpac": {"M": 300}, "klda": {"D": 300}}  # random feature widths: 5000 by default
#: what reads tensors besides the main loaders, once a memory exists (second experience)
MEMORY = {"replay": "ReplayPlugin replay batches", "replay+attn_reg": "ReplayPlugin replay batches",
          "replay_herding": "ReplayPlugin replay batches", "replay_centroid": "ReplayPlugin replay batches",
          "bic": "BiCPlugin replay batches", "der": "DER replay_loader",
          "er_aml": "ER_AML replay_loader", "agem": "AGEMPlugin memory batches",
          "ewc_avalanche": "EWCPlugin dataset pass",
          "online_ewc_avalanche": "EWCPlugin dataset pass", "gem": "GEMPlugin dataset pass"}
TRAIN = {"replay": "tensor-replay", "replay+attn_reg": "tensor-replay", "bic": "tensor-replay",
         "replay_herding": "tensor-replay", "replay_centroid": "tensor-replay"}


def test_every_registered_strategy_is_in_the_path_table():
    from strategies import STRATEGIES

    missing = [name for name in STRATEGIES if name not in template.__doc__]
    assert not missing, f"add these strategies to the table in benchmarks/fastpath/template.py: {missing}"


def _registered():
    from strategies import STRATEGIES

    for name in STRATEGIES:
        settings = STRATEGIES.get(name).meta["settings"]
        yield pytest.param(name, "class_il" if "class_il" in settings else settings[0], id=name)


CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run on a GPU machine)")


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=CUDA)])
@pytest.mark.parametrize("name,setting", list(_registered()))
def test_every_registered_strategy_trains_and_evaluates_on_tensors(name, setting, device):
    from helpers import tiny_specs

    from benchmarks.engine.runner import _build
    from benchmarks.models import MODELS
    from strategies import STRATEGIES

    meta = STRATEGIES.get(name).meta
    if meta["needs_transformer"] and "vit" not in MODELS:
        pytest.skip("needs a Transformer model")
    model = "vit" if meta["needs_transformer"] else "mlp"
    (spec,) = tiny_specs([name], scenario=f"synthetic_{setting}", model={"name": model},
                         hparams={name: SMALL.get(name, {})})
    scenario, strategy = _build(spec, torch.device(device))
    for exp in scenario.benchmark.train_stream:
        strategy.train(exp)
    first = strategy.eval(scenario.benchmark.test_stream)
    again = strategy.eval(scenario.benchmark.test_stream)  # served from the device cache, checked on the CPU
    key = next(k for k in first if k.startswith("Top1_Acc_Exp/"))
    assert first[key] == again[key]
    assert strategy.data_path["train"] == TRAIN.get(name, "tensor")
    assert strategy.data_path["eval"] == "tensor"
    assert strategy.data_path["memory"] == MEMORY.get(name, "none")


def test_converted_index_lists_are_memoised_and_refreshed_on_growth():
    from benchmarks.fastpath import gather as tensor_gather

    seq = list(range(10))
    first = tensor_gather._converted(seq, torch.long)
    assert tensor_gather._converted(seq, torch.long) is first  # second read: no conversion
    seq.append(10)  # grown: converted again
    again = tensor_gather._converted(seq, torch.long)
    assert again is not first and again.tolist() == list(range(11))
    for k in range(tensor_gather._CONVERTED_MAX + 5):  # bounded
        tensor_gather._converted(list(range(k + 1)))
    assert len(tensor_gather._CONVERTED) <= tensor_gather._CONVERTED_MAX
