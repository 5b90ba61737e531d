"""The task vocabulary: which task embedding a training pair or a propagation run uses, and its names.

A task's value is its row of the task embedding (``genprop.models.task_embedding``), so the values are part of
every checkpoint and never change. Each task has up to three names, one per place it is spelt:

    ============ ===== ====================== ==================== =====================================
    task         id    augmentation           propagation          benchmark case tasks
    ============ ===== ====================== ==================== =====================================
    DEFAULT      0     (none)                 ``edit``, ``auto``   ``replace``, ``background``
    COPY_PASTE   1     ``copy_paste``         ``insert``           ``insert``
    MASK_FILL    2     ``mask_fill``          ``remove``           ``remove``
    COLOUR_FILL  3     ``colour_fill``        ``track``            ``track``
    ============ ===== ====================== ==================== =====================================

The augmentation name is what shard plans, sample keys and ``meta.json`` record (training reads the id from
``task.cls``, never the name). The propagation name is ``genprop propagate --task`` and a batch manifest's
``task`` column; "auto" means the default. The case tasks are those of the procedural world's benchmark
(``genprop.datasets.procedural.TASKS``): a first-frame edit without an augmentation of its own (replacing an
object, swapping the background) propagates with the default task.

Plain data only (no torch), so the synth and shard code can use it without the model's imports.
"""

from __future__ import annotations

import enum


class Task(enum.IntEnum):
    """A task embedding id: 0 default (trained by dropping ids), 1 copy-and-paste, 2 mask-and-fill, 3 colour fill."""

    DEFAULT = 0
    COPY_PASTE = 1
    MASK_FILL = 2
    COLOUR_FILL = 3

    @property
    def augmentation(self) -> str | None:
        """The synthetic augmentation's name (``copy_paste``, ``mask_fill``, ``colour_fill``); None for DEFAULT."""
        return _AUGMENTATION.get(self)

    @property
    def cli_name(self) -> str:
        """The propagation name (``edit``, ``insert``, ``remove``, ``track``)."""
        return _CLI[self]

    @classmethod
    def from_augmentation(cls, name: str) -> "Task":
        """The task an augmentation name stands for.

        Args:
            name (str): one of :data:`AUGMENTATION_NAMES`.

        Raises:
            ValueError: an unknown name (the message lists the known ones).
        """
        return _lookup(_BY_AUGMENTATION, name, "augmentation")

    @classmethod
    def from_cli(cls, name: str) -> "Task":
        """The task a propagation name stands for ("auto" and "edit" are the default).

        Args:
            name (str): one of :data:`CLI_NAMES`.

        Raises:
            ValueError: an unknown name (the message lists the known ones).
        """
        return _lookup(_BY_CLI, name, "task")

    @classmethod
    def for_case(cls, case_task: str) -> "Task":
        """The task a benchmark case is propagated with: DEFAULT for an edit without an augmentation of its own.

        Args:
            case_task (str): the ``task`` of a benchmark case (``genprop.datasets.procedural.TASKS``).
        """
        return _BY_CASE.get(case_task, cls.DEFAULT)


_AUGMENTATION = {Task.COPY_PASTE: "copy_paste", Task.MASK_FILL: "mask_fill", Task.COLOUR_FILL: "colour_fill"}
_CLI = {Task.DEFAULT: "edit", Task.COPY_PASTE: "insert", Task.MASK_FILL: "remove", Task.COLOUR_FILL: "track"}
_BY_AUGMENTATION = {name: task for task, name in _AUGMENTATION.items()}
_BY_CLI = {"auto": Task.DEFAULT, **{name: task for task, name in _CLI.items()}}
_BY_CASE = {"insert": Task.COPY_PASTE, "remove": Task.MASK_FILL, "track": Task.COLOUR_FILL}

# The tasks a synthetic augmentation makes, in id order: the order of ``SynthConfig.ratios``.
AUGMENTATION_TASKS = tuple(_AUGMENTATION)
AUGMENTATION_NAMES = tuple(_AUGMENTATION.values())
# ``--task`` choices, sorted.
CLI_NAMES = tuple(sorted(_BY_CLI))


def _lookup(table: dict[str, Task], name: str, what: str) -> Task:
    try:
        return table[name]
    except (KeyError, TypeError):  # TypeError: an unhashable value read from a manifest or plan
        raise ValueError(f"unknown {what} {name!r}; expected one of {sorted(table)}") from None
