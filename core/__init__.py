"""Domain logic of the CodeFavor workbench: no UI, no SQL."""
