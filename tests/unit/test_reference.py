"""Image references: Docker's normalisation and grammar, valid and invalid, in a table."""

from __future__ import annotations

import pytest

from longboat.errors import InvalidArgument
from longboat.image.reference import (
    InvalidReference,
    Reference,
    familiar_name,
    parse,
    split_domain,
    validate_digest,
)

pytestmark = pytest.mark.unit

D = "sha256:" + "a" * 64
D512 = "sha512:" + "0123456789abcdef" * 8

# reference -> (domain, path, tag, digest, str, familiar)
VALID: list[tuple[str, tuple[str, str, str | None, str | None, str, str]]] = [
    ("busybox", ("docker.io", "library/busybox", "latest", None,
                 "docker.io/library/busybox:latest", "busybox:latest")),
    ("busybox:1.36", ("docker.io", "library/busybox", "1.36", None,
                      "docker.io/library/busybox:1.36", "busybox:1.36")),
    ("library/busybox", ("docker.io", "library/busybox", "latest", None,
                         "docker.io/library/busybox:latest", "busybox:latest")),
    ("docker.io/busybox", ("docker.io", "library/busybox", "latest", None,
                           "docker.io/library/busybox:latest", "busybox:latest")),
    ("docker.io/library/busybox:musl", ("docker.io", "library/busybox", "musl", None,
                                        "docker.io/library/busybox:musl", "busybox:musl")),
    ("index.docker.io/busybox", ("docker.io", "library/busybox", "latest", None,
                                 "docker.io/library/busybox:latest", "busybox:latest")),
    ("index.docker.io/user/app:v2", ("docker.io", "user/app", "v2", None,
                                     "docker.io/user/app:v2", "user/app:v2")),
    ("user/app", ("docker.io", "user/app", "latest", None,
                  "docker.io/user/app:latest", "user/app:latest")),
    ("user/team/app", ("docker.io", "user/team/app", "latest", None,
                       "docker.io/user/team/app:latest", "user/team/app:latest")),
    ("localhost/app", ("localhost", "app", "latest", None,
                       "localhost/app:latest", "localhost/app:latest")),
    ("localhost:5000/app:1", ("localhost:5000", "app", "1", None,
                              "localhost:5000/app:1", "localhost:5000/app:1")),
    ("localhost:5000/a/b/c", ("localhost:5000", "a/b/c", "latest", None,
                              "localhost:5000/a/b/c:latest", "localhost:5000/a/b/c:latest")),
    ("registry.example.com/team/app", ("registry.example.com", "team/app", "latest", None,
                                       "registry.example.com/team/app:latest",
                                       "registry.example.com/team/app:latest")),
    ("registry:5000/app", ("registry:5000", "app", "latest", None,
                           "registry:5000/app:latest", "registry:5000/app:latest")),
    ("127.0.0.1:5000/app", ("127.0.0.1:5000", "app", "latest", None,
                            "127.0.0.1:5000/app:latest", "127.0.0.1:5000/app:latest")),
    ("[::1]:5000/app:tag", ("[::1]:5000", "app", "tag", None,
                            "[::1]:5000/app:tag", "[::1]:5000/app:tag")),
    ("Registry.Example.com/app", ("Registry.Example.com", "app", "latest", None,
                                  "Registry.Example.com/app:latest",
                                  "Registry.Example.com/app:latest")),
    # An uppercase first component is a host, as in Docker.
    ("Host/app", ("Host", "app", "latest", None, "Host/app:latest", "Host/app:latest")),
    ("example.com/app", ("example.com", "app", "latest", None,
                         "example.com/app:latest", "example.com/app:latest")),
    # "localhost:5000" alone is the image "localhost" tagged "5000", as in Docker.
    ("localhost:5000", ("docker.io", "library/localhost", "5000", None,
                        "docker.io/library/localhost:5000", "localhost:5000")),
    ("busybox@" + D, ("docker.io", "library/busybox", None, D,
                      "docker.io/library/busybox@" + D, "busybox@" + D)),
    ("busybox:1.36@" + D, ("docker.io", "library/busybox", "1.36", D,
                           "docker.io/library/busybox:1.36@" + D, "busybox:1.36@" + D)),
    ("localhost:5000/app@" + D, ("localhost:5000", "app", None, D,
                                 "localhost:5000/app@" + D, "localhost:5000/app@" + D)),
    ("app@" + D512, ("docker.io", "library/app", None, D512,
                     "docker.io/library/app@" + D512, "app@" + D512)),
    ("a_b-c/d.e__f--g:T_a.g-1", ("docker.io", "a_b-c/d.e__f--g", "T_a.g-1", None,
                                 "docker.io/a_b-c/d.e__f--g:T_a.g-1",
                                 "a_b-c/d.e__f--g:T_a.g-1")),
    # A first component with a dot is a host, and hosts take no underscores.
    ("my-host.io/a_b/c", ("my-host.io", "a_b/c", "latest", None,
                          "my-host.io/a_b/c:latest", "my-host.io/a_b/c:latest")),
    ("a---b", ("docker.io", "library/a---b", "latest", None,
               "docker.io/library/a---b:latest", "a---b:latest")),
    ("app:" + "t" * 128, ("docker.io", "library/app", "t" * 128, None,
                          "docker.io/library/app:" + "t" * 128, "app:" + "t" * 128)),
    ("app:_x", ("docker.io", "library/app", "_x", None,
                "docker.io/library/app:_x", "app:_x")),
    ("0/1:2", ("docker.io", "0/1", "2", None, "docker.io/0/1:2", "0/1:2")),
    ("docker.io/library/a/b", ("docker.io", "library/a/b", "latest", None,
                               "docker.io/library/a/b:latest", "library/a/b:latest")),
    # Exactly 255 characters of name.
    ("r/" + "a" * 243, ("docker.io", "r/" + "a" * 243, "latest", None,
                        "docker.io/r/" + "a" * 243 + ":latest", "r/" + "a" * 243 + ":latest")),
]

