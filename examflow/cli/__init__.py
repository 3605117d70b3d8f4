"""The examflow command line: `examflow --help`."""

import typer

from examflow.cli import (
    calendar_cmds,
    certificates_cmds,
    db_cmds,
    exam_cmds,
    facts_cmds,
    fees_cmds,
    go_no_go_cmds,
    list_cmds,
    orchestrate_cmds,
    portal_cmds,
    register_cmds,
    run_cmds,
    scores_cmds,
    status_cmds,
)

app = typer.Typer(
    name="examflow",
    help="Run a nationwide certificate exam's sittings from the organiser's side.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(calendar_cmds.app, name="calendar")
app.add_typer(register_cmds.schools_app, name="schools")
app.add_typer(register_cmds.sites_app, name="sites")
app.add_typer(fees_cmds.app, name="fees")
app.add_typer(exam_cmds.rooms_app, name="rooms")
app.add_typer(exam_cmds.materials_app, name="materials")
app.add_typer(scores_cmds.scores_app, name="scores")
app.add_typer(scores_cmds.review_app, name="review")
app.add_typer(certificates_cmds.keys_app, name="keys")
app.add_typer(certificates_cmds.certificates_app, name="certificates")
app.add_typer(db_cmds.db_app, name="db")
app.add_typer(portal_cmds.portal_app, name="portal")
app.command("audit")(portal_cmds.audit)
app.command("sign")(certificates_cmds.sign_command)
app.command("register")(register_cmds.register)
app.command("withdraw")(register_cmds.withdraw)
app.command("status")(status_cmds.status)
app.command("mark")(facts_cmds.mark)
app.command("go-no-go")(go_no_go_cmds.go_no_go)
app.command("run")(run_cmds.run)
app.command("arrange")(exam_cmds.arrange)
app.add_typer(exam_cmds.attendance_app, name="attendance")
app.command("seats")(list_cmds.seats)
scores_cmds.scores_app.command("list")(list_cmds.scores_list)
scores_cmds.review_app.command("list")(list_cmds.review_list)
exam_cmds.attendance_app.command("list")(list_cmds.attendance_list)
certificates_cmds.keys_app.command("list")(list_cmds.keys_list)
for command in ("deploy", "serve", "up", "demo"):
    app.command(command)(getattr(orchestrate_cmds, command))


def main() -> None:
    from examflow.cli.console import fail
    from examflow.migrate import SchemaError
    from notifications.documents.fonts import CJKFontMissing

    try:
        app()
    except SchemaError as exc:  # a database behind (or ahead of) this examflow: say what to do
        fail(str(exc))
    except CJKFontMissing as exc:  # PDFs rendered in this process: which font to install
        fail(str(exc))
