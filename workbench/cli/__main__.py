"""`python -m workbench.cli` runs the same command as the `workbench` script."""

from workbench.cli import main

main()
