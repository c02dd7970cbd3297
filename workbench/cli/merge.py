"""`workbench merge CKPT_A CKPT_B [...] --weights w1 w2 ... --out DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperCommand

from core.errors import OptionError
from workbench.cli.common import DETACH_HELP, emit_json, engine_of, queue_detached, stderr_console
from workbench.jobs.merge import merge_params, run_merge

merge_app = typer.Typer()


class SpreadWeightsCommand(TyperCommand):
    """Accepts `--weights 0.5 0.5` as well as repeated `--weights`: values run to the next option."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        spread: list[str] = []
        taking = False
        for arg in args:
            if arg in ("--weights", "-w"):
                taking = True
                continue
            if taking and _is_number(arg):
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
    weights: Optional[list[float]] = typer.Option(
        None, "--weights", "-w", help="One weight per checkpoint (repeat the option; default: equal)."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="New folder for the merged checkpoint."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Reload and test the result."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    detach: bool = typer.Option(False, "--detach", help=DETACH_HELP),
) -> None:
    """Average checkpoints tensor by tensor (weights are normalised to sum to one)."""
    chosen = list(weights) if weights else [1.0] * len(checkpoints)
    if len(chosen) != len(checkpoints):
        raise OptionError(f"{len(checkpoints)} checkpoints but {len(chosen)} weights; give one --weights per checkpoint")
    if detach:
        queue_detached(ctx, "merge", merge_params(checkpoints, chosen, out, verify=verify), as_json=as_json)
        return
    finished = None
    for event in run_merge(engine_of(ctx), checkpoints, chosen, out, verify=verify):
        name = type(event).__name__
        if name == "MergeProgress":
            stderr_console.print(f"merged {event.done}/{event.total} tensors", markup=False)
        elif name == "MergeFinished":
            finished = event
    assert finished is not None
    if as_json:
        emit_json(finished)
    else:
        verdict = {True: "verified", False: "FAILED verification", None: "not verified"}[finished.verified]
        typer.echo(f"merged {len(checkpoints)} checkpoints into {finished.out_dir} "
                   f"({finished.tensor_count} tensors, {finished.shard_count} shard(s), weights "
                   f"{', '.join(f'{w:g}' for w in finished.weights)}): {verdict}")
    if finished.verified is False:
        raise typer.Exit(code=1)
