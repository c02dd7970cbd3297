"""TrainingScreen: training runs with live loss and learning-rate curves, GPU panel, log tail, cancel and merge."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, DataTable, Footer, Header, Input, Label, Log, Static

from core.errors import OptionError, WorkbenchError
from core.outputs import check_output_folder
from core.textsafe import one_line
from core.training.runs import MetricPoint, TrainRunInfo
from core.training.weights import merge_weights
from stores.training.runs import cancel_train_run, list_metrics, list_train_runs, read_log_tail
from workbench.widgets.polling import poll_unless_busy

REFRESH_SECONDS = 1.0
LOG_LINES = 200


@dataclass(frozen=True)
class MergeRequest:
    """What the merge dialog asks for."""

    checkpoints: tuple[str, ...]
    weights: tuple[float, ...]
    out_dir: str


class MergeDialog(ModalScreen[MergeRequest | None]):
    """Asks for checkpoint folders, weights and an output folder."""

    BINDINGS = [Binding("escape", "dismiss_dialog", "Close")]
    DEFAULT_CSS = """
    MergeDialog { align: center middle; }
    MergeDialog > Vertical { width: 90; height: auto; border: thick $primary; background: $panel; padding: 1 2; }
    MergeDialog #merge-error { color: $error; height: auto; }
    """

    def __init__(self, checkpoints: list[str]) -> None:
        super().__init__()
        self._checkpoints = checkpoints

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Merge checkpoints (a weighted average, streamed tensor by tensor)")
            yield Input(" ".join(self._checkpoints), placeholder="checkpoint folders, space-separated", id="merge-inputs")
            yield Input(placeholder="weights, e.g. 0.5 0.5 (default: equal)", id="merge-weights")
            yield Input(placeholder="output folder", id="merge-out")
            yield Static(id="merge-error", markup=False)
            yield Button("Merge", variant="primary", id="merge-start")

    def action_dismiss_dialog(self) -> None:
        self.dismiss(None)

    @on(Button.Pressed, "#merge-start")
    @on(Input.Submitted)
    def submit(self) -> None:
        inputs = self.query_one("#merge-inputs", Input).value.split()
        weights_text = self.query_one("#merge-weights", Input).value.replace(",", " ").split()
        out_dir = self.query_one("#merge-out", Input).value.strip()
        try:
            if not out_dir:
                raise OptionError("give an output folder")
            weights = merge_weights(weights_text, len(inputs))  # the CLI's checks, before any tensor is read
            check_output_folder(out_dir, what="output folder")
        except OptionError as exc:
            self.query_one("#merge-error", Static).update(Content(one_line(str(exc))))
            return
        self.dismiss(MergeRequest(tuple(inputs), tuple(weights), out_dir))


class TrainingScreen(Screen[None]):
    """Shows training runs; the selected one's curves, GPU and throughput figures and log tail, live."""

    CSS_PATH = "training.tcss"
    BINDINGS = [
        Binding("x", "cancel_run", "Cancel run"),
        Binding("m", "merge", "Merge"),
    ]

    class Refreshed(Message):
        """Fresh data from the store for the run table and the selected run."""

        def __init__(self, runs: list[TrainRunInfo], job_id: int | None, points: list[MetricPoint],
                     log_lines: list[str], reset: bool) -> None:
            super().__init__()
            self.runs = runs
            self.job_id = job_id
            self.points = points
            self.log_lines = log_lines
            self.reset = reset

    class MergeProgressed(Message):
        """A merge worker's progress line."""

        def __init__(self, line: str, finished: bool = False, failed: bool = False) -> None:
            super().__init__()
            self.line = line
            self.finished = finished
            self.failed = failed

    def __init__(self) -> None:
        super().__init__()
        self._selected: int | None = None
        self._shown: int | None = None
        self._points: list[MetricPoint] = []
        self._runs: list[TrainRunInfo] = []
        self._merge_jobs: set[int] = set()  # merges queued from here, followed until they end

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal(id="top"):
            with Vertical(id="runs-panel", classes="panel"):
                yield Static("Training runs", classes="title")
                yield DataTable(id="runs", cursor_type="row")
            with Vertical(id="charts"):
                # Deferred: plotext costs a tenth of a second at start-up, paid only when shown.
                from textual_plotext import PlotextPlot

                yield PlotextPlot(id="loss-plot")
                yield PlotextPlot(id="lr-plot")
        with Horizontal(id="bottom"):
            yield Static(id="stats", classes="panel", markup=False)
            yield Log(id="log-tail", classes="panel", max_lines=2000)
        yield Footer()

    @property
    def run_table(self) -> DataTable[Text]:
        return self.query_one("#runs", DataTable)

    def on_mount(self) -> None:
        self.run_table.add_columns("id", "name", "state", "step", "loss")
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "training-refresh", self.refresh_data))

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="training-refresh", exit_on_error=False)
    def refresh_data(self) -> None:
        engine = self.app.engine  # type: ignore[attr-defined]
        if self._merge_jobs:
            self._check_merges()
        runs = list_train_runs(engine, limit=200)
        selected = self._selected if self._selected is not None else (runs[0].job_id if runs else None)
        reset = selected != self._shown
        after = -1 if reset or not self._points else self._points[-1].step
        points = list_metrics(engine, selected, after_step=after) if selected is not None else []
        run = next((r for r in runs if r.job_id == selected), None)
        log_lines = read_log_tail(run.log_path, max_lines=LOG_LINES) if run else []
        self.post_message(self.Refreshed(runs, selected, points, log_lines, reset))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        self._runs = message.runs
        self._show_runs(message.runs)
        if message.reset:
            self._points = []
            self._shown = message.job_id
        self._points.extend(message.points)
        run = next((r for r in message.runs if r.job_id == message.job_id), None)
        self._show_curves()
        self._show_stats(run)
        log = self.query_one("#log-tail", Log)
        log.clear()
        log.write_lines(message.log_lines)

    def _show_runs(self, runs: list[TrainRunInfo]) -> None:
        table = self.run_table
        row = table.cursor_row
        table.clear()
        table.add_rows([
            (Text(str(r.job_id)), Text(r.name[:28]), Text(r.state), Text(f"{r.step}/{r.total_steps or '?'}"),
             Text(f"{r.latest['loss']:.4g}" if isinstance(r.latest.get("loss"), float) else ""))
            for r in runs
        ])
        if runs:
            table.move_cursor(row=min(row, len(runs) - 1), animate=False)

    def _show_curves(self) -> None:
        from textual_plotext import PlotextPlot

        steps = [p.step for p in self._points]
        for plot_id, values, title in (
            ("#loss-plot", [p.loss for p in self._points], "loss"),
            ("#lr-plot", [p.lr for p in self._points], "learning rate"),
        ):
            plot = self.query_one(plot_id, PlotextPlot)
            plot.plt.clear_data()
            plot.plt.title(title)
            if steps:
                plot.plt.plot(steps, values, marker="braille")
            plot.refresh()

    def _show_stats(self, run: TrainRunInfo | None) -> None:
        stats = self.query_one("#stats", Static)
        if run is None:
            stats.update(Content("No training runs yet: start one with `workbench train RECIPE`."))
            return
        latest = run.latest

        def figure(key: str, unit: str = "", digits: int = 4) -> str:
            value = latest.get(key)
            return f"{value:.{digits}g}{unit}" if isinstance(value, (int, float)) else "-"

        eta = latest.get("eta_s")
        lines = [
            f"run {run.job_id} · {run.name} · {run.state}",
            f"step {run.step}/{run.total_steps or '?'}   ETA {_duration(eta) if isinstance(eta, (int, float)) and run.is_active else '-'}",
            f"loss {figure('loss')}   lr {figure('lr')}   grad norm {figure('grad_norm')}",
            f"throughput {figure('tokens_per_s', ' tok/s', 5)}   {figure('samples_per_s', ' samples/s')}",
            f"model {figure('model_tflops_per_s', ' TFLOP/s', 3)}   MFU {figure('mfu', '', 2)}",
            f"GPU memory {figure('gpu_mem_gb', ' GiB', 3)}   utilisation {figure('gpu_util', ' %', 3)}",
            f"phase {latest.get('phase', '-')}",
        ]
        if latest.get("checkpoint"):
            lines.append(f"checkpoint {latest['checkpoint']}")
        if run.error:
            lines.append(f"error: {run.error}")
        stats.update(Content("\n".join(lines)))

    @on(DataTable.RowHighlighted, "#runs")
    def select_run(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._runs):
            chosen = self._runs[event.cursor_row].job_id
            if chosen != self._selected:
                self._selected = chosen
                self.refresh_data()

    def action_cancel_run(self) -> None:
        run = next((r for r in self._runs if r.job_id == self._shown), None)
        if run is None or not run.is_active:
            self.notify("No running run selected.", markup=False)
            return
        self.cancel_selected(run.job_id)

    @work(thread=True, exclusive=True, group="training-cancel", exit_on_error=False)
    def cancel_selected(self, job_id: int) -> None:
        cancel_train_run(self.app.engine, job_id)  # type: ignore[attr-defined]
        self.post_message(self.MergeProgressed(f"cancel requested for run {job_id}"))

    def action_merge(self) -> None:
        latest = [r.latest["checkpoint"] for r in self._runs[:2] if r.latest.get("checkpoint")]
        self.app.push_screen(MergeDialog(latest), self._start_merge)

    def _start_merge(self, request: MergeRequest | None) -> None:
        if request is not None:
            self.merge(request)

    @work(thread=True, exclusive=True, group="merge", exit_on_error=False)
    def merge(self, request: MergeRequest) -> None:
        """Queue the merge for a worker (torch loads there, never in the TUI); follow it until it ends."""
        from workbench.jobs.merge import MERGE, merge_params
        from workbench.jobs.queue import enqueue

        try:
            job = enqueue(self.app.engine, MERGE.name,  # type: ignore[attr-defined]
                          merge_params(request.checkpoints, request.weights, request.out_dir))
        except WorkbenchError as exc:
            self.post_message(self.MergeProgressed(f"merge failed: {exc}", True, True))
            return
        self._merge_jobs.add(job.id)
        self.post_message(self.MergeProgressed(f"merge queued as job {job.id}"))

    def _check_merges(self) -> None:
        from stores.jobs import get_job

        for job_id in sorted(self._merge_jobs):
            job = get_job(self.app.engine, job_id)  # type: ignore[attr-defined]
            if job.is_active:
                continue
            self._merge_jobs.discard(job_id)
            if job.state == "done":
                verdict = "verified" if job.summary.get("verified") else "not verified"
                self.post_message(self.MergeProgressed(f"merged into {job.summary.get('out')}: {verdict}", True))
            else:
                self.post_message(self.MergeProgressed(f"merge job {job.id} {job.state}: {job.error or ''}", True, True))

    @on(MergeProgressed)
    def show_merge_progress(self, message: MergeProgressed) -> None:
        self.notify(one_line(message.line), markup=False, severity="error" if message.failed else "information")


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
