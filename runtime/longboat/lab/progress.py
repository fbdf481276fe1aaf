"""One line per step per node, as each step finishes (docker compose-like)."""

from __future__ import annotations

import time
from typing import TextIO


class Progress:
    def __init__(self, out: TextIO, *, quiet: bool = False) -> None:
        self.out = out
        self.quiet = quiet

    def step(self, what: str, step: str, fn: object = None) -> Step:
        return Step(self, what, step)

    def line(self, what: str, step: str, state: str, seconds: float | None = None) -> None:
        if self.quiet:
            return
        took = f" {seconds:.1f}s" if seconds is not None else ""
        self.out.write(f" {what:<12} {step:<10} {state}{took}\n")
        self.out.flush()


class Step:
    def __init__(self, progress: Progress, what: str, step: str) -> None:
        self.progress = progress
        self.what = what
        self.name = step
        self.state = "done"
        self.began = 0.0

    def __enter__(self) -> Step:
        self.began = time.monotonic()
        return self

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        state = "failed" if kind is not None else self.state
        self.progress.line(self.what, self.name, state, time.monotonic() - self.began)
