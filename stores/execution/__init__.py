"""Execution data: problems, sampled solutions with verdicts and runtimes, pair lineage, policy evaluations."""
