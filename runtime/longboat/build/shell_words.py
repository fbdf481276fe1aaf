"""Variable substitution and word splitting as the Dockerfile does it (Docker's shell
lexer): ``$VAR``, ``${VAR}``, ``${VAR:-word}``, ``${VAR:+word}``, single quotes (literal),
double quotes (with escapes of ``"``, ``$`` and the escape character), and the escape
character (``\\`` or the one ``# escape=`` chose) outside quotes.

:func:`process_word` gives one string (quotes removed, variables expanded, whitespace
kept): ENV and LABEL values, WORKDIR, USER, COPY sources... :func:`process_words`
splits on unquoted whitespace after expansion, as EXPOSE does."""

from __future__ import annotations

from longboat.build.errors import BuildError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME = _NAME_START | frozenset("0123456789")
_SPECIAL = frozenset("0123456789@*#?-$!")
#: ``${A:-${B:-...}}`` deeper than this is refused (each level is a Python frame)
MAX_NESTING = 100


class _Lexer:
    def __init__(self, text: str, env: Mapping[str, str], escape: str,
                 missing: set[str] | None) -> None:
        self.text = text
        self.pos = 0
        self.env = env
        self.escape = escape
        self.missing = missing
        self.depth = 0

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def next(self) -> str:
        ch = self.peek()
        self.pos += 1
        return ch

    def lookup(self, name: str) -> str:
        if name in self.env:
            return self.env[name]
        if self.missing is not None:
            self.missing.add(name)
        return ""

    def words(self, stop: str = "", split: bool = False) -> list[tuple[str, bool]]:
        """(word, quoted) parts until ``stop`` (consumed) or the end."""
        words: list[tuple[str, bool]] = []
        current: list[str] = []
        started = False
        while self.pos < len(self.text):
            ch = self.peek()
            if stop and ch == stop:
                self.pos += 1
                break
            if split and ch in " \t\n":
                self.pos += 1
                if started:
                    words.append(("".join(current), True))
                    current, started = [], False
                continue
            started = True
            if ch == "'":
                self.pos += 1
                current.append(self.single_quoted())
            elif ch == '"':
                self.pos += 1
                current.append(self.double_quoted())
            elif ch == "$":
                value = self.dollar()
                if split and not self.in_quotes_value:
                    # an unquoted expansion is split on whitespace too
                    pieces = value.split()
                    if pieces and value[:1].isspace() and current:
                        words.append(("".join(current), True))
                        current = []
                    for i, piece in enumerate(pieces):
                        current.append(piece)
                        if i < len(pieces) - 1:
                            words.append(("".join(current), True))
                            current = []
                    if pieces and value[-1:].isspace():
                        words.append(("".join(current), True))
                        current, started = [], False
                    elif not pieces and not current:
                        started = False
                else:
                    current.append(value)
            elif ch == self.escape:
                self.pos += 1
                if self.pos < len(self.text):
                    current.append(self.next())
                else:
                    current.append(ch)
            else:
                self.pos += 1
                current.append(ch)
        if started:
            words.append(("".join(current), True))
        return words

    in_quotes_value = False

    def single_quoted(self) -> str:
        end = self.text.find("'", self.pos)
        if end < 0:
            raise BuildError(f"unexpected end of statement while looking for matching "
                             f"single-quote: {self.text}")
        value = self.text[self.pos:end]
        self.pos = end + 1
        return value

    def double_quoted(self) -> str:
        out: list[str] = []
        while True:
            if self.pos >= len(self.text):
                raise BuildError(f"unexpected end of statement while looking for matching "
                                 f"double-quote: {self.text}")
            ch = self.peek()
            if ch == '"':
                self.pos += 1
                return "".join(out)
            if ch == "$":
                out.append(self.dollar())
            elif ch == self.escape:
                self.pos += 1
                nxt = self.peek()
                if nxt in ('"', "$", self.escape) and nxt:
                    out.append(self.next())
                else:
                    out.append(ch)
            else:
                self.pos += 1
                out.append(ch)

    def dollar(self) -> str:
        self.pos += 1   # the $
        ch = self.peek()
        if ch == "{":
            self.pos += 1
            return self.braced()
        if ch in _NAME_START:
            start = self.pos
            while self.peek() and self.peek() in _NAME:
                self.pos += 1
            return self.lookup(self.text[start:self.pos])
        if ch and ch in _SPECIAL:
            self.pos += 1
            return ""   # $1, $@...: positional and special parameters are empty here
        return "$"

    def braced(self) -> str:
        start = self.pos
        if self.peek() and self.peek() in _SPECIAL:
            self.pos += 1
        else:
            while self.peek() and self.peek() in _NAME:
                self.pos += 1
        name = self.text[start:self.pos]
        ch = self.next()
        if ch == "}":
            if not name:
                raise BuildError(f"bad substitution: {self.text}")
            return self.lookup(name)
        if ch == ":":
            modifier = self.next()
            saved = self.missing
            self.missing = None     # the word's own variables do not count when unused
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise BuildError(f"substitutions nested more than {MAX_NESTING} deep: "
                                 f"{self.text[:80]}...")
            parts = self.words(stop="}")
            self.depth -= 1
            self.missing = saved
            word = "".join(p for p, _ in parts)
            value = self.env.get(name, "")
            if modifier == "+":
                return word if value else ""
            if modifier == "-":
                if not value and self.missing is not None and name not in self.env:
                    self.missing.add(name)
                return value if value else word
            raise BuildError(f"unsupported modifier ({modifier}) in substitution: "
                             f"{self.text}")
        if not ch:
            raise BuildError(f"missing '}}' in substitution: {self.text}")
        raise BuildError(f"missing ':' in substitution: {self.text}")


def process_word(text: str, env: Mapping[str, str], escape: str = "\\",
                 missing: set[str] | None = None) -> str:
    """``text`` as one word: quotes removed, variables expanded, whitespace kept."""
    lexer = _Lexer(text, env, escape, missing)
    return "".join(word for word, _ in lexer.words())


def process_words(text: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """``text`` split into words on unquoted whitespace, after expansion."""
    lexer = _Lexer(text, env, escape, None)
    return [word for word, _ in lexer.words(split=True)]


def split_unexpanded(text: str) -> list[str]:
    """Whitespace-separated words, with quotes kept (Docker's
    parseStringsWhitespaceDelimited): each is expanded later on its own."""
    return text.split()
