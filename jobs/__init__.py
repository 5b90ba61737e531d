"""Thin job entrypoints (args -> config -> pipeline), runnable as ``python -m jobs.<name>``.

Each job can be submitted with ``ray job submit``; configs live in ``jobs/configs/*.yaml``.
"""
