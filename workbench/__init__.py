"""Front ends of the CodeFavor workbench: the Textual app and the Typer CLI."""
