"""Jobs, shared by the TUI and the CLI: the registry of kinds, one runner per kind, the one lifecycle
(runner.py) and the worker that runs queued jobs (worker.py). No UI imports."""
