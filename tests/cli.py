"""Drive the examflow command line in-process, as a user would from a shell."""

from dataclasses import dataclass

from typer.testing import CliRunner

from examflow.cli import app


@dataclass
class Result:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run(*args: str) -> Result:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, terminal_width=200)
    return Result(result.exit_code, result.stdout, result.stderr)
