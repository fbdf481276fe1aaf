"""The builder's errors: bad Dockerfiles and bad build input are the user's (400); a
step that fails says which step."""

from __future__ import annotations

from longboat.errors import InvalidArgument


class DockerfileError(InvalidArgument):
    """A Dockerfile that cannot be parsed; the message names the line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        if line is not None:
            message = f"Dockerfile parse error line {line}: {message}"
        super().__init__(message)
        self.line = line


class BuildError(InvalidArgument):
    """A step that failed (a RUN that exited non-zero, a missing COPY source...)."""
