"""The subset of Go's ``text/template`` that ``--format`` takes, with docker's functions.

Actions: ``{{.Field}}``, ``{{.A.B}}``, ``{{.}}``, ``{{$}}``, variables (``$x``) declared by
``range``; pipelines (``{{.Name | lower}}``); ``{{if}}``/``{{else}}``/``{{end}}``,
``{{range}}`` (lists, maps by sorted key, with ``$i, $e :=``), ``{{with}}``; trim markers
``{{-`` and ``-}}``; comments. Functions: docker's ``json``, ``join``, ``split``,
``lower``, ``upper``, ``title``, ``pad``, ``truncate``, ``println``, and Go's ``index``,
``len``, ``printf``, ``print``, ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``and``,
``or``, ``not``.

As docker does, a missing map key or an unknown field is an error (Go's
``missingkey=error``), an unknown function fails at parse time, and ``table`` formats
print a header made by running the same template over the column names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

from longboat.cli.output import go_json, tabwrite


class TemplateError(Exception):
    """A template that does not parse or does not run; ``str()`` is docker's text."""


class Context:
    """One row of a listing (an image, a history entry): named fields, like the docker
    CLI's formatter contexts; ``{{json .}}`` gives every field, sorted by name."""

    def __init__(self, type_name: str, fields: dict[str, Any]) -> None:
        self.type_name = type_name
        self.fields = fields

    def __repr__(self) -> str:
        return f"Context({self.type_name}, {self.fields!r})"


class _Header(Context):
    """What a table's header row runs on: each field is its column title."""


# -- lexing --------------------------------------------------------------------------------
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<declare>:=)
  | (?P<var>\$[A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<field>(?:\.[A-Za-z_][A-Za-z0-9_]*)+|\.)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[|(),=])