# reference -> a piece of the error message
INVALID: list[tuple[str, str]] = [
    ("", "empty"),
    ("Busybox", "must be lowercase"),
    ("user/App", "must be lowercase"),
    ("docker.io/library/BusyBox", "must be lowercase"),
    ("localhost:5000/App", "must be lowercase"),
    ("busybox:", "tag ''"),
    ("busybox:.tag", "tag '.tag'"),
    ("busybox:-tag", "tag '-tag'"),
    ("busybox:t@g", "invalid digest"),
    ("busybox:" + "t" * 129, "tag"),
    ("busybox:tag:tag", "component 'busybox:tag'"),
    ("a_b.c/d", "'a_b.c' in 'a_b.c/d' is not a valid registry host"),
    ("busybox:tàg", "tag"),
    ("busybox@sha256:" + "a" * 63, "64 hex digits, not 63"),
    ("busybox@sha256:" + "a" * 65, "64 hex digits, not 65"),
    ("busybox@sha256:" + "A" * 64, "lowercase hexadecimal"),
    ("busybox@sha256:" + "g" * 64, "lowercase hexadecimal"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm 'md5'"),
    ("busybox@sha256", "expected algorithm:hex"),
    ("busybox@", "expected algorithm:hex"),
    ("busybox@:abc", "expected algorithm:hex"),
    ("busybox@sha256:", "expected algorithm:hex"),
    ("busybox@sha256:" + "a" * 64 + "@x", "lowercase hexadecimal"),
    ("a" * 64, "image ID"),
    ("0123456789abcdef" * 4, "image ID"),
    (":tag", "no repository name"),
    ("@" + D, "no repository name"),
    ("/busybox", "component ''"),
    ("busybox/", "component ''"),
    ("a//b", "component ''"),
    ("-busybox", "component '-busybox'"),
    ("busybox-", "component 'busybox-'"),
    ("bu..sybox", "component 'bu..sybox'"),
    ("bu___sybox", "component 'bu___sybox'"),
    ("_busybox", "component '_busybox'"),
    ("busy box", "component 'busy box'"),
    ("büsybox", "component"),
    ("user/-app", "component '-app'"),
    ("-host.com/app", "registry host"),
    ("host-.com/app", "registry host"),
    ("host.com:port/app", "registry host"),
    ("host..com/app", "registry host"),
    ("[::1/app", "registry host"),
    ("r/" + "a" * 244, "longer than 255"),
    ("example.com/" + "/".join(["abcdefghij"] * 23) + "/abcd", "longer than 255"),
]


@pytest.mark.parametrize(("ref", "want"), VALID, ids=[r[:60] for r, _ in VALID])
def test_valid(ref: str, want: tuple[str, str, str | None, str | None, str, str]) -> None:
    domain, path, tag, digest, full, familiar = want
    parsed = parse(ref)
    assert (parsed.domain, parsed.path, parsed.tag, parsed.digest) == (domain, path, tag,
                                                                        digest)
    assert str(parsed) == full
    assert parsed.familiar == familiar
    assert parsed.name == f"{domain}/{path}"
    # Normalisation is idempotent: the full and the familiar forms parse back the same.
    assert parse(full) == parsed
    assert parse(familiar) == parsed


@pytest.mark.parametrize(("ref", "message"), INVALID, ids=[r[:60] for r, _ in INVALID])
def test_invalid(ref: str, message: str) -> None:
    with pytest.raises(InvalidReference, match=message.replace("(", r"\(").replace(".", r"\.")
                       .replace("[", r"\[")):
        parse(ref)


def test_errors_are_invalid_argument_with_400() -> None:
    with pytest.raises(InvalidArgument) as info:
        parse("Busybox")
    assert info.value.status == 400
    assert "Busybox" in info.value.message


def test_name_and_familiar_name() -> None:
    ref = parse("busybox")
    assert ref.name == "docker.io/library/busybox"
    assert ref.familiar_name == "busybox"
    assert familiar_name("docker.io/library/busybox") == "busybox"
    assert familiar_name("docker.io/user/app") == "user/app"
    assert familiar_name("docker.io/library/a/b") == "library/a/b"
    assert familiar_name("localhost:5000/app") == "localhost:5000/app"
    assert familiar_name("quay.io/library/app") == "quay.io/library/app"


def test_with_tag() -> None:
    ref = parse("busybox@" + D).with_tag("1.36")
    assert ref == Reference("docker.io", "library/busybox", "1.36", None)
    with pytest.raises(InvalidReference, match="invalid tag"):
        ref.with_tag("-bad")


def test_split_domain() -> None:
    assert split_domain("busybox") == ("docker.io", "library/busybox")
    assert split_domain("a/b") == ("docker.io", "a/b")
    assert split_domain("localhost/b") == ("localhost", "b")
    assert split_domain("my.registry/b/c") == ("my.registry", "b/c")
    assert split_domain("index.docker.io/b") == ("docker.io", "library/b")


def test_validate_digest() -> None:
    assert validate_digest(D) == D
    with pytest.raises(InvalidReference, match="unsupported digest algorithm"):
        validate_digest("sha1:" + "a" * 40)


def test_references_are_values() -> None:
    assert parse("busybox") == parse("docker.io/library/busybox:latest")
    assert len({parse("busybox"), parse("library/busybox:latest")}) == 1
    assert parse("busybox") != parse("busybox:1")
