"""Execution-labelled pairs (Code-Optimise, arXiv 2406.12502): problems with tests, sampled
solutions, a sandbox that runs them, runtime measurement, pairs and pass@k."""