""", re.VERBOSE)

_KEYWORDS = {"if", "else", "end", "range", "with"}


class _Tok:
    __slots__ = ("kind", "pos", "text")

    def __init__(self, kind: str, text: str, pos: int) -> None:
        self.kind, self.text, self.pos = kind, text, pos


# -- the tree ------------------------------------------------------------------------------
class _Node:
    pos = 0


class _Text(_Node):
    def __init__(self, text: str) -> None:
        self.text = text


class _Operand(_Node):
    """A field chain, variable, literal, function name or parenthesised pipeline."""

    def __init__(self, kind: str, value: Any, pos: int, source: str) -> None:
        self.kind, self.value, self.pos, self.source = kind, value, pos, source


class _Pipe(_Node):
    def __init__(self, decl: list[str], commands: list[list[_Operand]], pos: int) -> None:
        self.decl, self.commands, self.pos = decl, commands, pos


class _Action(_Node):
    def __init__(self, pipe: _Pipe) -> None:
        self.pipe = pipe


class _Block(_Node):
    def __init__(self, kind: str, pipe: _Pipe) -> None:
        self.kind = kind
        self.pipe = pipe
        self.body: list[_Node] = []
        self.otherwise: list[_Node] = []


class Template:
    """A parsed template; :meth:`execute` runs it on one value."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.nodes = _Parser(source).parse()

    def execute(self, data: Any, *, header: bool = False) -> str:
        out: list[str] = []
        _Exec(self.source, data, header).run(self.nodes, data, out)
        return "".join(out)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def line_of(self, pos: int) -> int:
        return self.source.count("\n", 0, pos) + 1

    def fail(self, pos: int, message: str) -> TemplateError:
        return TemplateError(f"template: :{self.line_of(pos)}: {message}")

    def parse(self) -> list[_Node]:
        root: list[_Node] = []
        stack: list[tuple[_Block, bool]] = []   # (block, in its else part)

        def target() -> list[_Node]:
            if not stack:
                return root
            block, in_else = stack[-1]
            return block.otherwise if in_else else block.body

        src = self.source
        i = 0
        trim_next = False
        while i < len(src):
            start = src.find("{{", i)
            text = src[i:] if start < 0 else src[i:start]
            if trim_next:
                text = text.lstrip(" \t\r\n")
            if start >= 0 and src.startswith("{{- ", start):
                text = text.rstrip(" \t\r\n")
            if text:
                target().append(_Text(text))
            if start < 0:
                break
            inner = start + 2
            if src.startswith("- ", inner):
                inner += 2
            end = src.find("}}", inner)
            if end < 0:
                raise self.fail(start, "unclosed action")
            trim_next = src[end - 2:end] == " -" and end - 2 >= inner
            body_end = end - 2 if trim_next else end
            i = end + 2
            body = src[inner:body_end]
            if body.strip().startswith("/*"):
                continue
            tokens = self.tokens(body, inner)
            if not tokens:
                raise self.fail(start, "missing value for command")
            first = tokens[0]
            if first.kind == "ident" and first.text in _KEYWORDS:
                word = first.text
                if word == "end":
                    if not stack:
                        raise self.fail(start, "unexpected {{end}}")
                    block, _ = stack.pop()
                    target().append(block)
                elif word == "else":
                    if not stack or stack[-1][1]:
                        raise self.fail(start, "unexpected {{else}}")
                    stack[-1] = (stack[-1][0], True)
                    if len(tokens) > 1:      # {{else if ...}}: a nested if closed by end
                        raise self.fail(start, "{{else if}} is not supported; nest an "
                                               "{{if}} in the {{else}}")
                else:
                    pipe = self.pipeline(tokens[1:], first.pos, allow_decl=word == "range")
                    stack.append((_Block(word, pipe), False))
                continue
            target().append(_Action(self.pipeline(tokens, first.pos, allow_decl=False)))
        if stack:
            raise self.fail(len(src), f"unexpected EOF in {{{{{stack[-1][0].kind}}}}}")
        return root

    def tokens(self, body: str, offset: int) -> list[_Tok]:
        out: list[_Tok] = []
        j = 0
        while j < len(body):
            match = _TOKEN.match(body, j)
            if not match:
                raise self.fail(offset + j, f"unexpected {body[j]!r} in command")
            kind = match.lastgroup or ""
            if kind != "space":
                out.append(_Tok(kind, match.group(), offset + j))
            j = match.end()
        return out

    def pipeline(self, tokens: list[_Tok], pos: int, *, allow_decl: bool) -> _Pipe:
        decl: list[str] = []
        if allow_decl:
            names = [t for t in tokens if t.kind == "declare"]
            if names:
                k = tokens.index(names[0])
                decl = [t.text for t in tokens[:k] if t.kind == "var"]
                tokens = tokens[k + 1:]
        commands: list[list[_Operand]] = [[]]
        k = 0

        def operand(k: int) -> tuple[_Operand, int]:
            tok = tokens[k]
            if tok.kind == "punct" and tok.text == "(":
                depth, m = 1, k + 1
                while m < len(tokens) and depth:
                    if tokens[m].text == "(" and tokens[m].kind == "punct":
                        depth += 1
                    elif tokens[m].text == ")" and tokens[m].kind == "punct":
                        depth -= 1
                    m += 1
                if depth:
                    raise self.fail(tok.pos, "unclosed left paren")
                inner = self.pipeline(tokens[k + 1:m - 1], tok.pos, allow_decl=False)
                return _Operand("pipe", inner, tok.pos, "(...)"), m
            if tok.kind == "string":
                return _Operand("literal", json.loads(tok.text), tok.pos, tok.text), k + 1
            if tok.kind == "raw":
                return _Operand("literal", tok.text[1:-1], tok.pos, tok.text), k + 1
            if tok.kind == "number":
                text = tok.text
                value: Any = float(text) if any(c in text for c in ".eE") else int(text)
                return _Operand("literal", value, tok.pos, text), k + 1
            if tok.kind == "field":
                return _Operand("field", tok.text, tok.pos, tok.text), k + 1
            if tok.kind == "var":
                return _Operand("var", tok.text, tok.pos, tok.text), k + 1
            if tok.kind == "ident":
                if tok.text in ("true", "false"):
                    return _Operand("literal", tok.text == "true", tok.pos, tok.text), k + 1
                if tok.text == "nil":
                    return _Operand("literal", None, tok.pos, tok.text), k + 1
                if tok.text in _KEYWORDS:
                    raise self.fail(tok.pos, f"unexpected <{tok.text}> in command")
                if tok.text not in FUNCTIONS:
                    raise self.fail(tok.pos, f'function "{tok.text}" not defined')
                return _Operand("func", tok.text, tok.pos, tok.text), k + 1
            raise self.fail(tok.pos, f"unexpected {tok.text!r} in command")

        while k < len(tokens):
            tok = tokens[k]
            if tok.kind == "punct" and tok.text == "|":
                if not commands[-1]:
                    raise self.fail(tok.pos, "missing command before |")
                commands.append([])
                k += 1
                continue
            node, k = operand(k)
            commands[-1].append(node)
        if not commands[-1]:
            raise self.fail(pos, "missing value for command")
        return _Pipe(decl, commands, pos)


