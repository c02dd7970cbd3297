"""Curation data: pairs, their analyses and the review log."""
