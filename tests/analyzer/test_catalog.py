"""The metric catalog: every figure and column declared once, and every output reading it."""

from __future__ import annotations

import string

import pytest

from efftrace.analyzer.compute.catalog import (
    CARDS,
    CATALOG,
    COMPARED,
    ENTRIES,
    SEED_FIGURES,
    WINDOW_FIGURES,
    where,
)
from efftrace.analyzer.compute.metrics import analyze
from efftrace.analyzer.present import console, tensorboard_events
from efftrace.analyzer.read.loader import open_run
from helpers.runs import ROOT

SEED_TAGS = {
    "amu_gib": "efficientllm/amu_gb",
    "pcu_ratio": "efficientllm/pcu_ratio",
    "al_seconds": "efficientllm/al_seconds",
    "tt_tokens_per_param_per_sec": "efficientllm/tt_tokens_per_param_per_sec",
    "st_samples_per_param_per_sec": "efficientllm/st_samples_per_param_per_sec",
    "aec_watts": "efficientllm/aec_watts",
}
"""The seed's TensorBoard tags (seed 000), which users' dashboards already plot."""


def test_every_key_is_declared_once_and_every_reference_resolves():
    assert len({entry.key for entry in ENTRIES}) == len(ENTRIES)
    referenced = set(SEED_FIGURES) | set(CARDS) | {key for keys in WINDOW_FIGURES.values() for key in keys}
    referenced |= {key for _, key in COMPARED} | {entry.of for entry in ENTRIES if entry.of}
    assert referenced <= set(CATALOG), referenced - set(CATALOG)
    assert {window for window, _ in COMPARED} <= set(WINDOW_FIGURES)


def test_the_seed_block_is_the_seeds_seven_in_its_order_with_its_tags():
    assert SEED_FIGURES == ("loss", "amu_gib", "pcu_ratio", "al_seconds", "tt_tokens_per_param_per_sec",
                            "st_samples_per_param_per_sec", "aec_watts")  # fmt: skip
    assert WINDOW_FIGURES["train"][: len(SEED_FIGURES)] == SEED_FIGURES
    for key, tag in SEED_TAGS.items():
        assert CATALOG[key].tensorboard == tag
    tags = [entry.tensorboard for entry in ENTRIES if entry.tensorboard]
    assert len(tags) == len(set(tags)), "one TensorBoard tag per figure"
    assert all(tag.startswith("efficientllm/") for tag in tags)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.key)
def test_each_entry_is_complete(entry):
    assert entry.label and entry.unit is not None
    placeholders = {name for _, name, _, _ in string.Formatter().parse(entry.source) if name}
    assert all(name.isidentifier() for name in placeholders)
    if entry.gpus is None:
        assert entry.of is None, "only a per-GPU quantity combines another column"
    if entry.tensorboard:
        assert entry.windows_column, "TensorBoard points are one per log window"
    if entry.gpu_table:
        assert entry.per_gpu_column


def test_outputs_show_exactly_what_the_catalog_says():
    result = analyze(open_run(ROOT / "sample_traces" / "h100-lora-sft" / "trace"))
    for window, keys in WINDOW_FIGURES.items():
        if window in result.summaries:
            assert tuple(result.summaries[window].figures) == keys
            for key, figure in result.summaries[window].figures.items():
                assert (figure.label, figure.unit) == (CATALOG[key].label, CATALOG[key].unit)
                assert "{" not in figure.source, f"{key}: an unfilled source template"
    assert [name for name in result.windows.column_names if name in CATALOG] == [
        entry.key for entry in where("windows_column")
    ]
    assert [name for name in result.per_gpu.column_names if name in CATALOG] == [
        entry.key for entry in where("per_gpu_column")
    ]
    tags = {tag for tag, *_ in tensorboard_events._points(result)}
    assert {CATALOG[key].tensorboard for key in SEED_TAGS} <= tags
    text = console.render(result)
    for entry in where("gpu_table"):
        assert entry.gpu_table and entry.gpu_table[0] in text