# -- execution -------------------------------------------------------------------------------
def go_text(value: Any) -> str:
    """A value as Go's ``fmt`` prints it with ``%v``."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, list | tuple):
        return "[" + " ".join("<nil>" if v is None else go_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{'<nil>' if value[k] is None else go_text(value[k])}"
                                 for k in sorted(value)) + "]"
    if isinstance(value, Context):
        return "{" + " ".join(go_text(value.fields[k]) for k in value.fields) + "}"
    return str(value)


def _go_float(value: float) -> str:
    """Go's ``%v`` of a float64: the shortest digits, exponent form outside 1e-4..1e6."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    short = repr(abs(value))
    if "e" in short:
        mantissa, _, exp = short.partition("e")
        exponent = int(exp)
        digits = mantissa.replace(".", "")
    else:
        whole, _, frac = short.partition(".")
        if whole != "0":
            exponent = len(whole) - 1
            digits = whole + frac
        else:
            stripped = frac.lstrip("0")
            exponent = -(len(frac) - len(stripped)) - 1
            digits = stripped
    digits = digits.lstrip("0").rstrip("0") or "0"
    if exponent < -4 or exponent >= 6:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mant}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"
    return sign + (short[:-2] if short.endswith(".0") else short)


def _truth(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str | list | tuple | dict):
        return len(value) > 0
    return True


def _json(value: Any) -> str:
    if isinstance(value, Context):
        return go_json(value.fields, sort_keys=True)
    return go_json(value)


def _index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if isinstance(item, dict):
            item = item.get(key)
        elif isinstance(item, list | tuple | str):
            if not isinstance(key, int) or not -1 < key < len(item):
                raise _ExecFailure(f"error calling index: index out of range: {key}")
            item = item[key]
        elif isinstance(item, Context):
            item = item.fields.get(key)
        elif item is None:
            raise _ExecFailure("error calling index: index of untyped nil")
        else:
            raise _ExecFailure(f"error calling index: can't index item of type "
                               f"{type(item).__name__}")
    return item


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def go_sprintf(fmt: str, *args: Any) -> str:
    """``fmt.Sprintf`` for the common verbs: %s %v %d %q %t %x %X %f %e %g %c %%."""
    queue = list(args)
    used = 0

    def one(match: re.Match[str]) -> str:
        nonlocal used
        flags, width, prec, verb = match.groups()
        if verb == "%":
            return "%"
        if used >= len(queue):
            return f"%!{verb}(MISSING)"
        arg = queue[used]
        used += 1
        spec = "%" + flags + (width or "") + (f".{prec}" if prec is not None else "")
        try:
            if verb in "sv":
                return (spec + "s") % go_text(arg)
            if verb == "q":
                return (spec + "s") % json.dumps(go_text(arg), ensure_ascii=False)
            if verb == "t":
                return (spec + "s") % go_text(bool(arg))
            if verb in "dxXobc":
                if isinstance(arg, str) and verb in "xX":
                    text = arg.encode().hex()
                    return (spec + "s") % (text.upper() if verb == "X" else text)
                if verb == "b":
                    return (spec + "s") % format(int(arg), "b")
                if verb == "c":
                    return (spec + "s") % chr(int(arg))
                return (spec + verb) % int(arg)
            if verb in "feEgG":
                return (spec + verb) % float(arg)
        except (TypeError, ValueError):
            return f"%!{verb}({type(arg).__name__}={go_text(arg)})"
        return f"%!{verb}({type(arg).__name__}={go_text(arg)})"

    text = _VERB.sub(one, fmt)
    if used < len(queue):
        text += "%!(EXTRA " + ", ".join(f"{type(a).__name__}={go_text(a)}"
                                         for a in queue[used:]) + ")"
    return text


