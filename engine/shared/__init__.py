"""Shared infrastructure that learner code may import: data loaders, the metrics writer, perf helpers.

Everything else under engine/ is a reference solution, which learner code may never import.
This is the one rule the grader's import guard enforces (docs/architecture.md).
"""
