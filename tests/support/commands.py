"""Running a management command as cron or a person would, in tests."""

from __future__ import annotations

import io

from django.core.management import CommandError, call_command


class TtyOutput(io.StringIO):
    """Captured output that says it is a terminal, as a console would."""

    def isatty(self) -> bool:
        return True


def run_command(name: str, *args: str, stdout: io.StringIO | None = None) -> tuple[str, str, int]:
    """Run a command; return its output, error message and exit status."""
    out, err = stdout or io.StringIO(), io.StringIO()
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except CommandError as exc:
        return out.getvalue(), err.getvalue() + str(exc), exc.returncode
    return out.getvalue(), err.getvalue(), 0