def _go_print(*args: Any) -> str:
    out = ""
    for n, arg in enumerate(args):
        if n and not isinstance(arg, str) and not isinstance(args[n - 1], str):
            out += " "
        out += go_text(arg)
    return out


def _compare(op: str) -> Callable[..., bool]:
    def check(a: Any, *others: Any) -> bool:
        if not others:
            raise _ExecFailure(f"wrong number of args for {op}: want at least 2 got 1")
        for b in others:
            if op in ("eq", "ne") and (isinstance(a, bool) != isinstance(b, bool)
                                       or isinstance(a, str) != isinstance(b, str)):
                raise _ExecFailure(f"error calling {op}: incompatible types for comparison")
            try:
                result = {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b,
                          "gt": a > b, "ge": a >= b}[op]
            except TypeError:
                raise _ExecFailure(f"error calling {op}: incompatible types for "
                                   "comparison") from None
            if op == "eq" and result:
                return True
            if op != "eq" and not result:
                return False
        return op != "eq"
    return check


def _join(items: Any, sep: str) -> str:
    if not isinstance(items, list | tuple):
        raise _ExecFailure(f"error calling join: expected a list, got {go_text(items)}")
    return sep.join(go_text(i) for i in items)


def _str(fn: Callable[[str], str], name: str) -> Callable[[Any], str]:
    def call(value: Any) -> str:
        if not isinstance(value, str):
            raise _ExecFailure(f"wrong type for value; expected string; got "
                               f"{type(value).__name__}")
        return fn(value)
    call.__name__ = name
    return call


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "json": _json,
    "join": _join,
    "split": lambda s, sep: _str(lambda v: v, "split")(s).split(sep),
    "lower": _str(str.lower, "lower"),
    "upper": _str(str.upper, "upper"),
    "title": _str(str.title, "title"),
    "pad": lambda s, left, right: " " * int(left) + go_text(s) + " " * int(right),
    "truncate": lambda s, n: _str(lambda v: v, "truncate")(s)[:int(n)],
    "println": lambda *a: " ".join(go_text(x) for x in a) + "\n",
    "print": _go_print,
    "printf": lambda fmt, *a: go_sprintf(str(fmt), *a),
    "index": _index,
    "len": lambda x: len(x.fields if isinstance(x, Context) else x),
    "eq": _compare("eq"), "ne": _compare("ne"), "lt": _compare("lt"),
    "le": _compare("le"), "gt": _compare("gt"), "ge": _compare("ge"),
    "not": lambda x: not _truth(x),
}
# header rows: docker's HeaderFunctions hand the column title through unchanged
_HEADER_FUNCTIONS = {"json", "join", "split", "lower", "upper", "title", "pad", "truncate"}


class _ExecFailure(Exception):
    pass


