"""Image references: parsing and Docker's normalisation.

Owns the grammar of ``[domain/]path[:tag][@digest]`` (distribution's reference grammar)
and the rules that make ``busybox`` mean ``docker.io/library/busybox:latest``:

* the first path component is a domain when it contains ``.`` or ``:``, is
  ``localhost``, or has an uppercase letter; otherwise the domain is ``docker.io``
  (``index.docker.io`` is an old name for it);
* a one-component path on ``docker.io`` is an official image, under ``library/``;
* without a tag or a digest the tag is ``latest``; with a digest alone there is no tag;
* repository paths are lowercase; tags match ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``;
  digests are ``sha256:`` + 64 (or ``sha512:`` + 128) lowercase hex digits; the whole
  normalised name is at most 255 characters; a bare 64-hex string is an image ID, not a
  name.

``familiar`` forms undo the normalisation for display, as the docker CLI shows names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from longboat.errors import InvalidArgument

DEFAULT_DOMAIN: Final = "docker.io"
LEGACY_DEFAULT_DOMAIN: Final = "index.docker.io"
OFFICIAL_PREFIX: Final = "library/"
DEFAULT_TAG: Final = "latest"
NAME_TOTAL_LENGTH_MAX: Final = 255

_DIGEST_LENGTHS: Final = {"sha256": 64, "sha512": 128}

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*", re.ASCII)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?", re.ASCII)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_ALGORITHM = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*",
                               re.ASCII)
_HEX = re.compile(r"[a-f0-9]+", re.ASCII)
_IDENTIFIER = re.compile(r"[a-f0-9]{64}", re.ASCII)


class InvalidReference(InvalidArgument):
    """A string that is not a valid image reference."""


@dataclass(frozen=True)
class Reference:
    """A normalised image reference: ``domain/path[:tag][@digest]``."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The repository's full name: ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as the docker CLI shows it: ``busybox``, ``user/app``."""
        return familiar_name(self.name)

    @property
    def familiar(self) -> str:
        """The reference as the docker CLI shows it: ``busybox:latest``."""
        return self.familiar_name + self._suffix()

    def with_tag(self, tag: str) -> Reference:
        """The same repository with ``tag`` (and no digest)."""
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag {tag!r}: tags are up to 128 letters, digits, "
                                   "'_', '.' and '-', not starting with '.' or '-'")
        return Reference(self.domain, self.path, tag, None)

    def _suffix(self) -> str:
        tag = f":{self.tag}" if self.tag is not None else ""
        digest = f"@{self.digest}" if self.digest is not None else ""
        return tag + digest

    def __str__(self) -> str:
        return self.name + self._suffix()


def familiar_name(name: str) -> str:
    """``docker.io/library/busybox`` -> ``busybox``; ``docker.io/u/app`` -> ``u/app``;
    other registries' names are already familiar."""
    domain, _, path = name.partition("/")
    if domain != DEFAULT_DOMAIN or not path:
        return name
    if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX):]:
        return path[len(OFFICIAL_PREFIX):]
    return path


def validate_digest(digest: str) -> str:
    """``digest`` if it is ``algorithm:hex`` with a known algorithm and the right length."""
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not _DIGEST_ALGORITHM.fullmatch(algorithm) or not encoded:
        raise InvalidReference(f"invalid digest {digest!r}: expected algorithm:hex, "
                               "e.g. sha256:<64 hex digits>")
    length = _DIGEST_LENGTHS.get(algorithm)
    if length is None:
        raise InvalidReference(f"invalid digest {digest!r}: unsupported digest algorithm "
                               f"{algorithm!r} (supported: {', '.join(_DIGEST_LENGTHS)})")
    if not _HEX.fullmatch(encoded):
        raise InvalidReference(f"invalid digest {digest!r}: the {algorithm} value must be "
                               "lowercase hexadecimal")
    if len(encoded) != length:
        raise InvalidReference(f"invalid digest {digest!r}: a {algorithm} value has {length} "
                               f"hex digits, not {len(encoded)}")
    return digest


def split_domain(name: str) -> tuple[str, str]:
    """Docker's domain rule: (domain, path) of a name without tag or digest."""
    first, sep, rest = name.partition("/")
    if not sep or ("." not in first and ":" not in first and first != "localhost"
                   and first.lower() == first):
        domain, path = DEFAULT_DOMAIN, name
    else:
        domain, path = first, rest
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def parse(ref: str) -> Reference:
    """Parse and normalise an image reference (``busybox``, ``localhost:5000/a/b:1``,
    ``repo@sha256:...``); raises :class:`InvalidReference` with the reason."""
    if not isinstance(ref, str) or not ref:
        raise InvalidReference("invalid reference format: the reference is empty")
    if _IDENTIFIER.fullmatch(ref):
        raise InvalidReference(f"invalid repository name ({ref}): cannot specify 64-byte "
                               "hexadecimal strings; that is an image ID, not a name")
    remainder, at, digest_part = ref.partition("@")
    digest: str | None = None
    if at:
        digest = validate_digest(digest_part)
    tag: str | None = None
    colon = remainder.rfind(":")
    if colon > remainder.rfind("/"):
        remainder, tag = remainder[:colon], remainder[colon + 1:]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid reference format: tag {tag!r} of {ref!r} is not "
                                   "valid: tags are up to 128 letters, digits, '_', '.' and "
                                   "'-', not starting with '.' or '-'")
    if not remainder:
        raise InvalidReference(f"invalid reference format: {ref!r} has no repository name")
    domain, path = split_domain(remainder)
    if not _DOMAIN.fullmatch(domain):
        raise InvalidReference(f"invalid reference format: {domain!r} in {ref!r} is not a "
                               "valid registry host[:port]")
    if path.lower() != path:
        raise InvalidReference(f"invalid reference format: repository name ({path}) must be "
                               "lowercase")
    for component in path.split("/"):
        if not _PATH_COMPONENT.fullmatch(component):
            raise InvalidReference(
                f"invalid reference format: {ref!r}: repository path component "
                f"{component!r} must be lowercase letters and digits, separated by '.', "
                "'_', '__' or dashes")
    name = f"{domain}/{path}"
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"invalid reference format: repository name {name!r} is "
                               f"longer than {NAME_TOTAL_LENGTH_MAX} characters")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
