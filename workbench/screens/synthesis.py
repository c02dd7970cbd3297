"""SynthesisScreen: queue a Commit-Instruct or Critic-Evol job, follow any synthesis job, read its conversations."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static, TextArea

from core.errors import WorkbenchError
from core.jobs import JobInfo
from core.synthesis.records import ConversationInfo
from stores.jobs import get_job, list_jobs, request_cancel
from stores.synthesis.runs import all_instruction_ids, list_conversations
from stores.versions import Stamp, synthesis_stamp
from workbench.jobs.synthesize import SynthConfig, config_from_form
from workbench.screens.base import StageScreen
from workbench.screens.dialogs import confirm
from workbench.widgets.plain import block, cell, code, line
from workbench.widgets.tables import fill_table

POLL_SECONDS = 1.0
NO_CONVERSATIONS = ("No synthesis yet. Give the critic model (an OpenAI-compatible endpoint, e.g. "
                    "openai:MODEL@http://host:8000/v1) and press ctrl+s. Commit-Instruct needs mined commits "
                    "(c, then m); Critic-Evol needs instructions (`workbench instructions import FILE`).")


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
    parts = [(f"exchange {conversation.id} · item {conversation.item_id} · {conversation.step} · "
              f"{conversation.model} · {conversation.prompt_version}"),
             f"item outcome: {conversation.item_state} {conversation.item_reason}".rstrip(), ""]
    for message in conversation.messages:
        parts += [f"--- {message['role']} ---", message["content"], ""]
    parts += [f"--- answer ({conversation.finish_reason}) ---", conversation.response]
    return "\n".join(parts)


def _labelled(widget: Any, label: str) -> Any:
    widget.border_title = label
    return widget


class SynthesisScreen(StageScreen):
    """Starts synthesis jobs; follows the running one (started here or anywhere else) and its conversations."""

    CSS_PATH = "synthesis.tcss"
    MAIN = "#conversations"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start"),
        Binding("ctrl+x", "stop", "Stop"),
        Binding("slash", "focus_form", "Form"),
    ]

    class StoreRead(Message):
        def __init__(self, stamp: Stamp, conversations: list[ConversationInfo] | None, job: JobInfo | None) -> None:
            super().__init__()
            self.stamp = stamp
            self.conversations = conversations
            self.job = job

    class Queued(Message):
        """A job was queued from this screen (or could not be: `job` is None and `text` says why)."""

        def __init__(self, job: JobInfo | None, text: str) -> None:
            super().__init__()
            self.job = job
            self.text = text

    class Notice(Message):
        def __init__(self, text: str, failed: bool = False) -> None:
            super().__init__()
            self.text = text
            self.failed = failed

    def __init__(self) -> None:
        super().__init__()
        self._conversations: list[ConversationInfo] = []
        self._stamp: Stamp | None = None
        self._job: JobInfo | None = None  # the synthesis job shown: queued here, or the latest in the store

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="form", classes="panel"):
            with Horizontal(classes="form-row"):
                yield _labelled(Select([("Commit-Instruct", "commit-instruct"), ("Critic-Evol", "critic-evol")],
                                       value="commit-instruct", allow_blank=False, id="method"), "method")
                yield _labelled(Input(placeholder="openai:MODEL@URL", id="critic"), "critic model")
                yield _labelled(Input(placeholder="Critic-Evol only", id="draft"), "draft model")
            with Horizontal(classes="form-row"):
                yield _labelled(Input(placeholder="all", id="limit"), "limit")
                yield _labelled(Input(value="16", id="concurrency"), "concurrency")
                yield _labelled(Input(placeholder="50k or $2", id="budget"), "budget")
                yield Button("Start ^s", id="start", variant="primary")
                yield Button("Stop ^x", id="stop", disabled=True)
        with Horizontal(id="body"):
            with Vertical(id="left", classes="panel"):
                yield Static(block(counters_text({})), id="counters")
                yield Static(id="status", classes="muted")
                yield DataTable(id="conversations", cursor_type="row")
            yield TextArea(code(NO_CONVERSATIONS), id="conversation-view", read_only=True, soft_wrap=True)
        yield Footer(compact=True)

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#conversations", DataTable)

    def on_mount(self) -> None:
        self.table.add_columns("id", "step", "outcome", "reason", "model", "item")
        self.read_store(None)
        self.set_interval(POLL_SECONDS, self.poll)

    def on_screen_resume(self) -> None:
        self.poll()

    def poll(self) -> None:
        self.read_store(self._stamp)

    def _value(self, widget_id: str) -> str:
        return self.query_one(f"#{widget_id}", Input).value.strip()

    def _say(self, text: str, failed: bool = False) -> None:
        status = self.query_one("#status", Static)
        status.update(line(text, 400))
        status.set_class(failed, "-failed")

    def action_focus_form(self) -> None:
        self.query_one("#critic", Input).focus()

    # start and stop ----------------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def action_start(self) -> None:
        if self.query_one("#start", Button).disabled:
            return
        try:
            # The CLI's checks and messages: a bad limit, concurrency, budget or model spec is one line here.
            config = config_from_form(
                str(self.query_one("#method", Select).value), critic=self._value("critic"),
                draft=self._value("draft"), limit=self._value("limit"), concurrency=self._value("concurrency"),
                budget=self._value("budget"))
        except WorkbenchError as exc:
            self._refuse(f"error: {exc}")
            return
        self.query_one("#start", Button).disabled = True
        self._say("queueing…")
        self.queue_job(config)

    def _refuse(self, text: str) -> None:
        """Say why the form was refused, with the focus in the form so that what is typed next corrects it."""
        self._say(text, failed=True)
        form = self.query_one("#form")
        if self.focused is None or form not in self.focused.ancestors_with_self:
            self.query_one("#critic", Input).focus()

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        job = self._job if self._job is not None and self._job.is_active else None
        if job is None:
            self.notify("No synthesis job is running.", markup=False)
            return
        confirm(self.app, f"Stop synthesis job {job.id}?",
                "Requests in flight finish first; every finished item stays, and the same run started again "
                "resumes.", "Stop the job", lambda: self.stop_job(job.id))

    @work(thread=True, exclusive=True, group="synth-stop", exit_on_error=False)
    def stop_job(self, job_id: int) -> None:
        request_cancel(self.engine, job_id)
        self.post_message(self.Notice(f"job {job_id}: stopping; in-flight requests finish first…"))

    @work(thread=True, exclusive=True, group="synth-queue", exit_on_error=False)
    def queue_job(self, config: SynthConfig) -> None:
        """Queue the run for a worker (started detached if none runs); the TUI only follows it in the store."""
        from workbench.jobs.queue import enqueue
        from workbench.jobs.synthesize import SYNTH

        try:
            if config.method == "critic-evol":  # a store read: here in the thread, not on the event loop
                config = replace(config, instruction_ids=tuple(all_instruction_ids(self.engine)))
            job = enqueue(self.engine, SYNTH.name, config)
        except WorkbenchError as exc:
            self.post_message(self.Queued(None, f"error: {exc}"))
            return
        self.post_message(self.Queued(job, f"job {job.id} {job.state}: {job.title}"))

    @on(Queued)
    def show_queued(self, message: Queued) -> None:
        if message.job is None:
            self.query_one("#start", Button).disabled = False
            self._refuse(message.text)
            return
        self._job = message.job
        self._say(message.text)
        self.table.focus()  # not a form field: the global keys must not type into one
        self.query_one("#stop", Button).disabled = False
        self.read_store(None)

    @on(Notice)
    def show_notice(self, message: Notice) -> None:
        self._say(message.text, failed=message.failed)

    # following the store -----------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="synth-refresh", exit_on_error=False)
    def read_store(self, known: Stamp | None) -> None:
        stamp = synthesis_stamp(self.engine)
        if stamp == known:
            return
        shown = self._job
        if shown is not None and shown.is_active:
            job: JobInfo | None = get_job(self.engine, shown.id)
        else:
            jobs = list_jobs(self.engine, kind="synth", limit=1)
            job = jobs[0] if jobs else None
        self.post_message(self.StoreRead(stamp, list_conversations(self.engine, limit=200), job))

    @on(StoreRead)
    def show_store(self, message: StoreRead) -> None:
        self._stamp = message.stamp
        before, job = self._job, message.job
        self._job = job
        if job is not None:
            # The job is run by a worker (this screen's or one started anywhere): follow its stored counters.
            self.query_one("#counters", Static).update(block(counters_text(job.summary)))
            if job.is_active:
                waiting = " (waiting for a worker)" if job.state == "queued" else ""
                self._say(f"job {job.id} {job.state}{waiting}: {job.title} · ctrl+x stops it")
            elif before is not None and before.id == job.id and before.is_active:
                failure = job.error or job.summary.get("failure") or ""
                self._say(f"job {job.id}: {job.state}" + (f": {failure}" if failure else ""),
                          failed=job.state == "failed")
            self.query_one("#stop", Button).disabled = not job.is_active
            self.query_one("#start", Button).disabled = job.is_active
        if message.conversations is not None:
            self.show_conversations(message.conversations)

    def show_conversations(self, conversations: list[ConversationInfo]) -> None:
        if [(c.id, c.item_state) for c in conversations] == [(c.id, c.item_state) for c in self._conversations]:
            return
        self._conversations = conversations
        row = self.table.cursor_row
        fill_table(self.table, [
            (cell(c.id), cell(c.step), cell(c.item_state), cell(c.item_reason, 60), cell(c.model, 30),
             cell(c.item_id))
            for c in conversations
        ])
        if conversations:
            self.table.move_cursor(row=min(row, len(conversations) - 1))
        else:
            self.query_one("#conversation-view", TextArea).load_text(code(NO_CONVERSATIONS))

    @on(DataTable.RowHighlighted, "#conversations")
    def show_conversation(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._conversations):
            self.query_one("#conversation-view", TextArea).load_text(
                code(conversation_text(self._conversations[event.cursor_row])))

