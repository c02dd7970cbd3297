"""Evaluation: CodePrefBench loading, prompt protocols, judges and scoring."""
