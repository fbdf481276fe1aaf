"""Fixtures many integration modules share: a module's own busybox test engine, the
`longboat` CLI against it, and a clean engine (no containers, optionally no volumes)
after every test. A module takes them by assignment:

    engine = busybox_engine_fixture("longboatd-health")
    cli = cli_fixture()
    no_leftovers = leftovers_fixture()
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import CLI
from tests.support.engine import Longboatd, busybox_engine


def busybox_engine_fixture(name: str, *flags: str) -> Any:
    """A module-scoped longboatd with the busybox image ``bb:1`` (CMD sh)."""

    @pytest.fixture(scope="module")
    def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
               ) -> Iterator[Longboatd]:
        with busybox_engine(tmp_path_factory.mktemp(name), rootfs_template,
                            "--change", 'CMD ["sh"]', *flags) as daemon:
            yield daemon

    return engine


def cli_fixture() -> Any:
    @pytest.fixture(scope="module")
    def cli(engine: Longboatd) -> CLI:
        return CLI(engine)

    return cli


def remove_leftovers(engine: Longboatd, *, volumes: bool = False) -> None:
    ids = engine.docker("ps", "-aq", check=False).stdout.split()
    if ids:
        engine.docker("rm", "-f", *(["-v"] if volumes else []), *ids, check=False)
    if volumes:
        names = engine.docker("volume", "ls", "-q", check=False).stdout.split()
        if names:
            engine.docker("volume", "rm", "-f", *names, check=False)


def leftovers_fixture(*, volumes: bool = False) -> Callable[..., Iterator[None]]:
    """Autouse: after each test, remove every container (and with ``volumes``, every
    volume) the test left on the module's engine."""

    @pytest.fixture(autouse=True)
    def no_leftovers(engine: Longboatd) -> Iterator[None]:
        yield
        remove_leftovers(engine, volumes=volumes)

    return no_leftovers
