"""Training: export formats, recipes, the trainer, merging and checkpoint verification."""
