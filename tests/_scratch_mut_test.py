"""Put fixed bugs back one at a time: the property test must catch each."""

import os

import pytest

from tests.test_bad_input import *  # noqa

BUG = os.environ.get("BUG", "")


@pytest.fixture(autouse=True)
def _bug(monkeypatch):
    import examflow.console as console
    import models.rooms as rooms
    import models.schools as schools

    if BUG == "parse_count":

        def parse_count(value):
            v = value.strip().replace(",", "")
            if v.endswith(".0"):
                v = v[:-2]
            return int(v) if v.isdigit() else None

        monkeypatch.setattr(schools, "parse_count", parse_count)
        monkeypatch.setattr(rooms, "parse_count", parse_count)
    if BUG == "markup":
        monkeypatch.setattr(console, "escape", lambda s: s)
    if BUG == "partial":
        import models.attendance as att

        orig = att.record_attendance

        def record(session, sitting_code, table, as_of):
            from models.problems import RejectedFileError

            try:
                return orig(session, sitting_code, table, as_of)
            except RejectedFileError:
                session.commit()  # stores what it had? nothing flushed; simulate partial
                table.rows[:] = [r for r in table.rows[:1]]
                raise

        monkeypatch.setattr(att, "record_attendance", record)
    if BUG == "exit2":
        orig = console.report_rejection

        def rr(source, exc):
            import typer

            raise typer.Exit(2)

        import examflow.commands.exam_cmds as ec

        monkeypatch.setattr(ec, "report_rejection", rr)
    if BUG == "store_first_row":
        import models.rooms as r

        orig = r.import_rooms

        def imp(session, table, as_of):
            from models.problems import RejectedFileError

            try:
                return orig(session, table, as_of)
            except RejectedFileError:
                from datetime import UTC, datetime

                from models.rooms import Room

                session.add(
                    Room(site_code="P1", name="leak", seats=1, updated_at=datetime.now(UTC))
                )
                session.commit()
                raise

        import examflow.commands.exam_cmds as ec

        monkeypatch.setattr(ec, "import_rooms", imp)
