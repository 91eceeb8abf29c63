"""Search spaces: identities, enumeration, sampling, analytic costs == measured network."""

from __future__ import annotations

import itertools

import pytest

from nasfilter.errors import InvalidArchitectureError, SampleSizeError, UnknownSpaceError
from nasfilter.spaces import DATASETS, get_space, list_spaces

TSS_EXAMPLE = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"
)


def test_registry_lists_the_built_in_spaces() -> None:
    names = [s.name for s in list_spaces()]
    assert {"nats-sss", "nats-tss", "nb101"} <= set(names) and names == sorted(names)
    assert get_space("nats-tss").size == 15_625
    assert get_space("nats-sss").size == 32_768
    assert get_space("nb101").size == 423_624


def test_unknown_space_lists_choices() -> None:
    with pytest.raises(UnknownSpaceError, match="nats-sss, nats-tss, nb101"):
        get_space("nas-bench-999")


@pytest.mark.parametrize(
    ("space", "arch", "params"),
    [
        ("nats-tss", TSS_EXAMPLE, 802_426),
        ("nats-sss", "8:8:8:8:8", 11_714),
        ("nats-sss", "64:64:64:64:64", 713_674),
    ],
)
def test_published_parameter_counts(space: str, arch: str, params: int) -> None:
    sp = get_space(space)
    assert sp.costs(arch).params == params
    model = sp.build(arch, 10)
    assert sum(p.numel() for p in model.parameters()) == params


@pytest.mark.parametrize("space", ["nats-tss", "nats-sss"])
def test_rank_unrank_round_trip_and_enumeration_is_a_bijection(space: str) -> None:
    sp = get_space(space)
    seen = set()
    for i, arch in enumerate(sp.enumerate()):
        assert sp.rank(arch) == i
        assert sp.canonical(arch) == arch
        seen.add(arch)
    assert len(seen) == sp.size
    with pytest.raises(IndexError):
        sp.unrank(sp.size)


@pytest.mark.parametrize("space", ["nats-tss", "nats-sss"])
def test_sampling_is_seeded_distinct_and_bounded(space: str) -> None:
    sp = get_space(space)
    a = list(sp.sample(500, seed=7))
    b = list(sp.sample(500, seed=7))
    c = list(sp.sample(500, seed=8))
    assert a == b
    assert a != c
    assert len(set(a)) == 500
    assert sorted(sp.sample_indices(sp.size, 3).tolist()) == list(range(sp.size))
    with pytest.raises(SampleSizeError, match=f"{sp.size:,}"):
        sp.sample_indices(sp.size + 1, 0)
    with pytest.raises(SampleSizeError):
        sp.sample_indices(0, 0)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "|nor_conv_3x3~0|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|+|none~0|none~1|none~2|",
        "none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ],
)
def test_malformed_tss_cells_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArchitectureError, match="Malformed TSS cell"):
        get_space("nats-tss").parse(bad)


@pytest.mark.parametrize("bad", ["8:8:8:8", "8:8:8:8:9", "8:8:x:8:8", "72:8:8:8:8", ""])
def test_malformed_sss_widths_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArchitectureError, match="SSS"):
        get_space("nats-sss").parse(bad)


def _measured(space: str, arch: str, dataset: str):  # type: ignore[no-untyped-def]
    import torch

    from nasfilter.metrics.probe import ModelProbe

    ds = DATASETS[dataset]
    model = get_space(space).build(arch, ds.num_classes)
    x = torch.zeros(2, 3, ds.resolution, ds.resolution)
    probe = ModelProbe(model, x, bn_mode="eval")
    return probe.param_count(), probe.flops(), probe.relu_count()


@pytest.mark.parametrize(
    ("space", "n", "dataset"),
    [
        ("nats-tss", 40, "cifar10"),
        ("nats-tss", 8, "imagenet16-120"),
        ("nats-sss", 40, "cifar10"),
        ("nats-sss", 8, "cifar100"),
        ("nats-sss", 8, "imagenet16-120"),
    ],
)
def test_analytic_costs_equal_measured_network(space: str, n: int, dataset: str) -> None:
    sp = get_space(space)
    for arch in sp.sample(n, seed=2024):
        c = sp.costs(arch, DATASETS[dataset])
        assert (c.params, c.flops, c.relu_count) == _measured(space, arch, dataset), arch


def test_tss_relu_count_has_seven_values_over_the_whole_space() -> None:
    sp = get_space("nats-tss")
    values = {sp.costs(a).relu_count for a in sp.enumerate()}
    # fixed part 40,960 plus 143,360 per convolution edge (0..6 of them)
    assert values == {40_960 + 143_360 * k for k in range(7)}


def test_sss_channel_mismatch_uses_factorized_reduce_without_relu() -> None:
    # 8:16:... makes the second cell's skip edge a 1x1 conv + BN whose ReLU never runs.
    sp = get_space("nats-sss")
    for arch in ["8:16:24:32:64", "64:8:56:16:48"]:
        c = sp.costs(arch)
        assert (c.params, c.flops, c.relu_count) == _measured("nats-sss", arch, "cifar10")


def test_every_ops_combination_of_one_node_parses() -> None:
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
    sp = get_space("nats-tss")
    for a, b in itertools.product(ops, ops):
        arch = f"|{a}~0|+|{b}~0|none~1|+|none~0|none~1|none~2|"
        assert sp.format(sp.parse(arch)) == arch


def test_params_equal_the_benchmark_on_every_shipped_nas_bench_201_row() -> None:
    """2,173 (cell, dataset) rows of NAS-Bench-Suite-Zero: params (millions) as the
    benchmark counted them, for 10, 100 and 120 classes; ours must match exactly."""
    import csv
    from importlib import resources

    sp = get_space("nats-tss")
    shapes = {"cifar10": "cifar10", "cifar100": "cifar100", "imagenet16-120": "imagenet16-120"}
    text = resources.files("nasfilter.sample_data").joinpath("nb201_sample.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    assert len(rows) == 2173
    for r in rows:
        ds = DATASETS[shapes[r["dataset"].lower()]]
        assert sp.costs(r["arch_str"], ds).params == round(float(r["params"]) * 1e6), r


def test_tss_edge_table_fast_path_equals_the_layer_by_layer_costs_everywhere() -> None:
    from nasfilter.spaces.nats import network_costs, parse_cell, tss_digits

    sp = get_space("nats-tss")
    for ds in DATASETS.values():
        for arch in sp.enumerate():
            assert tss_digits(arch) is not None
            assert sp.costs(arch, ds) == network_costs(sp.channels, parse_cell(arch), ds), arch
    assert tss_digits("|none~0|+|none~0|none~1|+|none~0|none~1|none~3|") is None
    assert tss_digits(" |none~0|+|none~0|none~1|+|none~0|none~1|none~2|") is None
