"""The `longboat` command line: docker's syntax, a client of the engine's API.

The engine and its API arrive with their own issue; until then this front end offers
what exists on its own and says plainly what does not.
"""

from __future__ import annotations

import argparse
import sys

from longboat import __version__


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="longboat",
        description="Longboat: containers, images and swarms, driven like docker.",
        epilog="The OCI runtime is available now as `longboat-runtime`; "
               "the engine commands (run, ps, images, ...) need longboatd.")
    parser.add_argument("--version", action="version", version=f"Longboat {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("version", help="show the Longboat version")
    args = parser.parse_args(argv)
    if args.command == "version":
        print(f"Longboat {__version__}")
        return 0
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
