"""The Go-template subset of ``--format``, and docker's table and size formatting."""

from __future__ import annotations

import pytest

from longboat.cli.output import human_duration, human_size, tabwrite
from longboat.cli.template import Context, Template, TemplateError, render

DATA = {"Id": "sha256:abc", "Size": 2007353, "Tags": ["a:1", "b:2"], "Empty": [],
        "Labels": {"z": "last", "a": "first", "html": "<b>&"}, "Config": {"Env": ["X=1"]},
        "Nil": None, "Flag": True, "Ratio": 2e6, "Name": "Web"}

CASES = [
    ("{{.Id}}", "sha256:abc"),
    ("id={{.Id}} size={{.Size}}", "id=sha256:abc size=2007353"),
    ("{{.Config.Env}}", "[X=1]"),
    ("{{json .Tags}}", '["a:1","b:2"]'),
    ("{{json .Labels}}", '{"z":"last","a":"first","html":"\\u003cb\\u003e\\u0026"}'),
    ("{{json .Empty}}", "[]"),
    ("{{json .Nil}}", "null"),
    ('{{index .Labels "a"}}', "first"),
    ('{{index .Tags 1}}', "b:2"),
    ("{{.Labels}}", "map[a:first html:<b>& z:last]"),
    ("{{range .Tags}}<{{.}}>{{end}}", "<a:1><b:2>"),
    ("{{range $i, $t := .Tags}}{{$i}}={{$t}} {{end}}", "0=a:1 1=b:2 "),
    ("{{range .Empty}}x{{else}}none{{end}}", "none"),
    ("{{range $k, $v := .Labels}}{{$k}} {{end}}", "a html z "),
    ('{{join .Tags ","}}', "a:1,b:2"),
    ("{{lower .Name}} {{upper .Name}} {{.Name | lower}}", "web WEB web"),
    ('{{printf "%s-%d|%5s|%-4s|%q" .Name .Size "r" "l" .Name}}',
     'Web-2007353|    r|l   |"Web"'),
    ("{{if .Flag}}yes{{else}}no{{end}} {{if .Empty}}yes{{else}}no{{end}}", "yes no"),
    ("{{with .Config}}{{.Env}}{{end}}", "[X=1]"),
    ("{{len .Tags}} {{eq .Name \"Web\"}} {{ne .Size 1}}", "2 true true"),
    ("{{.Ratio}} {{.Flag}}", "2e+06 true"),
    ("a  {{- .Name -}}  b", "aWebb"),
    ("{{/* a comment */}}plain text", "plain text"),
    ("{{$.Name}}", "Web"),
    ('{{split "a,b" ","}}', "[a b]"),
    ("{{.Nil}}", "<no value>"),
]


@pytest.mark.parametrize(("source", "expected"), CASES)
def test_template_renders_like_go(source: str, expected: str) -> None:
    assert Template(source).execute(DATA) == expected


ERRORS = [
    ("{{.Nope}}", 'template: :1:2: executing "" at <.Nope>: map has no entry for key "Nope"'),
    ("{{nope .Id}}", 'template: :1: function "nope" not defined'),
    ("{{.Nil.X}}", "nil pointer evaluating interface {}.X"),
    ("{{end}}", "unexpected {{end}}"),
    ("{{if .Flag}}x", "unexpected EOF"),
    ("{{.Id", "unclosed action"),
    ("{{.Id .Size}}", "can't give argument to non-function .Id"),
    ("{{range .Name}}x{{end}}", "range can't iterate over Web"),
    ("{{join .Name \",\"}}", "error calling join"),
]


@pytest.mark.parametrize(("source", "message"), ERRORS)
def test_template_errors_are_clear(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as caught:
        Template(source).execute(DATA)
    assert message in str(caught.value)


def test_unknown_field_of_a_row_names_the_row_type() -> None:
    row = Context("*formatter.imageContext", {"ID": "abc"})
    with pytest.raises(TemplateError, match="can't evaluate field Nope in type "
                                            r"\*formatter.imageContext"):
        Template("{{.Nope}}").execute(row)


def test_json_of_a_row_has_sorted_keys_like_docker() -> None:
    row = Context("x", {"Tag": "1", "Digest": "<none>", "ID": "abc"})
    assert Template("{{json .}}").execute(row) == \
        '{"Digest":"\\u003cnone\\u003e","ID":"abc","Tag":"1"}'


def test_table_header_comes_from_the_same_template() -> None:
    rows = [Context("x", {"Repository": "imp", "Tag": "1", "ID": "5c1c05a9550e"}),
            Context("x", {"Repository": "localhost:5000/team/app", "Tag": "v2",
                          "ID": "5c1c05a9550e"})]
    headers = {"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID"}
    out = render("table {{.Repository}}:{{.Tag}}\\t{{upper .ID}}", rows, headers)
    assert out == ("REPOSITORY:TAG               IMAGE ID\n"
                   "imp:1                        5C1C05A9550E\n"
                   "localhost:5000/team/app:v2   5C1C05A9550E\n")
    assert render("{{.ID}}", rows, headers) == "5c1c05a9550e\n5c1c05a9550e\n"
    assert render("table {{.ID}}", [], headers) == "IMAGE ID\n"


@pytest.mark.parametrize(("size", "precision", "text"), [
    (0, 4, "0B"), (999, 4, "999B"), (1000, 4, "1kB"), (2007353, 3, "2.01MB"),
    (2007353, 4, "2.007MB"), (1642, 4, "1.642kB"), (999_999, 3, "1e+03kB"),
    (5 * 10**12, 3, "5TB"),
])
def test_human_size_matches_go_units(size: int, precision: int, text: str) -> None:
    assert human_size(size, precision) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0.5, "Less than a second"), (1, "1 second"), (59, "59 seconds"),
    (60, "About a minute"), (300, "5 minutes"), (3599, "59 minutes"),
    (3600, "About an hour"), (5400, "2 hours"), (47 * 3600, "47 hours"),
    (3 * 86400, "3 days"), (15 * 86400, "2 weeks"), (90 * 86400, "3 months"),
    (800 * 86400, "2 years"),
])
def test_human_duration_matches_go_units(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_tabwriter_aligns_like_go() -> None:
    text = "A\tBB\tC\nlonger\tx\ty\n"
    assert tabwrite(text) == "A         BB        C\nlonger    x         y\n"
    assert tabwrite("muchlongername\tx\n") == "muchlongername   x\n"
    # blocks: a line without tabs ends a column block (docker version's layout)
    text = "Client:\n Version:\t1\n API version:\t1.41\nServer:\n  Built:\t\n"
    assert tabwrite(text, 20, 1, 1) == ("Client:\n Version:           1\n"
                                        " API version:       1.41\nServer:\n"
                                        "  Built:            \n")
