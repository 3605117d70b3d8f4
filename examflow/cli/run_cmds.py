"""examflow run SITTING STAGE CHECKPOINT"""

import json

import typer

from examflow.cli.console import AS_OF_HELP, err, out, parse_as_of
from examflow.prefect_env import prepare_prefect_env
from models.checkpoints import CheckpointResult
from models.domain import Checkpoint, StageCode


def run(
    sitting: str,
    stage: StageCode,
    checkpoint: Checkpoint,
    as_of: str | None = typer.Option(None, help=AS_OF_HELP),
    as_json: bool = typer.Option(False, "--json", help='Print {"state", "sent", "missing"}.'),
) -> None:
    """Run one checkpoint now as a Prefect flow run (idempotent: nothing is sent twice).

    Uses PREFECT_API_URL when set, else Prefect's ephemeral mode. Exit 0 unless the run ends
    in a Failed-type state (Stalled, MailPending, or an error).
    """
    moment = parse_as_of(as_of) if as_of else None
    prepare_prefect_env()
    from flows.sitting_checkpoint import sitting_checkpoint

    state = sitting_checkpoint(sitting, stage, checkpoint, moment, return_state=True)
    data: object = state.result(raise_on_failure=False)
    if isinstance(data, CheckpointResult):
        result = data
    else:  # the flow raised: report the error as the state's message
        result = CheckpointResult(state=state.name or state.type.value)
        err.print(f"[red]{state.name}:[/red] {state.message or data}")
    if as_json:
        print(
            json.dumps(
                {
                    "state": result.state or state.name,
                    "sent": result.sent,
                    "missing": result.missing,
                    "pending": result.pending,
                    "failed": result.failed,
                },
                ensure_ascii=False,
            )
        )
    else:
        out.print(f"{sitting} · {stage} · {checkpoint}: {state.name} — sent {result.sent}")
        if state.message:
            out.print(state.message)
    if state.is_failed() or state.is_crashed():
        raise typer.Exit(1)
