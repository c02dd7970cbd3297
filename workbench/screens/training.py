"""TrainingScreen: training runs with live loss and learning-rate curves, figures, log tail; start, cancel and merge."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Footer, Header, Log, Static

from core.textsafe import one_line
from core.training.checkpoints import RunCheckpoints, run_checkpoints
from core.training.runs import MetricPoint, TrainRunInfo
from stores.training.runs import cancel_train_run, list_metrics, list_train_runs, read_log_tail
from workbench.screens.base import StageScreen
from workbench.screens.dialogs import confirm
from workbench.screens.training_dialogs import MergeDialog, MergeRequest, TrainDialog, TrainRequest
from workbench.widgets.job_status import JobStatus
from workbench.widgets.plain import block, cell, code
from workbench.widgets.polling import poll_unless_busy
from workbench.widgets.tables import fill_table

REFRESH_SECONDS = 1.0
LOG_LINES = 200
NO_RUNS = ("No training runs yet. Press n to start one from a recipe (export pairs first: p, then E), "
           "or run `workbench train RECIPE`.")


def loss_text(value: Any) -> str:
    """A loss with four decimals (a loss of exactly 5 prints as 5.0000, not 5)."""
    return f"{value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else ""


@dataclass(frozen=True)
class _Snapshot:
    runs: list[TrainRunInfo]
    job_id: int | None
    points: list[MetricPoint]
    log_lines: list[str]
    reset: bool
    checkpoints: RunCheckpoints | None


class TrainingScreen(StageScreen):
    """Shows training runs; the selected one's curves, GPU and throughput figures and log tail, live."""

    CSS_PATH = "training.tcss"
    MAIN = "#runs"
    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("ctrl+x", "cancel_run", "Cancel run"),
        Binding("m", "merge", "Merge"),
    ]

    class Refreshed(Message):
        """Fresh data from the store for the run table and the selected run."""

        def __init__(self, snapshot: _Snapshot) -> None:
            super().__init__()
            self.snapshot = snapshot

    class Started(Message):
        def __init__(self, job_id: int | None, label: str, error: str = "") -> None:
            super().__init__()
            self.job_id = job_id
            self.label = label
            self.error = error

    class Dialog(Message):
        def __init__(self, kind: str, data: dict[str, Any]) -> None:
            super().__init__()
            self.kind = kind
            self.data = data

    def __init__(self) -> None:
        super().__init__()
        self._selected: int | None = None
        self._shown: int | None = None
        self._points: list[MetricPoint] = []
        self._runs: list[TrainRunInfo] = []

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
        yield JobStatus(id="job-status")
        yield Footer(compact=True)

    @property
    def run_table(self) -> DataTable[Text]:
        return self.query_one("#runs", DataTable)

    def on_mount(self) -> None:
        self.run_table.add_columns("id", "state", "step", "loss", "name")
        self.refresh_data()
        self.set_interval(REFRESH_SECONDS, poll_unless_busy(self, "training-refresh", self.refresh_data))

    def refresh_data(self) -> None:
        """Read the runs, and the selected run's new points and log tail, in a worker."""
        self.read_runs(self._selected, self._shown, self._points[-1].step if self._points else None)

    # Not exclusive: the timer skips a tick while one runs (workbench.widgets.polling).
    @work(thread=True, group="training-refresh", exit_on_error=False)
    def read_runs(self, wanted: int | None, shown: int | None, last_step: int | None) -> None:
        runs = list_train_runs(self.engine, limit=200)
        selected = wanted if wanted is not None else (runs[0].job_id if runs else None)
        reset = selected != shown
        after = -1 if reset or last_step is None else last_step
        points = list_metrics(self.engine, selected, after_step=after) if selected is not None else []
        run = next((r for r in runs if r.job_id == selected), None)
        log_lines = read_log_tail(run.log_path, max_lines=LOG_LINES) if run else []
        checkpoints = run_checkpoints(run.run_dir) if run is not None and not run.is_active else None
        self.post_message(self.Refreshed(_Snapshot(runs, selected, points, log_lines, reset, checkpoints)))

    @on(Refreshed)
    def show_data(self, message: Refreshed) -> None:
        snapshot = message.snapshot
        self._runs = snapshot.runs
        self._show_runs(snapshot.runs)
        if snapshot.reset:
            self._points = []
            self._shown = snapshot.job_id
        elif snapshot.job_id != self._shown:
            return  # read for a run that is no longer selected
        self._points.extend(snapshot.points)
        run = next((r for r in snapshot.runs if r.job_id == snapshot.job_id), None)
        self._show_curves()
        self._show_stats(run, snapshot.checkpoints)
        log = self.query_one("#log-tail", Log)
        log.clear()
        log.write_lines([code(text) for text in snapshot.log_lines])

    def _show_runs(self, runs: list[TrainRunInfo]) -> None:
        table = self.run_table
        row = table.cursor_row
        fill_table(table, [
            (cell(r.job_id), cell(r.state), cell(f"{r.step}/{r.total_steps or '?'}"),
             cell(loss_text(r.latest.get("loss"))), cell(r.name, 40))
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

    def _show_stats(self, run: TrainRunInfo | None, checkpoints: RunCheckpoints | None) -> None:
        stats = self.query_one("#stats", Static)
        if run is None:
            stats.update(block(NO_RUNS))
            return
        latest = run.latest

        def figure(key: str, unit: str = "", digits: int = 4) -> str:
            value = latest.get(key)
            return f"{value:.{digits}g}{unit}" if isinstance(value, (int, float)) else "-"

        eta = latest.get("eta_s")
        # The job's state is the truth once the run has ended; the trainer's last phase may say "running".
        phase = latest.get("phase", "-") if run.is_active else run.state
        lines = [
            (f"run {run.job_id} · {run.state} · step {run.step}/{run.total_steps or '?'} · ETA "
             f"{_duration(eta) if isinstance(eta, (int, float)) and run.is_active else '-'}"),
        ]
        if checkpoints is not None and run.state in ("cancelled", "failed"):
            lines.append(checkpoints.describe())
        if run.error:
            lines.append(f"error: {one_line(run.error, 300)}")
        lines += [
            f"loss {loss_text(latest.get('loss')) or '-'}   lr {figure('lr')}   grad norm {figure('grad_norm')}",
            f"throughput {figure('tokens_per_s', ' tok/s', 5)}   {figure('samples_per_s', ' samples/s')}",
            f"model {figure('model_tflops_per_s', ' TFLOP/s', 3)}   MFU {figure('mfu', '', 2)}",
            f"GPU memory {figure('gpu_mem_gb', ' GiB', 3)}   utilisation {figure('gpu_util', ' %', 3)}",
            f"phase {phase}",
        ]
        if latest.get("checkpoint"):
            lines.append(f"checkpoint {one_line(str(latest['checkpoint']), 200)}")
        lines.append(f"name {one_line(run.name, 200)}")
        stats.update(block("\n".join(lines)))

    @on(DataTable.RowHighlighted, "#runs")
    def select_run(self, event: DataTable.RowHighlighted) -> None:
        if 0 <= event.cursor_row < len(self._runs):
            chosen = self._runs[event.cursor_row].job_id
            if chosen != self._selected:
                self._selected = chosen
                self.refresh_data()

    # cancel ------------------------------------------------------------------------------------

    def action_cancel_run(self) -> None:
        run = next((r for r in self._runs if r.job_id == self._shown), None)
        if run is None or not run.is_active:
            self.notify("No running run selected.", markup=False)
            return
        confirm(self.app, f"Cancel training run {run.job_id} ({run.name})?",
                "The trainer stops after its current step and saves a checkpoint, which a re-run resumes from. "
                "If it is stopped while saving, only an unverified checkpoint folder is left.",
                "Cancel the run", lambda: self.cancel_selected(run.job_id))

    @work(thread=True, exclusive=True, group="training-cancel", exit_on_error=False)
    def cancel_selected(self, job_id: int) -> None:
        cancel_train_run(self.engine, job_id)
        self.post_message(self.Started(job_id, f"cancel requested for run {job_id}"))

    # start -------------------------------------------------------------------------------------

    def action_new_run(self) -> None:
        self.open_train_dialog()

    @work(thread=True, exclusive=True, group="training-dialog", exit_on_error=False)
    def open_train_dialog(self) -> None:
        from stores.training.exports import list_exports

        self.post_message(self.Dialog("train", {"recipes": _recipe_files(), "exports": list_exports(self.engine)}))

    @on(Dialog)
    def open_dialog(self, message: Dialog) -> None:
        if message.kind == "train":
            self.app.push_screen(TrainDialog(message.data["recipes"], message.data["exports"], self.start_run),
                                 self._run_started)
        elif message.kind == "merge":
            self.app.push_screen(MergeDialog(message.data["latest"], message.data["checkpoints"], self.merge),
                                 self._merge_queued)

    def start_run(self, request: TrainRequest) -> TrainRunInfo:
        """Start a training run (called by the train dialog in a thread; a refused recipe raises its error)."""
        from dataclasses import replace

        from core.training.recipes import DatasetSpec, load_train_recipe
        from workbench.jobs.train import start_training

        recipe = load_train_recipe(request.recipe)
        if request.export_id is not None:
            recipe = replace(recipe, datasets=(DatasetSpec(export=request.export_id),))
        if request.output_dir:
            recipe = replace(recipe, output_dir=request.output_dir)
        return start_training(self.engine, recipe)

    def _run_started(self, run: TrainRunInfo | None) -> None:
        if run is not None:
            self.post_message(self.Started(run.job_id, f"training run {run.job_id} ({run.name})"))

    @on(Started)
    def follow_started(self, message: Started) -> None:
        status = self.query_one(JobStatus)
        if message.error or message.job_id is None:
            status.say(message.label, failed=bool(message.error))
            if message.error:
                self.notify(one_line(message.label, 300), severity="error", markup=False, timeout=8)
        elif message.label.startswith("cancel"):
            status.say(message.label)
        else:
            self._selected = message.job_id
            status.follow(message.job_id, message.label)
        self.refresh_data()

    @on(JobStatus.Ended)
    def job_ended(self) -> None:
        self.refresh_data()

    # merge -------------------------------------------------------------------------------------

    def action_merge(self) -> None:
        self.open_merge_dialog()

    @work(thread=True, exclusive=True, group="training-dialog", exit_on_error=False)
    def open_merge_dialog(self) -> None:
        from stores.training.runs import list_checkpoints

        checkpoints = [c for c in list_checkpoints(self.engine, limit=100) if c.verified]
        self.post_message(self.Dialog("merge", {"latest": [], "checkpoints": checkpoints}))

    def merge(self, request: MergeRequest) -> tuple[int, str]:
        """Queue the merge for a worker (torch loads there, never in the TUI): called by the merge dialog in a
        thread, a refused merge raises its error; returns the job id and the line to follow it by."""
        from workbench.jobs.merge import MERGE, merge_params
        from workbench.jobs.queue import enqueue

        job = enqueue(self.engine, MERGE.name, merge_params(request.checkpoints, request.weights, request.out_dir))
        return job.id, f"merge into {request.out_dir} (job {job.id})"

    def _merge_queued(self, queued: tuple[int, str] | None) -> None:
        if queued is not None:
            self.post_message(self.Started(*queued))


def _recipe_files() -> list[str]:
    """Training recipes under ./recipes/train, else the ones shipped beside the code."""
    from workbench.jobs.train import project_root

    found: list[str] = []
    for folder in (Path.cwd() / "recipes" / "train", project_root() / "recipes" / "train"):
        if folder.is_dir():
            found = [str(path) for path in sorted(folder.glob("*.yaml"))]
            if found:
                break
    return found


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
