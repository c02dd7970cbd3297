"""`workbench merge CKPT_A CKPT_B [...] --weights w1 w2 ... --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from typer.core import TyperCommand

from core.outputs import check_output_folder
from core.training.weights import merge_weights
from workbench.cli.common import DETACH_HELP, echo_line, emit_json, engine_of, queue_detached
from workbench.cli.progress import CommandProgress
from workbench.jobs.merge import merge_params, run_merge
from workbench.jobs.runner import drain

merge_app = typer.Typer()


class SpreadWeightsCommand(TyperCommand):
    """Accepts `--weights 0.5 0.5` as well as repeated `--weights`: values run to the next option
    or to the first argument that is an existing folder (a checkpoint)."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        spread: list[str] = []
        taking = False
        for arg in args:
            if arg in ("--weights", "-w"):
                taking = True
                continue
            # A value that is neither a number nor an existing path is a weight typo, not a checkpoint.
            if taking and (_is_number(arg) or not (arg.startswith("-") or Path(arg).exists())):
                spread += ["--weights", arg]
                continue
            taking = False
            spread.append(arg)
        return super().parse_args(ctx, spread)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@merge_app.command("merge", cls=SpreadWeightsCommand)
def merge_command(
    ctx: typer.Context,
    checkpoints: list[Path] = typer.Argument(..., help="Two or more checkpoint folders of one architecture."),
    weights: Optional[list[str]] = typer.Option(
        None, "--weights", "-w", help="One positive weight per checkpoint (repeat the option; default: equal)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the merged checkpoint."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Reload and test the result."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Average checkpoints tensor by tensor (weights are normalised to sum to one)."""
    chosen = merge_weights(weights, len(checkpoints))  # before the store opens or any tensor is read
    check_output_folder(out)
    if detach:
        queue_detached(ctx, "merge", merge_params(checkpoints, chosen, out, verify=verify), as_json=as_json)
        return
    finished = None
    with CommandProgress("merging tensors") as progress:

        def show(event: Any) -> None:
            nonlocal finished
            name = type(event).__name__
            if name == "MergeProgress":
                progress.update(event.done, event.total)
            elif name == "MergeFinished":
                finished = event

        drain(run_merge(engine_of(ctx), checkpoints, chosen, out, verify=verify), show)
    assert finished is not None
    if as_json:
        emit_json(finished)
    else:
        verdict = {True: "verified", False: "FAILED verification", None: "not verified"}[finished.verified]
        echo_line(f"merged {len(checkpoints)} checkpoints into {finished.out_dir} "
                  f"({finished.tensor_count} tensors, {finished.shard_count} shard(s), weights "
                  f"{', '.join(f'{w:g}' for w in finished.weights)}): {verdict}")
    if finished.verified is False:
        raise typer.Exit(code=1)
