"""Training data: exports, training runs, metrics and checkpoints."""
