"""Progress of pulls, pushes and loads as docker shows it (its ``jsonmessage`` package):
on a terminal, one line per layer, redrawn in place with ANSI cursor moves and a bar;
elsewhere, plain status lines only (no bars)."""

from __future__ import annotations

import shutil

from longboat.cli.output import human_size

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any, TextIO


def progress_text(detail: dict[str, Any], width: int) -> str:
    """``JSONProgress.String()``: "[=====>     ]  1.2MB/2.4MB" (no bar when narrow)."""
    current = int(detail.get("current") or 0)
    total = int(detail.get("total") or 0)
    if current <= 0 and total <= 0:
        return ""
    if total <= 0:
        return f"{human_size(current):>8}"
    percentage = min(int(current / total * 100) // 2, 50)
    bar = ""
    if width > 110:
        bar = f"[{'=' * percentage}>{' ' * max(0, 50 - percentage)}] "
    numbers = f"{human_size(current):>8}/{human_size(total)}"
    if current > total:
        numbers = f"{human_size(current):>8}"
    return bar + numbers


class Display:
    """``DisplayJSONMessagesStream``: feed events in order; ``aux`` events go to the
    callback."""

    def __init__(self, out: TextIO, terminal: bool,
                 aux: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.out = out
        self.terminal = terminal
        self.aux = aux
        self.ids: dict[str, int] = {}
        self.width = shutil.get_terminal_size((200, 24)).columns if terminal else 200

    def show(self, event: dict[str, Any]) -> None:
        if "aux" in event:
            if self.aux is not None:
                self.aux(event)
            return
        out = self.out
        ident = str(event.get("id") or "")
        progress = event.get("progressDetail")
        has_progress = isinstance(progress, dict)
        diff = 0
        if ident and (has_progress or event.get("progress")):
            line = self.ids.get(ident)
            if line is None:
                line = len(self.ids)
                self.ids[ident] = line
                if self.terminal:
                    out.write("\n")
            diff = len(self.ids) - line
            if self.terminal and diff:
                out.write(f"\x1b[{diff}A")
        else:
            # anything else ends the block of per-layer lines
            self.ids = {}
        self._display(event, ident, progress if has_progress else None)
        if ident and self.terminal and diff:
            out.write(f"\x1b[{diff}B")
        out.flush()

    def _display(self, event: dict[str, Any], ident: str,
                 progress: dict[str, Any] | None) -> None:
        out = self.out
        stream = event.get("stream")
        status = str(event.get("status") or "")
        end = ""
        bar = progress_text(progress, self.width) if progress is not None else ""
        if self.terminal and not stream and progress is not None:
            out.write("\x1b[2K\r")
            end = "\r"
        elif progress is not None and bar:
            return          # no bars off a terminal
        if ident:
            out.write(f"{ident}: ")
        if progress is not None and self.terminal:
            out.write(f"{status} {bar}{end}")
        elif event.get("progress"):
            out.write(f"{status} {event['progress']}{end}")
        elif stream:
            out.write(f"{stream}{end}")
        else:
            out.write(f"{status}{end}\n")


def show_all(events: Iterable[dict[str, Any]], out: TextIO, terminal: bool,
             aux: Callable[[dict[str, Any]], None] | None = None) -> None:
    display = Display(out, terminal, aux)
    for event in events:
        display.show(event)
