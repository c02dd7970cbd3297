"""Shared test data."""

HOSTILE_TEXT = "a[/b] [bold]x[/bold] [@click=app.quit]q[/] arr[0]"
