"""``longboat build`` takes docker 20.10's resource flags, ``--compress`` and
``--disable-content-trust``, and refuses a bad tag before sending the context."""

from __future__ import annotations

import gzip
import io
import json
from typing import Any

import pytest

from longboat.cli import build
from longboat.cli.main import UsageError, build_parser


def parse(*words: str) -> Any:
    return build_parser("build").parse_args(["build", *words, "."])


def test_resource_flags_become_dockers_query() -> None:
    a = parse("-m", "64m", "--memory-swap", "-1", "--shm-size", "32m", "-c", "512",
              "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0",
              "--cpuset-mems", "0", "--ulimit", "nofile=100:200", "--compress",
              "--disable-content-trust=false")
    params = {k: v for k, v in build._resource_params(a) if v is not None}
    assert params == {"memory": str(64 << 20), "memswap": "-1", "shmsize": str(32 << 20),
                      "cpushares": "512", "cpuperiod": "100000", "cpuquota": "50000",
                      "cpusetcpus": "0", "cpusetmems": "0",
                      "ulimits": json.dumps([{"Name": "nofile", "Soft": 100, "Hard": 200}])}
    assert a.compress
    assert not {k: v for k, v in build._resource_params(parse()) if v is not None}


@pytest.mark.parametrize(("words", "message"), [
    (["--ulimit", "bad"], "invalid ulimit argument: bad"),
    (["--shm-size", "zz"], 'invalid argument "zz" for "--shm-size" flag'),
    (["-m", "lots"], 'invalid argument "lots" for "--memory" flag'),
])
def test_bad_resource_flags(words: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build._resource_params(parse(*words))


@pytest.mark.parametrize(("tag", "message"), [
    ("Bad:tag", "must be lowercase"),
    ("a@sha256:" + "0" * 64, "a digest cannot be a tag"),
])
def test_bad_tags_are_refused_before_anything_is_sent(tag: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        build._check_tags(["ok:1", tag])
    assert str(caught.value).startswith(f'invalid argument "{tag}" for "-t, --tag" flag: ')
    build._check_tags(["ok:1", "registry:5000/a/b:c"])


def test_compress_gzips_the_context() -> None:
    raw = io.BytesIO(b"tar bytes" * 100)
    packed = build._gzipped(raw)
    assert raw.closed and gzip.decompress(packed.read()) == b"tar bytes" * 100
    packed.close()


def test_the_context_is_sent_without_tar_padding(tmp_path: Any) -> None:
    import tarfile

    (tmp_path / "Dockerfile").write_text("FROM busybox\n")
    (tmp_path / "x").write_text("x\n")
    out = io.BytesIO(b"head")
    out.seek(4)
    build.context_tar(str(tmp_path), out)
    # two entries of one header and one data block each, then the two end blocks: the
    # 3.072kB docker's CLI reports for the same context
    assert out.tell() == 4 + 3072 and len(out.getvalue()) == 4 + 3072
    with tarfile.open(fileobj=io.BytesIO(out.getvalue()[4:])) as tar:
        assert tar.getnames() == ["Dockerfile", "x"]
    single = io.BytesIO()
    build._single_file_tar("Dockerfile", b"FROM busybox\n", single)
    assert single.tell() == len(single.getvalue()) == 2048
