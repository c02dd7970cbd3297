"""Evaluation data: eval runs and their per-task results."""
