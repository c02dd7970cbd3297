"""StageScreen: what every stage screen shares: focus that starts and ends on its list, and the store."""

from __future__ import annotations

from typing import Any, ClassVar

from textual import on
from textual.binding import Binding
from textual.events import ScreenResume, ScreenSuspend
from textual.screen import Screen
from textual.timer import Timer, TimerCallback
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

    def set_interval(self, interval: float, callback: TimerCallback | None = None, *, name: str | None = None,
                     repeat: int = 0, pause: bool = False) -> Timer:
        timer = super().set_interval(interval, callback, name=name, repeat=repeat, pause=pause)
        if name is None:  # the stage's own polls (Textual names the timers it makes itself)
            self._polls = [*getattr(self, "_polls", []), timer]
        return timer

    def check_store_if_written(self) -> None:
        """For a poll timer: call the screen's `check_store` (a worker reading its stamp) only when a
        commit reached the store since the last poll, which costs microseconds instead of a query."""
        version = self.app.store_version()  # type: ignore[attr-defined]
        if version is None or version != getattr(self, "_polled_version", None):
            self._polled_version = version
            self.check_store()  # type: ignore[attr-defined]

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
        if not self._under_dialog:
            # Out of sight, the screen's polls wait; a poll that came due meanwhile runs on return. Its
            # widgets' timers (which follow started jobs and report how they end) keep running.
            for timer in getattr(self, "_polls", []):
                timer.pause()

    @on(ScreenResume)
    def _focus_list_on_return(self) -> None:
        for timer in getattr(self, "_polls", []):
            timer.resume()
        if not getattr(self, "_under_dialog", False) or self.focused is None or isinstance(self.focused, Input):
            self.action_navigate()
