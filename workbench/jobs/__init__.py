"""Job runners shared by the TUI and the CLI: each joins a core generator to store writes. No UI imports."""
