"""The task vocabulary: ids, augmentation names, propagation names and benchmark case tasks agree."""

from __future__ import annotations

import pytest

from genprop.datasets.procedural import TASKS as CASE_TASKS
from genprop.tasks import AUGMENTATION_NAMES, AUGMENTATION_TASKS, CLI_NAMES, Task


def test_ids_are_the_task_embedding_rows():
    assert [(t.name, int(t)) for t in Task] == [("DEFAULT", 0), ("COPY_PASTE", 1), ("MASK_FILL", 2),
                                                ("COLOUR_FILL", 3)]
    from genprop.models.task_embedding import TaskEmbedding

    assert TaskEmbedding(4).embedding.num_embeddings == len(Task)


def test_augmentation_names_round_trip():
    assert AUGMENTATION_NAMES == ("copy_paste", "mask_fill", "colour_fill")
    assert AUGMENTATION_TASKS == (Task.COPY_PASTE, Task.MASK_FILL, Task.COLOUR_FILL)  # SynthConfig.ratios order
    for task in AUGMENTATION_TASKS:
        assert Task.from_augmentation(task.augmentation) is task
        assert Task(int(task)).augmentation == task.augmentation
    assert Task.DEFAULT.augmentation is None  # no augmentation makes default pairs


def test_cli_names_round_trip():
    assert CLI_NAMES == ("auto", "edit", "insert", "remove", "track")
    assert [int(Task.from_cli(n)) for n in CLI_NAMES] == [0, 0, 1, 2, 3]
    for task in Task:
        assert Task.from_cli(task.cli_name) is task
        assert Task(int(task)).cli_name == task.cli_name
    assert {t.augmentation: t.cli_name for t in AUGMENTATION_TASKS} == {
        "copy_paste": "insert", "mask_fill": "remove", "colour_fill": "track"}


@pytest.mark.parametrize("lookup, name", [(Task.from_cli, "paint"), (Task.from_cli, "colour_fill"),
                                          (Task.from_augmentation, "color_fill"),
                                          (Task.from_augmentation, "insert"), (Task.from_augmentation, None)])
def test_an_unknown_name_errors_listing_the_known_ones(lookup, name):
    with pytest.raises(ValueError, match=f"unknown .*{name!r}.*expected one of") as e:
        lookup(name)
    known = CLI_NAMES if lookup == Task.from_cli else AUGMENTATION_NAMES
    assert all(repr(n) in str(e.value) for n in known)


def test_every_benchmark_case_task_propagates_with_a_task():
    assert {c: Task.for_case(c) for c in CASE_TASKS} == {
        "remove": Task.MASK_FILL, "replace": Task.DEFAULT, "insert": Task.COPY_PASTE,
        "background": Task.DEFAULT, "track": Task.COLOUR_FILL}
