"""SynthesisScreen: start a Commit-Instruct or Critic-Evol job, watch its counters and recent conversations."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static, TextArea
from textual.worker import get_current_worker

from core.errors import WorkbenchError
from core.synthesis.driver import SynthFinished, SynthProgress
from core.synthesis.records import ConversationInfo
from core.textsafe import one_line
from stores.synthesis.runs import all_instruction_ids, list_conversations
from workbench.jobs.synthesize import SynthConfig, config_from_form, estimate_run, prepare_run, run_synthesis_job

REFRESH_SECONDS = 1.0


def counters_text(counters: dict[str, Any]) -> str:
    """The live counters as plain lines."""
    return (
        f"in flight {counters.get('in_flight', 0)}   done {counters.get('done', 0)}   "
        f"rate {counters.get('rate', 0.0):.2f} items/s\n"
        f"pairs {counters.get('pairs', 0)} (new {counters.get('new_pairs', 0)}, "
        f"duplicates {counters.get('duplicate_pairs', 0)})   filtered {counters.get('filtered', 0)}   "
        f"failed {counters.get('failed', 0)}\n"
        f"requests {counters.get('requests', 0)} (retries {counters.get('retries', 0)}, "
        f"cached {counters.get('cache_hits', 0)})\n"
        f"tokens {counters.get('tokens', 0):,}   cost ${counters.get('cost', 0.0):.4f}"
    )


def conversation_text(conversation: ConversationInfo) -> str:
    """A whole exchange as plain text for the viewer."""
    parts = [f"exchange {conversation.id} · item {conversation.item_id} · {conversation.step} · {conversation.model} "
             f"· {conversation.prompt_version}",
             f"item outcome: {conversation.item_state} {conversation.item_reason}".rstrip(), ""]
    for message in conversation.messages:
        parts += [f"--- {message['role']} ---", message["content"], ""]
    parts += [f"--- answer ({conversation.finish_reason}) ---", conversation.response]
    return "\n".join(parts)


class SynthesisScreen(Screen[None]):
    """Starts synthesis jobs and shows live counters and recent conversations with their outcome."""

    CSS_PATH = "synthesis.tcss"
    BINDINGS = [("ctrl+s", "start", "Start"), ("ctrl+x", "stop", "Stop")]

    class Progressed(Message):
        """New counters from the running job; a backlog collapses to the latest."""

        def __init__(self, counters: dict[str, Any], finished: str | None = None) -> None:
            super().__init__()
            self.counters = counters
            self.finished = finished

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SynthesisScreen.Progressed) and message.finished is None

    class ConversationsLoaded(Message):
        def __init__(self, conversations: list[ConversationInfo]) -> None:
            super().__init__()
            self.conversations = conversations

    class Notice(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self) -> None:
        super().__init__()
        self._conversations: list[ConversationInfo] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form", classes="panel"):
            with Horizontal(classes="form-row"):
                yield Select([("Commit-Instruct", "commit-instruct"), ("Critic-Evol", "critic-evol")],
                             value="commit-instruct", allow_blank=False, id="method")
                yield Input(placeholder="critic spec: openai:MODEL@http://host:port/v1", id="critic")
                yield Input(placeholder="draft spec (Critic-Evol only)", id="draft")
            with Horizontal(classes="form-row"):
                yield Input(placeholder="limit (all)", id="limit", type="integer")
                yield Input(value="16", placeholder="concurrency", id="concurrency", type="integer")
                yield Input(placeholder="budget: 50k tokens or $2", id="budget")
                yield Button("Start", id="start", variant="primary")
                yield Button("Stop", id="stop", disabled=True)
        with Horizontal(id="body"):
            with Vertical(id="left", classes="panel"):
                yield Static(Content(counters_text({})), id="counters")
                yield Static(id="status", classes="muted")
                yield DataTable(id="conversations", cursor_type="row")
            yield TextArea(id="conversation-view", read_only=True, soft_wrap=True)
        yield Footer()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#conversations", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns("id", "item", "step", "model", "outcome", "reason")
        self.refresh_conversations()
        self.set_interval(REFRESH_SECONDS, self.refresh_conversations)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _config(self) -> SynthConfig:
        """The form as a validated config (the CLI's checks); raises OptionError naming the field."""
        method = str(self.query_one("#method", Select).value)
        return config_from_form(method, critic=self._value("critic"), draft=self._value("draft"),
                                limit=self._value("limit"), concurrency=self._value("concurrency"),
                                budget=self._value("budget"))

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.query_one("#start", Button).disabled:
            return
        try:
            config = self._config()
        except WorkbenchError as exc:
            self.query_one("#status", Static).update(Content(f"error: {one_line(str(exc), 300)}"))
            return
        self.query_one("#start", Button).disabled = True
        self.query_one("#stop", Button).disabled = False
        self.run_job(config)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        for worker in self.workers:
            if worker.group == "synth-run":
                worker.cancel()
        self.query_one("#status", Static).update(Content("stopping: in-flight requests finish first ..."))

    @work(thread=True, exclusive=True, group="synth-run", exit_on_error=False)
    def run_job(self, config: SynthConfig) -> None:
        worker = get_current_worker()
        engine = self.app.engine  # type: ignore[attr-defined]
        try:
            if config.method == "critic-evol":  # a store read: here in the worker, not on the event loop
                config = replace(config, instruction_ids=tuple(all_instruction_ids(engine)))
            key = prepare_run(engine, config)
            self.post_message(self.Notice(estimate_run(engine, config, key).describe()))

            async def drive() -> None:
                async for job_id, event in run_synthesis_job(engine, config, key=key,
                                                             cancel=worker.cancelled_event.is_set):
                    if isinstance(event, SynthProgress):
                        self.post_message(self.Progressed(event.counters))
                    elif isinstance(event, SynthFinished):
                        failure = event.counters.get("failure") or ""
                        line = f"job {job_id}: {event.stop_reason}" + (f": {failure}" if failure else "")
                        self.post_message(self.Progressed(event.counters, line))

            asyncio.run(drive())
        except WorkbenchError as exc:
            self.post_message(self.Progressed({}, f"error: {one_line(str(exc), 300)}"))

    @on(Progressed)
    def show_progress(self, message: Progressed) -> None:
        if message.counters:
            self.query_one("#counters", Static).update(Content(counters_text(message.counters)))
        if message.finished is not None:
            self.query_one("#status", Static).update(Content(message.finished))
            self.query_one("#start", Button).disabled = False
            self.query_one("#stop", Button).disabled = True
            self.refresh_conversations()

    @on(Notice)
    def show_notice(self, message: Notice) -> None:
        self.query_one("#status", Static).update(Content(one_line(message.text, 300)))

    @work(thread=True, exclusive=True, group="synth-refresh", exit_on_error=False)
    def refresh_conversations(self) -> None:
        self.post_message(self.ConversationsLoaded(list_conversations(self.app.engine, limit=200)))  # type: ignore[attr-defined]

    @on(ConversationsLoaded)
    def show_conversations(self, message: ConversationsLoaded) -> None:
        if [c.id for c in message.conversations] == [c.id for c in self._conversations] and all(
            a.item_state == b.item_state for a, b in zip(message.conversations, self._conversations)
        ):
            return
        self._conversations = message.conversations
        row = self.table.cursor_row
        self.table.clear()
        self.table.add_rows([
            (Text(str(c.id)), Text(str(c.item_id)), Text(c.step), Text(c.model), Text(c.item_state),
             Text(c.item_reason[:120]))
            for c in message.conversations
        ])
        if message.conversations:
            self.table.move_cursor(row=min(row, len(message.conversations) - 1))

    @on(DataTable.RowHighlighted, "#conversations")
    def show_conversation(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._conversations):
            self.query_one("#conversation-view", TextArea).load_text(
                conversation_text(self._conversations[event.cursor_row])
            )
