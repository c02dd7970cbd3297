"""EvaluationScreen: start CodePrefBench runs, watch per-objective scores live, compare, drill down."""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Checkbox, DataTable, Footer, Header, Input, Static, TextArea

from core.errors import WorkbenchError
from core.evaluation.bench import BENCH_ENV_VAR, BenchTask, shown_codes
from core.evaluation.models import EvalResultInfo, EvalRunInfo, LeaderboardEntry
from core.evaluation.scoring import RunScores, format_accuracy
from core.execution.records import PolicyEvalInfo
from core.jobs import JobInfo
from core.textsafe import one_line
from workbench.jobs.forms import eval_form
from workbench.widgets.arena_panel import ArenaPanel
from workbench.widgets.polling import poll_unless_busy

REFRESH_SECONDS = 1.0
_STATE_STYLE = {"running": "bold green", "queued": "yellow", "done": "", "cancelled": "yellow", "stalled": "yellow",
                "stopped": "yellow", "interrupted": "yellow",
                "failed": "red"}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}"


@dataclass(frozen=True, slots=True)
class TaskView:
    """Everything the drill-down shows about one task of one run."""

    run: EvalRunInfo
    task: BenchTask
    code_a: str
    code_b: str
    results: tuple[EvalResultInfo, ...]


class TaskDetailScreen(ModalScreen[None]):
    """One task: instruction, both codes as judged in the given order, the judge's outputs, truth."""

    BINDINGS = [Binding("escape,q", "dismiss", "Back")]

    def __init__(self, view: TaskView) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        view = self.view
        better = "A" if view.task.gt_choice == 0 else "B"
        with Vertical(id="task-detail"):
            yield Static(
                Content(f"{view.task.objective} · {view.task.uid} · ground truth: code {better} is better"),
                classes="title",
            )
            yield TextArea(view.task.instruction, read_only=True, id="task-instruction", soft_wrap=True)
            with Horizontal(id="task-codes"):
                yield TextArea(view.code_a, read_only=True, language="python", id="task-code-a")
                yield TextArea(view.code_b, read_only=True, language="python", id="task-code-b")
            outputs = "\n\n".join(
                f"[{r.order} order] decision {r.decision} (truth {r.gt}), {r.latency_s:.3f} s, "
                f"{r.prompt_tokens}+{r.completion_tokens} tokens\n{r.raw_output}"
                for r in view.results
            )
            yield TextArea(outputs or "no result yet", read_only=True, id="task-outputs", soft_wrap=True)
        yield Footer()


