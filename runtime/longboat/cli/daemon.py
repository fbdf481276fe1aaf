"""`longboatd`, the engine daemon (the engine issue builds it)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print("longboatd: the engine is not built yet; use longboat-runtime to run OCI bundles",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
