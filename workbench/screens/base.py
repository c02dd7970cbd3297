"""StageScreen: what every stage screen shares: focus that starts and ends on its list, and the store."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.binding import Binding
from textual.events import ScreenResume, ScreenSuspend
from textual.screen import Screen
from textual.widgets import Input


class StageScreen(Screen[None]):
    """A stage screen: it opens with focus on its main list (`MAIN`), never in a text field, and escape
    from any field returns there, so the global keys (d c s p t e ? q) always work after escape."""

    MAIN: ClassVar[str] = ""
    BINDINGS = [Binding("escape", "navigate", "Back to the list", show=False)]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.MAIN:
            cls.AUTO_FOCUS = cls.MAIN

    @property
    def engine(self) -> Any:
        """The app's store engine."""
        return self.app.engine  # type: ignore[attr-defined]

    def action_navigate(self) -> None:
        """Put focus back on the screen's main list."""
        if self.MAIN:
            for widget in self.query(self.MAIN):
                widget.focus()
                return

    @on(ScreenSuspend)
    def _note_why_suspended(self) -> None:
        # Still on the active stack: a dialog opened over this screen (it gives focus back itself);
        # otherwise the user switched to another screen.
        self._under_dialog = self in self.app.screen_stack

    @on(ScreenResume)
    def _focus_list_on_return(self) -> None:
        if not getattr(self, "_under_dialog", False) or self.focused is None or isinstance(self.focused, Input):
            self.action_navigate()
