"""ProblemsScreen: problems with tests and their solution counts; the selected one's prompt, tests and solutions."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.coordinate import Coordinate
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TextArea

from core.execution.records import ProblemDetail, ProblemInfo, SolutionInfo
from core.textsafe import one_line, visible

REFRESH_SECONDS = 2.0
PAGE_SIZE = 2000
_VERDICT_STYLE = {"passed": "green", "failed": "red", "timeout": "yellow"}


def _problem_cells(problem: ProblemInfo) -> list[Text]:
    counts = problem.counts
    return [Text(str(problem.id)), Text(one_line(problem.task_id, 24)), Text(problem.source),
            Text(str(counts.samples)), Text(str(counts.passed), style="green" if counts.passed else ""),
            Text(str(counts.failing)), Text(str(counts.unstable)), Text(str(problem.pairs))]


def _solution_cells(solution: SolutionInfo) -> list[Text]:
    verdict = solution.status or solution.exec_state
    median = "" if solution.runtime_median_s is None else f"{solution.runtime_median_s * 1e3:.4g}"
    cv = "" if solution.runtime_cv is None else f"{solution.runtime_cv:.2f}"
    return [Text(str(solution.id)), Text(str(solution.sample_index)),
            Text(verdict, style=_VERDICT_STYLE.get(solution.status, "")), Text(median), Text(cv),
            Text(str(len(solution.code))), Text(one_line(solution.detail, 60))]


class ProblemsScreen(Screen[None]):
    """Shows the stored problems, then the selected problem's prompt, tests and sampled solutions."""

    CSS_PATH = "problems.tcss"
    AUTO_FOCUS = "#problems"
    BINDINGS = [Binding("r", "refresh", "Refresh")]

    class Listed(Message):
        def __init__(self, problems: list[ProblemInfo]) -> None:
            super().__init__()
            self.problems = problems

    class Opened(Message):
        def __init__(self, detail: ProblemDetail, solutions: list[SolutionInfo]) -> None:
            super().__init__()
            self.detail = detail
            self.solutions = solutions

    def __init__(self) -> None:
        super().__init__()
        self.selected_problem: int | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="problems-top"):
            with Vertical(id="problems-panel", classes="panel"):
                yield Static("Problems (enter: open)", classes="title")
                yield DataTable(id="problems", cursor_type="row", zebra_stripes=True)
            with Vertical(id="problem-panel", classes="panel"):
                yield Static("no problem selected", id="problem-title", classes="title")
                yield TextArea("", read_only=True, language="python", id="problem-text", soft_wrap=True)
        with Vertical(id="solutions-panel", classes="panel"):
            yield Static("Solutions (median and coefficient of variation of CPU time per run)", classes="title")
            yield DataTable(id="solutions", cursor_type="row")
        yield Footer()

    @property
    def problem_table(self) -> DataTable[Text]:
        return self.query_one("#problems", DataTable)

    @property
    def solution_table(self) -> DataTable[Text]:
        return self.query_one("#solutions", DataTable)

    def on_mount(self) -> None:
        self.problem_table.add_columns("id", "task", "source", "samples", "passed", "failing", "unstable", "pairs")
        self.solution_table.add_columns("id", "sample", "verdict", "median ms", "cv", "chars", "detail")
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, self.refresh_data)

    def action_refresh(self) -> None:
        self.refresh_data()

    @work(thread=True, exclusive=True, group="problems-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        from stores.execution.problems import list_problems

        self.post_message(self.Listed(list_problems(self.app.engine, limit=PAGE_SIZE)))  # type: ignore[attr-defined]
        if self.selected_problem is not None:
            self._load(self.selected_problem)

    def _load(self, problem_id: int) -> None:
        from stores.execution.problems import get_problem
        from stores.execution.solutions import list_solutions

        engine = self.app.engine  # type: ignore[attr-defined]
        self.post_message(self.Opened(get_problem(engine, problem_id), list_solutions(engine, problem_id=problem_id,
                                                                                       limit=PAGE_SIZE)))

    @on(Listed)
    def show_problems(self, message: Listed) -> None:
        table = self.problem_table
        row = table.cursor_row
        table.clear()
        table.add_rows([_problem_cells(problem) for problem in message.problems])
        if message.problems:
            table.move_cursor(row=min(row, len(message.problems) - 1))

    @on(DataTable.RowSelected, "#problems")
    def open_problem(self, event: DataTable.RowSelected) -> None:
        self.selected_problem = int(str(self.problem_table.get_cell_at(Coordinate(event.cursor_row, 0))))
        self.load_problem(self.selected_problem)

    @work(thread=True, exclusive=True, group="problem-load", exit_on_error=False)
    def load_problem(self, problem_id: int) -> None:
        self._load(problem_id)

    @on(Opened)
    def show_problem(self, message: Opened) -> None:
        detail, problem = message.detail, message.detail.problem
        counts = detail.counts
        self.query_one("#problem-title", Static).update(Content(one_line(
            f"{counts.passed}/{counts.executed} passed · {detail.pairs} pairs · {problem.source} · "
            f"{problem.entry_point} · {problem.task_id}", 120)))
        text = visible(f"{problem.prompt.rstrip()}\n\n# tests\n{problem.test.strip()}\n")
        area = self.query_one("#problem-text", TextArea)
        if area.text != text:
            area.load_text(text)
        table = self.solution_table
        row = table.cursor_row
        table.clear()
        table.add_rows([_solution_cells(solution) for solution in message.solutions])
        if message.solutions:
            table.move_cursor(row=min(row, len(message.solutions) - 1))
