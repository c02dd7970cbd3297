"""Curation: parse checks, radon metrics, bandit findings, comment stripping, dedupe, decontamination, rules."""
