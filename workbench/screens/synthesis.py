"""SynthesisScreen: queue a Commit-Instruct or Critic-Evol job, watch its counters and recent conversations."""

from __future__ import annotations

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

from core.errors import WorkbenchError
from core.jobs import JobInfo
from core.synthesis.records import ConversationInfo
from core.textsafe import one_line
from stores.jobs import get_job, list_jobs, request_cancel
from stores.synthesis.runs import all_instruction_ids, list_conversations
from workbench.jobs.synthesize import SynthConfig, config_from_form
from workbench.widgets.polling import poll_unless_busy

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
        """The synthesis job this screen follows changed; `finished` says how it ended."""

        def __init__(self, counters: dict[str, Any], finished: str | None = None, job: JobInfo | None = None) -> None:
            super().__init__()
            self.counters = counters
            self.finished = finished
            self.job = job

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
        self._job: JobInfo | None = None

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
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "synth-refresh", self.refresh_conversations))

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
        self.queue_job(config)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        if self._job is not None and self._job.is_active:
            self.cancel_job(self._job.id)
            self.query_one("#status", Static).update(Content("stopping: in-flight requests finish first ..."))

    @work(thread=True, exclusive=True, group="synth-queue", exit_on_error=False)
    def queue_job(self, config: SynthConfig) -> None:
        """Queue the run for a worker (started detached if none runs); the TUI only watches it."""
        from workbench.jobs.queue import enqueue
        from workbench.jobs.synthesize import SYNTH

        try:
            if config.method == "critic-evol":  # a store read: here in the thread, not on the event loop
                config = replace(config, instruction_ids=tuple(all_instruction_ids(self.app.engine)))  # type: ignore[attr-defined]
            job = enqueue(self.app.engine, SYNTH.name, config)  # type: ignore[attr-defined]
        except (WorkbenchError, ValueError) as exc:
            self.post_message(self.Progressed({}, f"error: {one_line(str(exc), 300)}"))
            return
        self.post_message(self.Notice(f"job {job.id} {job.state}"))
        self.post_message(self.Progressed(job.summary, job=job))

    @work(thread=True, exclusive=True, group="synth-cancel", exit_on_error=False)
    def cancel_job(self, job_id: int) -> None:
        request_cancel(self.app.engine, job_id)  # type: ignore[attr-defined]

    def _watch_job(self) -> None:
        """Follow the job shown (or the latest synthesis job, for a TUI opened while one runs)."""
        engine = self.app.engine  # type: ignore[attr-defined]
        shown = self._job
        if shown is not None and shown.is_active:
            job = get_job(engine, shown.id)
        else:
            latest = list_jobs(engine, kind="synth", limit=1)
            if not latest or (shown is None and not latest[0].is_active) or (shown is not None and latest[0].id == shown.id):
                return
            job = latest[0]
        if shown is not None and job.id == shown.id and job.updated_at == shown.updated_at:
            return
        ended = None if job.is_active else f"job {job.id}: {job.state}" + (f" · {one_line(job.error, 300)}" if job.error else "")
        self.post_message(self.Progressed(job.summary, ended, job=job))

    @on(Progressed)
    def show_progress(self, message: Progressed) -> None:
        if message.job is not None:
            self._job = message.job
        active = self._job is not None and self._job.is_active
        if message.counters:
            self.query_one("#counters", Static).update(Content(counters_text(message.counters)))
        if message.finished is not None:
            self.query_one("#status", Static).update(Content(message.finished))
            self.refresh_conversations()
        elif active and self._job is not None:
            self.query_one("#status", Static).update(Content(f"job {self._job.id} {self._job.state}"))
        self.query_one("#start", Button).disabled = active
        self.query_one("#stop", Button).disabled = not active

    @on(Notice)
    def show_notice(self, message: Notice) -> None:
        self.query_one("#status", Static).update(Content(one_line(message.text, 300)))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="synth-refresh", exit_on_error=False)
    def refresh_conversations(self) -> None:
        self._watch_job()
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