class _Exec:
    def __init__(self, source: str, root: Any, header: bool) -> None:
        self.source = source
        self.header = header
        self.vars: list[tuple[str, Any]] = [("$", root)]

    def fail(self, node: _Operand | _Pipe, message: str) -> TemplateError:
        line = self.source.count("\n", 0, node.pos) + 1
        column = node.pos - (self.source.rfind("\n", 0, node.pos) + 1)
        where = node.source if isinstance(node, _Operand) else "<pipeline>"
        return TemplateError(f'template: :{line}:{column}: executing "" at <{where}>: '
                             f"{message}")

    def run(self, nodes: list[_Node], dot: Any, out: list[str]) -> None:
        for node in nodes:
            if isinstance(node, _Text):
                out.append(node.text)
            elif isinstance(node, _Action):
                value = self.pipe(node.pipe, dot)
                out.append(go_text(value))
            elif isinstance(node, _Block):
                self.block(node, dot, out)

    def block(self, node: _Block, dot: Any, out: list[str]) -> None:
        value = self.pipe(node.pipe, dot)
        if node.kind == "if":
            self.run(node.body if _truth(value) else node.otherwise, dot, out)
        elif node.kind == "with":
            if _truth(value):
                self.run(node.body, value, out)
            else:
                self.run(node.otherwise, dot, out)
        else:
            items: Iterable[tuple[Any, Any]]
            if isinstance(value, list | tuple):
                items = enumerate(value)
            elif isinstance(value, dict):
                items = ((k, value[k]) for k in sorted(value))
            elif isinstance(value, int) and not isinstance(value, bool):
                items = ((n, n) for n in range(value))
            elif value is None:
                items = ()
            else:
                raise self.fail(node.pipe.commands[0][0],
                                f"range can't iterate over {go_text(value)}")
            any_item = False
            mark = len(self.vars)
            for key, item in items:
                any_item = True
                if len(node.pipe.decl) == 1:
                    self.vars.append((node.pipe.decl[0], item))
                elif len(node.pipe.decl) == 2:
                    self.vars += [(node.pipe.decl[0], key), (node.pipe.decl[1], item)]
                self.run(node.body, item, out)
                del self.vars[mark:]
            if not any_item:
                self.run(node.otherwise, dot, out)

    def pipe(self, pipe: _Pipe, dot: Any) -> Any:
        value: Any = None
        piped = False
        for command in pipe.commands:
            value = self.command(command, dot, value, piped)
            piped = True
        return value

    def command(self, command: list[_Operand], dot: Any, last: Any, piped: bool) -> Any:
        head = command[0]
        if head.kind == "func":
            args = [self.operand(a, dot) for a in command[1:]]
            if piped:
                args.append(last)
            if self.header and head.value in _HEADER_FUNCTIONS:
                return args[0] if args else ""
            try:
                return FUNCTIONS[head.value](*args)
            except _ExecFailure as exc:
                raise self.fail(head, str(exc)) from None
            except TypeError:
                raise self.fail(head, f"wrong number of args for {head.value}: got "
                                      f"{len(args)}") from None
        if len(command) > 1 or piped:
            raise self.fail(head, f"can't give argument to non-function {head.source}")
        return self.operand(head, dot)

    def operand(self, node: _Operand, dot: Any) -> Any:
        if node.kind == "literal":
            return node.value
        if node.kind == "pipe":
            return self.pipe(node.value, dot)
        if node.kind == "func":
            return self.command([node], dot, None, False)
        text: str = node.value
        if node.kind == "var":
            name, _, rest = text.partition(".")
            for var, value in reversed(self.vars):
                if var == name:
                    base = value
                    break
            else:
                raise self.fail(node, f"undefined variable: {name}")
            return self.fields(node, base, rest.split(".") if rest else [])
        if text == ".":
            return dot
        return self.fields(node, dot, text[1:].split("."))

    def fields(self, node: _Operand, value: Any, names: list[str]) -> Any:
        for name in names:
            if isinstance(value, _Header):
                value = value.fields.get(name, name.upper())
            elif isinstance(value, Context):
                if name not in value.fields:
                    raise self.fail(node, f"can't evaluate field {name} in type "
                                          f"{value.type_name}")
                value = value.fields[name]
            elif isinstance(value, dict):
                if name not in value:
                    raise self.fail(node, f'map has no entry for key "{name}"')
                value = value[name]
            elif value is None:
                raise self.fail(node, f"nil pointer evaluating interface {{}}.{name}")
            else:
                raise self.fail(node, f"can't evaluate field {name} in type "
                                      f"{_go_type(value)}")
        return value


def _go_type(value: Any) -> str:
    return {str: "string", int: "int", float: "float64", bool: "bool", list: "[]interface {}"
            }.get(type(value), type(value).__name__)


# -- docker's formatting of listings ---------------------------------------------------------
def prepare(fmt: str) -> tuple[bool, str]:
    """docker's ``Format``: (is it a table, the template text): ``table`` removed,
    surrounding spaces trimmed, literal ``\\t`` and ``\\n`` made real."""
    table = fmt.startswith("table")
    if table:
        fmt = fmt[len("table"):]
    fmt = fmt.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    return table, fmt


def render(fmt: str, rows: list[Context], headers: dict[str, str],
           type_name: str = "") -> str:
    """The text docker's formatter writes for ``rows`` under ``--format fmt``: one line
    per row; a ``table`` gets a header line and Go tabwriter columns."""
    table, text = prepare(fmt)
    template = Template(text)
    body = "".join(template.execute(row) + "\n" for row in rows)
    if not table:
        return body
    head = template.execute(_Header(type_name, headers), header=True)
    return tabwrite(head + "\n" + body)
