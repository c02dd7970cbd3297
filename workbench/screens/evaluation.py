"""EvaluationScreen: start CodePrefBench runs, follow every run live on a leaderboard, compare, drill down.

The panels are tabs: more evaluation views (arenas, policy models) are added as TabPanes in `panes()`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from core.errors import WorkbenchError
from core.evaluation.bench import BENCH_ENV_VAR, BenchTask, shown_codes
from core.evaluation.models import EvalResultInfo, EvalRunInfo, LeaderboardEntry
from core.evaluation.scoring import RunScores, format_accuracy
from core.execution.records import PolicyEvalInfo
from core.jobs import JobInfo
from core.textsafe import one_line
from stores.versions import evaluation_stamp
from workbench.jobs.forms import eval_form
from workbench.screens.base import StageScreen
from workbench.screens.dialogs import confirm
from workbench.widgets.arena_panel import ArenaPanel
from workbench.widgets.plain import cell, code, line
from workbench.widgets.polling import poll_unless_busy
from workbench.widgets.tables import fill_table

REFRESH_SECONDS = 1.0
JUDGE_LIMIT = 28
_STATE_STYLE = {"running": "bold green", "queued": "yellow", "done": "", "stopped": "yellow", "interrupted": "yellow",
                "cancelled": "yellow", "stalled": "yellow",
                "failed": "red"}
NO_RUNS = ("No evaluation runs yet: give a judge (baseline:shorter, pair-rm:PATH or a model spec) and the "
           "benchmark folder above, then ctrl+s.")


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
            yield Static(line(f"{view.task.objective} · {view.task.uid} · ground truth: code {better} is better"),
                         classes="title")
            yield TextArea(code(view.task.instruction), read_only=True, id="task-instruction", soft_wrap=True)
            with Horizontal(id="task-codes"):
                yield TextArea(code(view.code_a), read_only=True, language="python", id="task-code-a")
                yield TextArea(code(view.code_b), read_only=True, language="python", id="task-code-b")
            outputs = "\n\n".join(
                f"[{r.order} order] decision {r.decision} (truth {r.gt}), {r.latency_s:.3f} s, "
                f"{r.prompt_tokens}+{r.completion_tokens} tokens\n{r.raw_output}"
                for r in view.results
            )
            yield TextArea(code(outputs or "no result yet"), read_only=True, id="task-outputs", soft_wrap=True)
        yield Footer(compact=True)


class EvaluationScreen(StageScreen):
    """Shows every evaluation run as a leaderboard (live), the selected run's scores, and its results."""

    CSS_PATH = "evaluation.tcss"
    MAIN = "#board"
    BINDINGS = [
        Binding("ctrl+s", "start", "Start run"),
        Binding("ctrl+x", "stop", "Stop run"),
        Binding("slash", "focus_form", "Form"),
        Binding("r", "refresh", "Reload"),
        Binding("a", "toggle_arena", "Arena"),
    ]
    # The CodePrefBench widgets, hidden while the arena panel is shown.
    BENCH_PARTS = ("#eval-form", "#eval-status")

    class Refreshed(Message):
        def __init__(self, stamp: object, entries: list[LeaderboardEntry], selected: LeaderboardEntry | None,
                     policy_evals: list[PolicyEvalInfo]) -> None:
            super().__init__()
            self.stamp = stamp
            self.entries = entries
            self.selected = selected
            self.policy_evals = policy_evals
            self.policy_evals = policy_evals

    class ResultsLoaded(Message):
        def __init__(self, run_id: int, objective: str, results: list[EvalResultInfo]) -> None:
            super().__init__()
            self.run_id = run_id
            self.objective = objective
            self.results = results

    class JobChanged(Message):
        """The eval job this screen started or follows changed (queued, its run created, ended)."""

        def __init__(self, job: JobInfo | None, note: str = "", failed: bool = False, queued: bool = False) -> None:
            super().__init__()
            self.job = job
            self.note = note
            self.failed = failed
            self.queued = queued  # the answer to this screen's start: the form's values accepted or refused

    class TaskLoaded(Message):
        def __init__(self, view: TaskView) -> None:
            super().__init__()
            self.view = view

    def __init__(self) -> None:
        super().__init__()
        self.selected_run: int | None = None
        self.selected_objective: str | None = None
        self.eval_job: JobInfo | None = None
        self._stamp: object | None = None
        self._entries: list[LeaderboardEntry] = []
        self._result_ids: list[str] = []

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="eval-form"):
            judge = Input(placeholder="baseline:shorter", id="judge")
            judge.border_title = "judge"
            yield judge
            bench = Input(value=os.environ.get(BENCH_ENV_VAR, ""), placeholder="CodePrefBench folder", id="bench")
            bench.border_title = "benchmark"
            yield bench
            limit = Input(placeholder="all", id="limit")
            limit.border_title = "limit"
            yield limit
            yield Checkbox("given order only", id="given-only")
            yield Button("Start ^s", id="start", variant="primary")
        yield Static(id="eval-status", classes="muted")
        with TabbedContent(id="eval-tabs"):
            yield from self.panes()
        yield Footer(compact=True)

    def panes(self) -> ComposeResult:
        """The evaluation views, one tab each."""
        with TabPane("Leaderboard", id="leaderboard-pane"):
            yield DataTable(id="board", cursor_type="row")
            yield Static("Scores of the highlighted run (± 95% band, undecided = ½) · enter lists results",
                         classes="title", markup=False)
            yield DataTable(id="scores", cursor_type="row")
        with TabPane("Results", id="results-pane"):
            yield Static("Results (enter opens the task; escape returns to the leaderboard)", classes="title",
                         markup=False)
            yield DataTable(id="results", cursor_type="row")
        with TabPane("Policy", id="policy-pane"):
            yield Static("Policy models: pass@k, runtime, length (held-out problems)", classes="title", markup=False)
            yield DataTable(id="policy", cursor_type="row")
        with TabPane("Arena", id="arena-pane"):
            yield ArenaPanel(id="arena")

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
        self.refresh_data(None, None)
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "eval-refresh", self.poll))

    def on_screen_resume(self) -> None:
        self.poll()

    def poll(self) -> None:
        self.refresh_data(self._stamp, self.selected_run)

    def action_refresh(self) -> None:
        self.refresh_data(None, self.selected_run)

    def action_navigate(self) -> None:
        self.query_one(TabbedContent).active = "leaderboard-pane"
        self.board.focus()

    def action_focus_form(self) -> None:
        self.query_one("#judge", Input).focus()

    def _say(self, text: str, failed: bool = False) -> None:
        status = self.query_one("#eval-status", Static)
        status.update(line(text, 400))
        status.set_class(failed, "-failed")

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="eval-refresh", exit_on_error=False)
    def refresh_data(self, known: object | None, selected_run: int | None) -> None:
        from stores.evaluation.runs import get_run, leaderboard, run_scores
        from stores.execution.evals import list_policy_evals

        self._watch_job()
        # Policy evaluations live in the execution stage's tables, outside the evaluation stamp.
        policy_evals = list_policy_evals(self.engine, limit=100)
        stamp = (evaluation_stamp(self.engine), tuple((p.id, p.state, str(p.metrics)) for p in policy_evals))
        if stamp == known:
            return
        # Every run, new and running ones too, so a run started anywhere shows at once.
        entries = leaderboard(self.engine, limit=100, with_empty=True)
        selected = None
        if selected_run is not None:
            selected = next((e for e in entries if e.run.id == selected_run), None)
            if selected is None:
                run = get_run(self.engine, selected_run)
                selected = LeaderboardEntry(run=run, scores=run_scores(self.engine, run.id))
        self.post_message(self.Refreshed(stamp, entries, selected, policy_evals))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        self._stamp = message.stamp
        self._entries = message.entries
        board = self.board
        current = self._entries_run_at(board.cursor_row)
        fill_table(board, [self._board_row(entry) for entry in message.entries])
        if message.entries:
            ids = [entry.run.id for entry in message.entries]
            board.move_cursor(row=ids.index(current) if current in ids else 0)
        else:
            self._say(NO_RUNS)
        if message.selected is not None:
            self._show_scores(message.selected.run, message.selected.scores)
        elif self.selected_run is None and message.entries:
            self.selected_run = message.entries[board.cursor_row].run.id
            self.refresh_data(None, self.selected_run)
        self._show_policy_evals(message.policy_evals)

    def _show_policy_evals(self, evals: list[PolicyEvalInfo]) -> None:
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
        fill_table(self.policy_table, rows)

    def _entries_run_at(self, row: int) -> int | None:
        return self._entries[row].run.id if 0 <= row < len(self._entries) else None

    @staticmethod
    def _board_row(entry: LeaderboardEntry) -> list[Text]:
        scores, run = entry.scores, entry.run

        def acc(objective: str) -> str:
            score = scores.get(objective)
            return _pct(score.headline) if score else ""

        return [
            cell(run.id), cell(run.judge_spec, JUDGE_LIMIT), cell(run.protocol),
            cell(run.state, style=_STATE_STYLE.get(run.state, "")),
            cell(f"{run.done}/{run.total}"), cell(acc("correctness")), cell(acc("efficiency")),
            cell(acc("security")), cell(_pct(scores.verifiable_average)), cell(acc("human-preference")),
        ]

    def _show_scores(self, run: EvalRunInfo, scores: RunScores) -> None:
        totals = run.objective_totals
        table = self.scores_table
        row = table.cursor_row
        rows = []
        for objective in run.objectives:
            score = scores.get(objective)
            done = score.results if score else 0
            total = totals.get(objective)
            rows.append([
                cell(objective),
                cell(f"{done}/{total}" if total else str(done)),
                cell(format_accuracy(score.given_accuracy, score.given_band) if score else ""),
                cell(format_accuracy(score.both_accuracy, score.both_band) if score else ""),
                cell(_pct(score.consistency) if score else ""),
                cell(str(score.undecided) if score else ""),
            ])
        rows.append([Text("verifiable avg", style="bold"), cell(f"{run.done}/{run.total}"),
                     cell(_pct(scores.verifiable_average)), cell(_pct(scores.verifiable_both_average)),
                     cell(""), cell("")])
        fill_table(table, rows)
        if rows:
            table.move_cursor(row=min(row, len(rows) - 1))
        self._say(f"run {run.id} · {run.judge_spec} · protocol {run.protocol} · {run.state} · "
                  f"benchmark {run.bench_version}", failed=run.state == "failed")

    @on(DataTable.RowHighlighted, "#board")
    def follow_board(self, event: DataTable.RowHighlighted) -> None:
        run_id = self._entries_run_at(event.cursor_row)
        if run_id is not None and run_id != self.selected_run:
            self.selected_run = run_id
            self.selected_objective = None
            self.results_table.clear()
            self.refresh_data(None, run_id)

    @on(DataTable.RowSelected, "#board")
    def select_run(self, event: DataTable.RowSelected) -> None:
        run_id = self._entries_run_at(event.cursor_row)
        if run_id is None:
            return
        if run_id != self.selected_run:
            self.selected_run = run_id
            self.selected_objective = None
            self.results_table.clear()
            self.refresh_data(None, run_id)
        self.scores_table.focus()

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

        results = list_results(self.engine, run_id, objective=objective, limit=2000)
        self.post_message(self.ResultsLoaded(run_id, objective, results))

    @on(ResultsLoaded)
    def show_results(self, message: ResultsLoaded) -> None:
        self._result_ids = [r.task_id for r in message.results]
        fill_table(self.results_table, [
            [cell(r.task_id, 60), cell(r.order), cell(r.gt),
             cell(r.decision, style="green" if r.decision == r.gt else ("yellow" if r.decision == "?" else "red")),
             cell(f"{r.latency_s:.3f}"), cell(r.raw_output, 60)]
            for r in message.results
        ])
        self.query_one(TabbedContent).active = "results-pane"
        self.results_table.focus()

    @on(DataTable.RowSelected, "#results")
    def open_task(self, event: DataTable.RowSelected) -> None:
        if self.selected_run is None or self.selected_objective is None:
            return
        task_id = self._result_task(event.cursor_row)
        if task_id is not None:
            self.load_task(self.selected_run, self.selected_objective, task_id)

    def _result_task(self, row: int) -> str | None:
        return self._result_ids[row] if 0 <= row < len(self._result_ids) else None

    @work(thread=True, exclusive=True, group="eval-task", exit_on_error=False)
    def load_task(self, run_id: int, objective: str, task_id: str) -> None:
        from stores.evaluation.runs import get_run, task_results
        from workbench.jobs.evaluate import run_benchmark

        run = get_run(self.engine, run_id)
        task = run_benchmark(self.engine, run).task(objective, task_id)
        code_a, code_b = shown_codes(task, strip=run.strip_comments, protocol=run.protocol)
        view = TaskView(run=run, task=task, code_a=code_a, code_b=code_b,
                        results=tuple(task_results(self.engine, run_id, objective, task_id)))
        self.post_message(self.TaskLoaded(view))

    @on(TaskLoaded)
    def show_task(self, message: TaskLoaded) -> None:
        self.app.push_screen(TaskDetailScreen(message.view))

    # start and stop ----------------------------------------------------------------------------

    @on(Button.Pressed, "#start")
    def start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        if self.query_one("#start", Button).disabled:
            return
        try:  # the CLI's checks, before anything loads
            spec, limit = eval_form(self.query_one("#judge", Input).value, self.query_one("#limit", Input).value)
        except WorkbenchError as exc:
            self._refuse(f"error: {exc}")
            return
        self.query_one("#start", Button).disabled = True
        self._say(f"queueing {spec.text}…")
        self.queue_eval(
            spec.text,
            self.query_one("#bench", Input).value.strip() or None,
            limit,
            "given" if self.query_one("#given-only", Checkbox).value else "both",
        )

    def _refuse(self, text: str) -> None:
        """Say why the form was refused, with the focus in the form so that what is typed next corrects it."""
        self._say(text, failed=True)
        form = self.query_one("#eval-form")
        if self.focused is None or form not in self.focused.ancestors_with_self:
            self.query_one("#judge", Input).focus()

    def action_stop(self) -> None:
        arena = self.query_one(ArenaPanel)
        if arena.display and any(w.group == "arena-run" and w.is_running for w in arena.workers):
            confirm(self.app, "Stop the arena judging started here?",
                    "It stops after the items in flight; the judgements stay and judging again resumes.",
                    "Stop the judging", arena.stop)
            return
        entry = next((e for e in self._entries if e.run.id == self.selected_run), None)
        job = self.eval_job
        if job is not None and job.is_active and (entry is None or entry.run.job_id in (None, job.id)):
            job_id: int | None = job.id
            title = f"Stop evaluation job {job.id}?"
        elif entry is not None and entry.run.state == "running" and entry.run.job_id is not None:
            job_id = entry.run.job_id
            title = f"Stop evaluation run {entry.run.id}?"
        else:
            self.notify("No running evaluation selected.", markup=False)
            return
        confirm(self.app, title, "It stops after the current batch; the results stay and starting it again resumes.",
                "Stop the run", lambda: self.cancel_eval(job_id, None))

    def action_toggle_arena(self) -> None:
        """Switch between the CodePrefBench views and the arena tab."""
        tabs = self.query_one(TabbedContent)
        tabs.active = "leaderboard-pane" if tabs.active == "arena-pane" else "arena-pane"

    @on(TabbedContent.TabActivated, "#eval-tabs")
    def tab_changed(self, event: TabbedContent.TabActivated) -> None:
        # The arena has its own form; the panel polls the store only while it is shown.
        arena = self.query_one(ArenaPanel)
        arena.display = event.pane.id == "arena-pane"
        for selector in self.BENCH_PARTS:
            self.query_one(selector).display = not arena.display
        if arena.display:
            arena.refresh_data()
            arena.runs_table.focus()

    @work(thread=True, exclusive=True, group="eval-cancel", exit_on_error=False)
    def cancel_eval(self, job_id: int | None, run_id: int | None) -> None:
        from stores.evaluation.runs import get_run
        from stores.jobs import request_cancel

        if job_id is None and run_id is not None:
            job_id = get_run(self.engine, run_id).job_id
        if job_id is not None:
            job = request_cancel(self.engine, job_id)
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
            job = enqueue(self.engine, EVAL.name, params)
        except WorkbenchError as exc:
            self.post_message(self.JobChanged(None, f"error: {exc}", failed=True, queued=True))
            return
        self.post_message(self.JobChanged(job, queued=True))

    def _watch_job(self) -> None:
        """Follow the eval job started here (or the latest one, for a TUI opened while one runs)."""
        from stores.jobs import get_job, list_jobs

        shown = self.eval_job
        if shown is not None and shown.is_active:
            job = get_job(self.engine, shown.id)
        elif shown is None:
            latest = list_jobs(self.engine, kind="eval", limit=1, active_only=True)
            if not latest:
                return
            job = latest[0]
        else:
            return
        if shown is None or job.updated_at != shown.updated_at or job.state != shown.state:
            self.post_message(self.JobChanged(job))

    @on(JobChanged)
    def follow_job(self, message: JobChanged) -> None:
        if message.queued and message.job is None:
            self.query_one("#start", Button).disabled = self.eval_job is not None and self.eval_job.is_active
            self._refuse(message.note)
            return
        if message.queued:
            self.board.focus()  # out of the form: the global keys must not type into it
        if message.failed:
            self._say(message.note, failed=True)
            self.notify(one_line(message.note, 300), severity="error", markup=False, timeout=8)
        elif message.note:
            self.notify(one_line(message.note, 300), markup=False, timeout=4)
        job = message.job
        if job is not None:
            ended = self.eval_job is not None and self.eval_job.id == job.id and self.eval_job.is_active \
                and not job.is_active
            self.eval_job = job
            line_text = f"job {job.id} {job.state}: {job.title}"
            if job.state == "queued":
                line_text += " (waiting for a worker)"
            if job.error:
                line_text += f": {job.error}"
            self._say(line_text, failed=job.state == "failed")
            if job.state == "failed" and ended:
                self.notify(one_line(line_text, 300), severity="error", markup=False, timeout=8)
            run_id = job.params.get("run_id") or job.summary.get("run_id")
            if run_id is not None and self.selected_run != int(run_id):
                self.selected_run = int(run_id)
                self.selected_objective = None
                self.refresh_data(None, self.selected_run)
            elif ended:
                self.refresh_data(None, self.selected_run)
        self.query_one("#start", Button).disabled = self.eval_job is not None and self.eval_job.is_active
