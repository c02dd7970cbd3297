"""SynthesisScreen: start a Commit-Instruct or Critic-Evol job, follow any synthesis job, read its conversations."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Header, Input, Select, Static, TextArea
from textual.worker import get_current_worker

from core.errors import WorkbenchError
from core.models import JobInfo
from core.synthesis.driver import SynthFinished, SynthProgress
from core.synthesis.records import ConversationInfo
from stores.jobs import list_jobs, request_cancel
from stores.synthesis.runs import all_instruction_ids, list_conversations
from stores.versions import Stamp, synthesis_stamp
from workbench.jobs.synthesize import SynthConfig, config_from_form, estimate_run, prepare_run, run_synthesis_job
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

    class Progressed(Message):
        """New counters from the job this screen runs; a backlog collapses to the latest."""

        def __init__(self, counters: dict[str, Any], finished: str | None = None, job_id: int | None = None,
                     failed: bool = False) -> None:
            super().__init__()
            self.counters = counters
            self.finished = finished
            self.job_id = job_id
            self.failed = failed

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, SynthesisScreen.Progressed) and message.finished is None

    class StoreRead(Message):
        def __init__(self, stamp: Stamp, conversations: list[ConversationInfo] | None, job: JobInfo | None) -> None:
            super().__init__()
            self.stamp = stamp
            self.conversations = conversations
            self.job = job

    class Notice(Message):
        def __init__(self, text: str, failed: bool = False) -> None:
            super().__init__()
            self.text = text
            self.failed = failed

    def __init__(self) -> None:
        super().__init__()
        self._conversations: list[ConversationInfo] = []
        self._stamp: Stamp | None = None
        self._job: JobInfo | None = None  # the latest synthesis job in the store
        self._own_job: int | None = None  # the job this screen's worker runs, once it has an id
        self._running_here = False

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
            self._say(f"error: {exc}", failed=True)
            return
        self.query_one("#start", Button).disabled = True
        self.query_one("#stop", Button).disabled = False
        self._say("starting…")
        self._running_here = True
        self.table.focus()  # not a form field: the global keys must not type into one
        self.run_job(config)

    @on(Button.Pressed, "#stop")
    def action_stop(self) -> None:
        job = self._job if self._job is not None and self._job.is_active else None
        if self._running_here and self._own_job is None:
            self.notify("The job is starting; stop it once it runs.", markup=False)
            return
        if job is None and self._own_job is None:
            self.notify("No synthesis job is running.", markup=False)
            return
        job_id = self._own_job or (job.id if job else 0)
        elsewhere = self._own_job is None
        confirm(self.app, f"Stop synthesis job {job_id}{' (started elsewhere)' if elsewhere else ''}?",
                "Requests in flight finish first; every finished item stays, and the same run started again "
                "resumes.", "Stop the job", lambda: self.stop_job(job_id))

    @work(thread=True, exclusive=True, group="synth-stop", exit_on_error=False)
    def stop_job(self, job_id: int) -> None:
        request_cancel(self.engine, job_id)
        for worker in self.workers:
            if worker.group == "synth-run":
                worker.cancel()
        self.post_message(self.Notice(f"job {job_id}: stopping; in-flight requests finish first…"))

    @work(thread=True, exclusive=True, group="synth-run", exit_on_error=False)
    def run_job(self, config: SynthConfig) -> None:
        worker = get_current_worker()
        engine = self.engine
        try:
            if config.method == "critic-evol":  # a store read: here in the worker, not on the event loop
                config = replace(config, instruction_ids=tuple(all_instruction_ids(engine)))
            key = prepare_run(engine, config)
            self.post_message(self.Notice(estimate_run(engine, config, key).describe()))

            async def drive() -> None:
                async for job_id, event in run_synthesis_job(engine, config, key=key,
                                                             cancel=worker.cancelled_event.is_set):
                    if isinstance(event, SynthProgress):
                        self.post_message(self.Progressed(event.counters, job_id=job_id))
                    elif isinstance(event, SynthFinished):
                        failure = event.counters.get("failure") or ""
                        text = f"job {job_id}: {event.stop_reason}" + (f": {failure}" if failure else "")
                        self.post_message(self.Progressed(event.counters, text, job_id=job_id, failed=bool(failure)))

            asyncio.run(drive())
        except WorkbenchError as exc:
            self.post_message(self.Progressed({}, f"error: {exc}", failed=True))
        except Exception as exc:
            self.post_message(self.Progressed({}, f"failed: {type(exc).__name__}: {exc}", failed=True))

    @on(Progressed)
    def show_progress(self, message: Progressed) -> None:
        if message.counters:
            self.query_one("#counters", Static).update(block(counters_text(message.counters)))
        self._own_job = None if message.finished is not None else message.job_id
        if message.finished is not None:
            self._running_here = False
            self._say(message.finished, failed=message.failed)
            self.query_one("#start", Button).disabled = False
            self.query_one("#stop", Button).disabled = True
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
        jobs = list_jobs(self.engine, kind="synth", limit=1)
        self.post_message(self.StoreRead(stamp, list_conversations(self.engine, limit=200), jobs[0] if jobs else None))

    @on(StoreRead)
    def show_store(self, message: StoreRead) -> None:
        self._stamp = message.stamp
        self._job = message.job
        job = message.job
        if job is not None and not self._running_here:
            # A job started elsewhere (another session, the CLI, a worker): follow its stored counters.
            if job.is_active:
                self.query_one("#counters", Static).update(block(counters_text(job.summary)))
                self._say(f"job {job.id} {job.state} ({job.title}; started elsewhere) · ctrl+x stops it")
                self.query_one("#stop", Button).disabled = False
            elif not self.query_one("#start", Button).disabled:
                self.query_one("#stop", Button).disabled = True
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

