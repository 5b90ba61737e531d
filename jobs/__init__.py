"""Thin job entrypoints (args -> config -> pipeline), runnable as ``python -m jobs.<name>``.

Each job can be submitted with ``ray job submit``; configs live in ``jobs/configs/*.yaml``. ``jobs.cli`` is the
``genprop`` command, which runs these jobs as its stage subcommands. Imports point one way:
``jobs/`` -> ``pipelines/`` -> ``genprop/`` (``tests/test_layers.py``).
"""