class EvaluationScreen(Screen[None]):
    """Shows evaluation runs as a leaderboard, the selected run's live scores, and its results."""

    CSS_PATH = "evaluation.tcss"
    BINDINGS = [
        Binding("s", "start", "Start run"),
        Binding("x", "stop", "Stop run"),
        Binding("r", "refresh", "Refresh"),
        Binding("a", "toggle_arena", "Arena"),
    ]
    # The CodePrefBench widgets, hidden while the arena panel is shown.
    BENCH_PARTS = ("#eval-form", "#eval-status", "#eval-top", "#eval-bottom")

    class Refreshed(Message):
        def __init__(self, entries: list[LeaderboardEntry], selected: LeaderboardEntry | None,
                     policy_evals: list[PolicyEvalInfo]) -> None:
            super().__init__()
            self.entries = entries
            self.selected = selected
            self.policy_evals = policy_evals

    class ResultsLoaded(Message):
        def __init__(self, run_id: int, objective: str, results: list[EvalResultInfo]) -> None:
            super().__init__()
            self.run_id = run_id
            self.objective = objective
            self.results = results

    class JobChanged(Message):
        """The eval job this screen started or follows changed (queued, its run created, ended)."""

        def __init__(self, job: JobInfo | None, note: str = "") -> None:
            super().__init__()
            self.job = job
            self.note = note

    class TaskLoaded(Message):
        def __init__(self, view: TaskView) -> None:
            super().__init__()
            self.view = view

    def __init__(self) -> None:
        super().__init__()
        self.selected_run: int | None = None
        self.selected_objective: str | None = None
        self.eval_job: JobInfo | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="eval-form"):
            yield Input(placeholder="judge: pair-rm:PATH | baseline:shorter | model spec", id="judge")
            yield Input(value=os.environ.get(BENCH_ENV_VAR, ""), placeholder="benchmark folder", id="bench")
            yield Input(placeholder="limit", id="limit", type="integer")
            yield Checkbox("given order only", id="given-only")
            yield Button("Start", id="start", variant="primary")
        yield Static(id="eval-status", classes="muted")
        with Horizontal(id="eval-top"):
            with Vertical(id="board-panel", classes="panel"):
                yield Static("Leaderboard", classes="title")
                yield DataTable(id="board", cursor_type="row")
            with Vertical(id="scores-panel", classes="panel"):
                yield Static("Scores (given order / both orders, ± 95% band, undecided = ½)", classes="title", markup=False)
                yield DataTable(id="scores", cursor_type="row")
        with Horizontal(id="eval-bottom"):
            with Vertical(id="results-panel", classes="panel"):
                yield Static("Results (enter: open the task)", classes="title")
                yield DataTable(id="results", cursor_type="row")
            with Vertical(id="policy-panel", classes="panel"):
                yield Static("Policy models: pass@k, runtime, length (held-out problems)",
                             classes="title", markup=False)
                yield DataTable(id="policy", cursor_type="row")
        yield ArenaPanel(id="arena")
        yield Footer()

    @property
    def board(self) -> DataTable[Text]:
        return self.query_one("#board", DataTable)

    @property
    def scores_table(self) -> DataTable[Text]:
        return self.query_one("#scores", DataTable)

    @property
    def results_table(self) -> DataTable[Text]:
        return self.query_one("#results", DataTable)

    @property
    def policy_table(self) -> DataTable[Text]:
        return self.query_one("#policy", DataTable)

    def on_mount(self) -> None:
        self.query_one(ArenaPanel).display = False
        self.board.add_columns("run", "judge", "protocol", "state", "done", "corr", "eff", "sec", "avg", "human")
        self.scores_table.add_columns("objective", "done", "given % ± band", "both % ± band", "consist %", "undec")
        self.results_table.add_columns("task", "order", "truth", "decision", "latency s", "output")
        self.policy_table.add_columns("id", "model", "state", "problems", "n", "pass@k %", "runtime ms", "chars")
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "eval-refresh", self.refresh_data))

    def action_refresh(self) -> None:
        self.refresh_data()

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="eval-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        from stores.evaluation.runs import get_run, leaderboard, run_scores
        from stores.execution.evals import list_policy_evals

        engine = self.app.engine  # type: ignore[attr-defined]
        self._watch_job()
        entries = leaderboard(engine, limit=100)
        selected = None
        if self.selected_run is not None:
            selected = next((e for e in entries if e.run.id == self.selected_run), None)
            if selected is None:
                run = get_run(engine, self.selected_run)
                selected = LeaderboardEntry(run=run, scores=run_scores(engine, run.id))
        self.post_message(self.Refreshed(entries, selected, list_policy_evals(engine, limit=100)))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        row = self.board.cursor_row
        self.board.clear()
        self.board.add_rows([self._board_row(entry) for entry in message.entries])
        if message.entries:
            self.board.move_cursor(row=min(row, len(message.entries) - 1))
        if message.selected is not None:
            self._show_scores(message.selected.run, message.selected.scores)
        self._show_policy_evals(message.policy_evals)

    def _show_policy_evals(self, evals: list[PolicyEvalInfo]) -> None:
        table = self.policy_table
        row = table.cursor_row
        table.clear()
        rows = []
        for item in evals:
            metrics = item.metrics
            pass_at = "  ".join(f"@{k} {100 * v:.1f}" for k, v in metrics.get("pass_at", {}).items() if v is not None)
            runtime, length = metrics.get("mean_runtime_s"), metrics.get("mean_length_chars")
            rows.append([
                Text(str(item.id)), Text(one_line(item.model, 30)),
                Text(item.state, style=_STATE_STYLE.get(item.state, "")), Text(str(len(item.problem_ids))),
                Text(str(item.samples_per_problem)), Text(pass_at),
                Text("" if runtime is None else f"{runtime * 1e3:.4g}"),
                Text("" if length is None else f"{length:.0f}"),
            ])
        table.add_rows(rows)
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1))

    @staticmethod
    def _board_row(entry: LeaderboardEntry) -> list[Text]:
        scores, run = entry.scores, entry.run

        def acc(objective: str) -> str:
            score = scores.get(objective)
            return _pct(score.headline) if score else ""

        return [
            Text(str(run.id)), Text(run.judge_spec), Text(run.protocol),
            Text(run.state, style=_STATE_STYLE.get(run.state, "")),
            Text(f"{run.done}/{run.total}"), Text(acc("correctness")), Text(acc("efficiency")),
            Text(acc("security")), Text(_pct(scores.verifiable_average)), Text(acc("human-preference")),
        ]

    def _show_scores(self, run: EvalRunInfo, scores: RunScores) -> None:
        totals = run.objective_totals
        table = self.scores_table
        row = table.cursor_row
        table.clear()
        rows = []
        for objective in run.objectives:
            score = scores.get(objective)
            done = score.results if score else 0
            total = totals.get(objective)
            rows.append([
                Text(objective),
                Text(f"{done}/{total}" if total else str(done)),
                Text(format_accuracy(score.given_accuracy, score.given_band) if score else ""),
                Text(format_accuracy(score.both_accuracy, score.both_band) if score else ""),
                Text(_pct(score.consistency) if score else ""),
                Text(str(score.undecided) if score else ""),
            ])
        rows.append([Text("verifiable avg", style="bold"), Text(f"{run.done}/{run.total}"),
                     Text(_pct(scores.verifiable_average)), Text(_pct(scores.verifiable_both_average)),
                     Text(""), Text("")])
        table.add_rows(rows)
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1))
        self.query_one("#eval-status", Static).update(
            Content(f"run {run.id} · {run.judge_spec} · protocol {run.protocol} · {run.state} · benchmark {run.bench_version}")
        )

    @on(DataTable.RowSelected, "#board")
    def select_run(self, event: DataTable.RowSelected) -> None:
        self.selected_run = int(str(self.board.get_row_at(event.cursor_row)[0]))
        self.selected_objective = None
        self.results_table.clear()
        self.refresh_data()

    @on(DataTable.RowSelected, "#scores")
    def select_objective(self, event: DataTable.RowSelected) -> None:
        objective = str(self.scores_table.get_row_at(event.cursor_row)[0])
        if self.selected_run is None or objective == "verifiable avg":
            return
        self.selected_objective = objective
        self.load_results(self.selected_run, objective)

    @work(thread=True, exclusive=True, group="eval-results", exit_on_error=False)
    def load_results(self, run_id: int, objective: str) -> None:
        from stores.evaluation.runs import list_results

        results = list_results(self.app.engine, run_id, objective=objective, limit=2000)  # type: ignore[attr-defined]
        self.post_message(self.ResultsLoaded(run_id, objective, results))

    @on(ResultsLoaded)
    def show_results(self, message: ResultsLoaded) -> None:
        self.results_table.clear()
        self.results_table.add_rows([
            [Text(r.task_id), Text(r.order), Text(r.gt),
             Text(r.decision, style="green" if r.decision == r.gt else ("yellow" if r.decision == "?" else "red")),
             Text(f"{r.latency_s:.3f}"), Text(r.raw_output.replace("\n", " ")[:60])]
            for r in message.results
        ])

    @on(DataTable.RowSelected, "#results")
    def open_task(self, event: DataTable.RowSelected) -> None:
        if self.selected_run is None or self.selected_objective is None:
            return
        task_id = str(self.results_table.get_row_at(event.cursor_row)[0])
        self.load_task(self.selected_run, self.selected_objective, task_id)

    @work(thread=True, exclusive=True, group="eval-task", exit_on_error=False)
    def load_task(self, run_id: int, objective: str, task_id: str) -> None:
        from stores.evaluation.runs import get_run, task_results
        from workbench.jobs.evaluate import run_benchmark

        engine = self.app.engine  # type: ignore[attr-defined]
        run = get_run(engine, run_id)
        task = run_benchmark(engine, run).task(objective, task_id)
        code_a, code_b = shown_codes(task, strip=run.strip_comments, protocol=run.protocol)
        view = TaskView(
            run=run, task=task, code_a=code_a, code_b=code_b,
            results=tuple(task_results(engine, run_id, objective, task_id)),
        )
        self.post_message(self.TaskLoaded(view))

    @on(TaskLoaded)
    def show_task(self, message: TaskLoaded) -> None:
        self.app.push_screen(TaskDetailScreen(message.view))

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self.query_one("#start", Button).disabled:
            return
        try:  # the CLI's checks, before anything loads
            spec, limit = eval_form(self.query_one("#judge", Input).value, self.query_one("#limit", Input).value)
        except WorkbenchError as exc:
            self.notify(one_line(str(exc), 300), severity="warning", markup=False)
            return
        self.query_one("#start", Button).disabled = True
        self.queue_eval(
            spec.text,
            self.query_one("#bench", Input).value.strip() or None,
            limit,
            "given" if self.query_one("#given-only", Checkbox).value else "both",
        )

    def action_stop(self) -> None:
        job_id = self.eval_job.id if self.eval_job is not None and self.eval_job.is_active else None
        self.cancel_eval(job_id, self.selected_run)
        self.query_one(ArenaPanel).stop()

    def action_toggle_arena(self) -> None:
        """Switch between the CodePrefBench view and the arena panel."""
        arena = self.query_one(ArenaPanel)
        arena.display = not arena.display
        for selector in self.BENCH_PARTS:
            self.query_one(selector).display = not arena.display
        if arena.display:
            arena.refresh_data()
            arena.runs_table.focus()

    @work(thread=True, exclusive=True, group="eval-cancel", exit_on_error=False)
    def cancel_eval(self, job_id: int | None, run_id: int | None) -> None:
        from stores.evaluation.runs import get_run
        from stores.jobs import request_cancel

        engine = self.app.engine  # type: ignore[attr-defined]
        if job_id is None and run_id is not None:
            job_id = get_run(engine, run_id).job_id
        if job_id is not None:
            job = request_cancel(engine, job_id)
            self.post_message(self.JobChanged(None, f"job {job.id}: cancel requested" if job.is_active else ""))

    @work(thread=True, exclusive=True, group="eval-run", exit_on_error=False)
    def queue_eval(self, judge_spec: str, bench: str | None, limit: int | None, orders: str) -> None:
        """Queue the run for a worker (which loads the judge: never torch in the TUI); the TUI only watches it."""
        from pathlib import Path

        from core.evaluation.bench import resolve_bench_dir
        from workbench.jobs.evaluate import EVAL, EvalParams
        from workbench.jobs.queue import enqueue

        try:
            folder = str(Path(resolve_bench_dir(bench)).expanduser().resolve())
            params = EvalParams(judge=judge_spec, bench_dir=folder, orders=orders, limit=limit)
            job = enqueue(self.app.engine, EVAL.name, params)  # type: ignore[attr-defined]
        except WorkbenchError as exc:
            self.post_message(self.JobChanged(None, f"cannot start: {exc}"))
            return
        self.post_message(self.JobChanged(job, f"job {job.id} {job.state}: {job.title}"))

    def _watch_job(self) -> None:
        """Follow the eval job started here (or the latest one, for a TUI opened while one runs)."""
        from stores.jobs import get_job, list_jobs

        engine = self.app.engine  # type: ignore[attr-defined]
        shown = self.eval_job
        if shown is not None and shown.is_active:
            job = get_job(engine, shown.id)
        elif shown is None:
            latest = list_jobs(engine, kind="eval", limit=1, active_only=True)
            if not latest:
                return
            job = latest[0]
        else:
            return
        if shown is None or job.updated_at != shown.updated_at or job.state != shown.state:
            self.post_message(self.JobChanged(job))

    @on(JobChanged)
    def follow_job(self, message: JobChanged) -> None:
        if message.note:
            self.notify(message.note, markup=False, timeout=4)
        if message.job is not None:
            self.eval_job = message.job
            run_id = message.job.params.get("run_id") or message.job.summary.get("run_id")
            if run_id is not None and self.selected_run != int(run_id):
                self.selected_run = int(run_id)
                self.selected_objective = None
        self.query_one("#start", Button).disabled = self.eval_job is not None and self.eval_job.is_active
