"""How the docker CLI writes things, reproduced: Go's ``text/tabwriter`` (the tables),
``go-units`` (sizes and durations), Go's JSON encoding and time formats."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

from longboat.humanize import human_duration

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


# -- sizes and durations (github.com/docker/go-units) ------------------------------------
def _scaled(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def human_size(size: float, precision: int = 4) -> str:
    """``units.HumanSizeWithPrecision``: 2140000 -> "2.14MB" (decimal units)."""
    value, unit = _scaled(float(size), 1000.0, DECIMAL)
    return f"{value:.{precision}g}{unit}"


def bytes_size(size: float) -> str:
    """``units.BytesSize``: binary units, 4 significant digits ("23.54GiB")."""
    value, unit = _scaled(float(size), 1024.0, BINARY)
    return f"{value:.4g}{unit}"


def since(unix: float, now: float | None = None) -> str:
    """"5 minutes ago", as the CLI's CREATED columns."""
    return human_duration((time.time() if now is None else now) - unix) + " ago"


def truncate_id(image_id: str) -> str:
    """``stringid.TruncateID``: drop the algorithm, keep 12 hex digits."""
    if ":" in image_id:
        image_id = image_id.split(":", 1)[1]
    return image_id[:12]


def ellipsis(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    return text[:width - 1] + "…"


# -- times ---------------------------------------------------------------------------------
def _local(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, UTC).astimezone()


def go_time_string(unix: float) -> str:
    """Go's ``time.Time.String()`` in local time: "2024-05-01 12:00:00 +0000 UTC"."""
    moment = _local(unix)
    return moment.strftime("%Y-%m-%d %H:%M:%S %z ") + (moment.tzname() or "")


def rfc3339(unix: float) -> str:
    """Go's ``time.RFC3339`` in local time ("Z" for UTC)."""
    moment = _local(unix)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S%z")
    if text.endswith("+0000"):
        return text[:-5] + "Z"
    return text[:-2] + ":" + text[-2:]


# -- Go's encoding/json --------------------------------------------------------------------
def go_json(value: Any, *, sort_keys: bool = False) -> str:
    """``json.Marshal``: compact, HTML-safe escapes, UTF-8 kept."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def indented_json(value: Any) -> str:
    """What ``docker inspect`` prints: the server's JSON indented by four spaces."""
    return json.dumps(value, indent=4)


# -- Go's text/tabwriter ---------------------------------------------------------------------
def tabwrite(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3) -> str:
    """``tabwriter.NewWriter(out, minwidth, tabwidth, padding, ' ', 0)`` on ``text``:
    tab-terminated cells aligned per column block, as Go computes them."""
    del tabwidth   # only used when padding with tabs
    lines = [row.split("\t") for row in text.split("\n")]
    trailing = text.endswith("\n")
    if trailing:
        lines.pop()
    out: list[str] = []
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for row in lines[line0:line1]:
            parts = []
            for j, cell in enumerate(row):
                if j < len(widths) and j < len(row) - 1:
                    parts.append(cell + " " * max(0, widths[j] - len(cell)))
                else:
                    parts.append(cell)
            out.append("".join(parts))

    def fmt(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = minwidth
            while this < line1:
                row = lines[this]
                if column >= len(row) - 1:
                    break
                width = max(width, len(row[column]) + padding)
                this += 1
            widths.append(width)
            fmt(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    fmt(0, len(lines))
    return "\n".join(out) + ("\n" if trailing else "")


def is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def write_archive(out: Any, chunks: Iterable[bytes], path: str | None) -> None:
    """Stream an archive to ``out`` (binary), or into ``path`` through a temporary file
    beside it renamed into place (never half an archive), mode 0666 less the umask."""
    if not path:
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".longboat_temp_",
                               dir=os.path.dirname(os.path.abspath(path)))
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
