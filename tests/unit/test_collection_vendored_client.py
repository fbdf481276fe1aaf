"""The collection's API client is Longboat's own, vendored unchanged (the collection
cannot import longboat on a managed host): the two files must not drift apart."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = ROOT / "runtime/longboat/client/api.py"
VENDORED = ROOT / "collection/ansible_collections/longboat/core/plugins/module_utils/api.py"


def test_the_vendored_client_is_the_cli_client() -> None:
    assert VENDORED.read_bytes() == ORIGINAL.read_bytes(), (
        f"{VENDORED.relative_to(ROOT)} differs from {ORIGINAL.relative_to(ROOT)}: copy it "
        f"over (cp {ORIGINAL.relative_to(ROOT)} {VENDORED.relative_to(ROOT)}) and run "
        "tests/e2e/test_ansible_sanity.py")


def test_the_client_needs_only_the_standard_library() -> None:
    import ast
    import sys

    tree = ast.parse(VENDORED.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    # paramiko only for ssh:// hosts, imported where it is used
    assert imported - set(sys.stdlib_module_names) - {"__future__"} == {"paramiko"}
