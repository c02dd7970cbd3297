"""EvaluationScreen: start CodePrefBench runs, watch per-objective scores live, compare, drill down."""

from __future__ import annotations

import os
import threading
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
from textual.worker import Worker, WorkerState

from core.errors import WorkbenchError
from core.evaluation.bench import BENCH_ENV_VAR, BenchTask, shown_codes
from core.evaluation.models import EvalProgress, EvalResultInfo, EvalRunInfo, LeaderboardEntry
from core.evaluation.scoring import RunScores, format_accuracy
from core.execution.records import PolicyEvalInfo
from core.textsafe import one_line
from workbench.jobs.forms import eval_form
from workbench.widgets.arena_panel import ArenaPanel

REFRESH_SECONDS = 1.0
_STATE_STYLE = {"running": "bold green", "done": "", "stopped": "yellow", "interrupted": "yellow", "cancelled": "yellow",
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

    class Progressed(Message):
        def __init__(self, event: EvalProgress) -> None:
            super().__init__()
            self.event = event

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, EvaluationScreen.Progressed)

    class TaskLoaded(Message):
        def __init__(self, view: TaskView) -> None:
            super().__init__()
            self.view = view

    def __init__(self) -> None:
        super().__init__()
        self.selected_run: int | None = None
        self.selected_objective: str | None = None
        self.stop_event = threading.Event()

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
        self.set_interval(REFRESH_SECONDS, self.refresh_data)

    def action_refresh(self) -> None:
        self.refresh_data()

    @work(thread=True, exclusive=True, group="eval-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        from stores.evaluation.runs import get_run, leaderboard, run_scores
        from stores.execution.evals import list_policy_evals

        engine = self.app.engine  # type: ignore[attr-defined]
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
        self.stop_event = threading.Event()
        self.query_one("#start", Button).disabled = True
        self.run_eval(
            spec.text,
            self.query_one("#bench", Input).value.strip() or None,
            limit,
            "given" if self.query_one("#given-only", Checkbox).value else "both",
        )

    def action_stop(self) -> None:
        self.stop_event.set()
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

    @work(thread=True, exclusive=True, group="eval-run", exit_on_error=False)
    def run_eval(self, judge_spec: str, bench: str | None, limit: int | None, orders: str) -> None:
        from core.evaluation.bench import load_benchmark, resolve_bench_dir
        from core.evaluation.judges import make_judge, parse_judge_spec
        from stores.evaluation.runs import create_run
        from workbench.jobs.evaluate import run_evaluation

        engine = self.app.engine  # type: ignore[attr-defined]
        parse_judge_spec(judge_spec)
        benchmark = load_benchmark(resolve_bench_dir(bench))
        judge = make_judge(judge_spec)
        try:
            run_id = create_run(
                engine, judge_spec=judge.spec.text, judge_kind=judge.spec.kind, benchmark=benchmark,
                objectives=tuple(benchmark.tasks), orders=orders, task_limit=limit, lineage=judge.lineage,
            )
            for event in run_evaluation(engine, run_id, judge, benchmark, cancel=self.stop_event):
                if isinstance(event, EvalProgress):
                    self.post_message(self.Progressed(event))
        finally:
            judge.close()

    @on(Progressed)
    def show_progress(self, message: Progressed) -> None:
        if self.selected_run != message.event.run_id:
            self.selected_run = message.event.run_id
            self.selected_objective = None
        self.refresh_data()

    @on(Worker.StateChanged)
    def run_ended(self, event: Worker.StateChanged) -> None:
        if event.worker.group == "eval-run" and event.state in (
            WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED
        ):
            self.query_one("#start", Button).disabled = False
            self.refresh_data()

