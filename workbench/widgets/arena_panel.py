"""ArenaPanel: arena sets, runs with their live win rates, and a run's breakdown by category and language."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Button, DataTable, Input, Static
from textual.worker import Worker, WorkerState

from core.evaluation.arena_models import ArenaProgress, ArenaRunInfo, ArenaSetInfo
from core.evaluation.arena_report import percent
from core.evaluation.arena_scoring import ArenaScores, GroupScore
from core.jobs import JobInfo
from core.textsafe import one_line

REFRESH_SECONDS = 1.0
NAME_WIDTH = 28  # model names and judge specs are cut here so the scores stay in view
_STATE_STYLE = {"running": "bold green", "done": "", "stopped": "yellow", "interrupted": "yellow", "failed": "red"}


def _pct(value: float | None) -> str:
    shown = percent(value)
    return "" if shown is None else f"{shown:.1f}"


def _cell(value: object, style: str = "", *, limit: int | None = None) -> Text:
    return Text(one_line(str(value), limit), style=style)


class ArenaPanel(Vertical):
    """Shows arena sets, every run's win rate against its baseline (live), and the selected run's breakdown."""

    DEFAULT_CSS = """
    ArenaPanel { height: 1fr; }
    ArenaPanel #arena-form { height: 3; }
    ArenaPanel #arena-form Input { width: 1fr; }
    ArenaPanel #arena-form #arena-judge { width: 2fr; }
    ArenaPanel #arena-start { width: auto; }
    ArenaPanel #arena-status.-failed { color: $error; }
    ArenaPanel #arena-top { height: 1fr; }
    ArenaPanel #arena-sets-panel { width: 1fr; }
    ArenaPanel #arena-runs-panel { width: 3fr; }
    ArenaPanel DataTable { height: 1fr; }
    ArenaPanel #arena-breakdown-panel { height: 1fr; }
    """

    class Refreshed(Message):
        def __init__(self, sets: list[ArenaSetInfo], runs: list[tuple[ArenaRunInfo, ArenaScores | None]],
                     selected: tuple[ArenaRunInfo, ArenaScores] | None) -> None:
            super().__init__()
            self.sets = sets
            self.runs = runs
            self.selected = selected

    class JobChanged(Message):
        """The judging job this panel follows changed (or could not be queued: `job` None, `note` says why)."""

        def __init__(self, job: JobInfo | None, note: str = "", refused: bool = False) -> None:
            super().__init__()
            self.job = job
            self.note = note
            self.refused = refused

    class Progressed(Message):
        def __init__(self, event: ArenaProgress) -> None:
            super().__init__()
            self.event = event

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ArenaPanel.Progressed)

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.selected_run: int | None = None
        self.job: JobInfo | None = None  # the judging this panel queued (a worker runs it)
        self._loading = False
        self._reload = False
        self._sets: list[ArenaSetInfo] = []

    def compose(self) -> ComposeResult:
        with Horizontal(id="arena-form"):
            # Labels on the borders and short placeholders, so every field reads at 100 columns.
            for field_id, label, placeholder, value in (
                ("arena-set", "set", "id or name", ""),
                ("arena-candidate", "candidate", "model name", ""),
                ("arena-judge", "judge", "spec, pair-rm:PATH", ""),
                ("arena-baseline", "baseline", "model name", "baseline"),
            ):
                field = Input(value, placeholder=placeholder, id=field_id)
                field.border_title = label
                yield field
            yield Button("Judge", id="arena-start", variant="primary")
        yield Static(id="arena-status", classes="muted")
        with Horizontal(id="arena-top"):
            with Vertical(id="arena-sets-panel", classes="panel"):
                yield Static("Arena sets", classes="title")
                yield DataTable(id="arena-sets", cursor_type="row")
            with Vertical(id="arena-runs-panel", classes="panel"):
                yield Static("Arena runs: win rate against the baseline (95% CI)", classes="title", markup=False)
                yield DataTable(id="arena-runs", cursor_type="row")
        with Vertical(id="arena-breakdown-panel", classes="panel"):
            yield Static("Win / tie / loss by category and language", classes="title", markup=False)
            yield DataTable(id="arena-breakdown", cursor_type="row")

    @property
    def sets_table(self) -> DataTable[Text]:
        return self.query_one("#arena-sets", DataTable)

    @property
    def runs_table(self) -> DataTable[Text]:
        return self.query_one("#arena-runs", DataTable)

    @property
    def breakdown_table(self) -> DataTable[Text]:
        return self.query_one("#arena-breakdown", DataTable)

    def on_mount(self) -> None:
        self.sets_table.add_columns("id", "name", "questions", "categories", "languages", "answers by model")
        self.runs_table.add_columns("run", "state", "done", "win %", "95% CI", "W/T/L/U", "consist %",
                                    "candidate", "baseline", "judge", "set")
        self.breakdown_table.add_columns("group", "name", "judged", "win %", "tie %", "loss %", "undec %",
                                         "win rate %")
        self.set_interval(REFRESH_SECONDS, self.refresh_data)

    def refresh_data(self) -> None:
        """Reload sets, runs and the selected run's scores in a worker, while the panel is shown.

        One load at a time: a load can outlast the refresh interval on a busy machine, and starting
        another would cancel it before it shows anything; a request meanwhile reloads once after it.
        """
        if not self.display:
            return
        if self._loading:
            self._reload = True
            return
        self._loading, self._reload = True, False
        self._load()

    @work(thread=True, group="arena-refresh", exit_on_error=False)
    def _load(self) -> None:
        from stores.evaluation.arena import arena_scores, list_arena_runs, list_arena_sets

        engine = self.app.engine  # type: ignore[attr-defined]
        sets = list_arena_sets(engine, limit=200)
        runs = [(run, arena_scores(engine, run.id) if run.done else None) for run in list_arena_runs(engine, limit=200)]
        selected = next(((run, scores) for run, scores in runs if run.id == self.selected_run and scores), None)
        self.post_message(self.Refreshed(sets, runs, selected))
        self._watch_job()

    def _watch_job(self) -> None:
        """Post the queued judging's progress while it runs, and its end (read in the refresh thread)."""
        from stores.jobs import get_job

        shown = self.job
        if shown is None or not shown.is_active:
            return
        job = get_job(self.app.engine, shown.id)  # type: ignore[attr-defined]
        if job.updated_at == shown.updated_at and job.state == shown.state:
            return
        counters = dict(job.summary.get("counters") or {})
        if job.summary.get("run_id") is not None:
            counters["run_id"] = job.summary["run_id"]
        self.post_message(self.Progressed(ArenaProgress(job.id, job.done, job.total or 0, counters)))
        self.post_message(self.JobChanged(job))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        self._loading = False
        self._sets = message.sets
        if self._reload:
            self.refresh_data()
        self._replace(self.sets_table, [
            [_cell(s.id), _cell(s.name, limit=NAME_WIDTH), _cell(s.questions), _cell(len(s.categories)),
             _cell(len(s.languages)), _cell(", ".join(f"{m} ({n})" for m, n in s.models.items()), limit=60)]
            for s in message.sets
        ])
        self._replace(self.runs_table, [self._run_row(run, scores) for run, scores in message.runs])
        if message.selected is not None:
            run, scores = message.selected
            self._replace(self.breakdown_table, [self._group_row("overall", scores.overall)]
                          + [self._group_row("category", s) for s in scores.by_category]
                          + [self._group_row("language", s) for s in scores.by_language])
            self.query_one("#arena-status", Static).update(Content(one_line(
                f"run {run.id} · {run.candidate} vs {run.baseline} · {run.judge_spec} · {run.state}"
            )))

    @staticmethod
    def _replace(table: DataTable[Text], rows: list[list[Text]]) -> None:
        cursor = table.cursor_row
        table.clear()
        table.add_rows(rows)
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    @staticmethod
    def _run_row(run: ArenaRunInfo, scores: ArenaScores | None) -> list[Text]:
        overall = scores.overall if scores else None
        interval = f"{_pct(scores.interval[0])}-{_pct(scores.interval[1])}" if scores else ""
        counts = f"{overall.wins}/{overall.ties}/{overall.losses}/{overall.undecided}" if overall else ""
        return [
            _cell(run.id), _cell(run.state, _STATE_STYLE.get(run.state, "")), _cell(f"{run.done}/{run.total}"),
            _cell(_pct(overall.win_rate) if overall else ""), _cell(interval), _cell(counts),
            _cell(_pct(scores.consistency) if scores else ""), _cell(run.candidate, limit=NAME_WIDTH),
            _cell(run.baseline, limit=NAME_WIDTH), _cell(run.judge_spec, limit=NAME_WIDTH),
            _cell(run.set_name, limit=NAME_WIDTH),
        ]

    @staticmethod
    def _group_row(group: str, score: GroupScore) -> list[Text]:
        return [
            _cell(group, "bold" if group == "overall" else ""), _cell(score.name), _cell(score.judgements),
            _cell(_pct(score.rate(score.wins))), _cell(_pct(score.rate(score.ties))),
            _cell(_pct(score.rate(score.losses))), _cell(_pct(score.rate(score.undecided))),
            _cell(_pct(score.win_rate)),
        ]

    @on(DataTable.RowSelected, "#arena-runs")
    def select_run(self, event: DataTable.RowSelected) -> None:
        self.selected_run = int(str(self.runs_table.get_row_at(event.cursor_row)[0]))
        self.refresh_data()

    @on(DataTable.RowSelected, "#arena-sets")
    def select_set(self, event: DataTable.RowSelected) -> None:
        """Show the set's categories, languages and models, and put it in the judge form."""
        set_id = int(str(self.sets_table.get_row_at(event.cursor_row)[0]))
        self.query_one("#arena-set", Input).value = str(set_id)
        arena_set = next((s for s in self._sets if s.id == set_id), None)
        if arena_set is not None:
            def listed(counts: dict[str, int]) -> str:
                return ", ".join(f"{name} {count}" for name, count in counts.items())

            self.query_one("#arena-status", Static).update(Content(one_line(
                f"set {arena_set.id} {arena_set.name} · {arena_set.questions} questions · categories: "
                f"{listed(arena_set.categories)} · languages: {listed(arena_set.languages)} · answers: "
                f"{listed(arena_set.models)}"
            )))

    @on(Button.Pressed, "#arena-start")
    def start(self) -> None:
        """Judge the candidate in the form against its baseline (resuming the run if it exists)."""
        values = {name: self.query_one(f"#arena-{name}", Input).value.strip()
                  for name in ("set", "candidate", "judge", "baseline")}
        missing = [name for name, value in values.items() if not value]
        if missing:
            self._refuse(f"enter the {missing[0]} first", f"#arena-{missing[0]}")
            return
        self.query_one("#arena-start", Button).disabled = True
        self._judge(values["set"], values["candidate"], values["judge"], values["baseline"])

    def _refuse(self, text: str, field: str = "#arena-set") -> None:
        """Say in the panel why the form was refused, with the focus in its field so that what is typed next
        corrects it (instead of reaching the screen as commands)."""
        status = self.query_one("#arena-status", Static)
        status.update(Content(one_line(text, 300)))
        status.add_class("-failed")
        self.query_one(field, Input).focus()

    def stop(self) -> None:
        """Ask the judging this panel follows to stop after the items in flight."""
        if self.job is not None and self.job.is_active:
            self._cancel(self.job.id)

    @work(thread=True, exclusive=True, group="arena-cancel", exit_on_error=False)
    def _cancel(self, job_id: int) -> None:
        from stores.jobs import request_cancel

        request_cancel(self.app.engine, job_id)  # type: ignore[attr-defined]

    @work(thread=True, exclusive=True, group="arena-run", exit_on_error=False)
    def _judge(self, set_ref: str, candidate: str, judge: str, baseline: str) -> None:
        """Queue the judging for a worker (which loads any judge model: never torch in the TUI)."""
        from core.errors import WorkbenchError
        from workbench.jobs.arena import ARENA_JUDGE, JudgeConfig
        from workbench.jobs.queue import enqueue

        try:
            job = enqueue(self.app.engine, ARENA_JUDGE.name, JudgeConfig(set_ref, candidate, judge, baseline=baseline))  # type: ignore[attr-defined]
        except WorkbenchError as exc:
            self.post_message(self.JobChanged(None, f"cannot start: {one_line(str(exc), 300)}", refused=True))
            return
        self.post_message(self.JobChanged(job, f"job {job.id} {job.state}"))

    @on(JobChanged)
    def follow_job(self, message: JobChanged) -> None:
        if message.refused:
            self.query_one("#arena-start", Button).disabled = self.job is not None and self.job.is_active
            self._refuse(message.note, "#arena-candidate")
            return
        self.query_one("#arena-status", Static).remove_class("-failed")
        if message.note:
            self.app.notify(message.note, markup=False, timeout=4)
        if message.job is not None:
            self.job = message.job
            if not message.job.is_active:
                self.app.notify(one_line(f"job {message.job.id}: {message.job.state}"
                                         + (f" · {message.job.error}" if message.job.error else ""), 300),
                                markup=False, timeout=4)
        self.query_one("#arena-start", Button).disabled = self.job is not None and self.job.is_active
        self.refresh_data()

    @on(Progressed)
    def show_progress(self, message: Progressed) -> None:
        run_id = message.event.counters.get("run_id")
        if isinstance(run_id, int):
            self.selected_run = run_id
        self.refresh_data()

    @on(Worker.StateChanged)
    def run_ended(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "arena-refresh" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self._loading = False
        if event.worker.group == "arena-run" and event.state in (WorkerState.ERROR, WorkerState.CANCELLED):
            self.query_one("#arena-start", Button).disabled = False
            self.refresh_data()
