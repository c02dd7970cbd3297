"""Model code (torch, transformers): judges, trainer, merging. Imported only where torch is installed."""
