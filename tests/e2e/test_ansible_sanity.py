"""The collection passes `ansible-test sanity` (all 24 tests, Python 3.11, each test's
tools in a venv of its own) and the playbooks, the role and the molecule scenario pass
ansible-lint's production profile (exceptions justified in .ansible-lint)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
COLLECTION = ROOT / "collection" / "ansible_collections" / "longboat" / "core"

# ansible-test bootstraps pip in its venvs with a get-pip.py it downloads from a host
# outside the package registries; this stand-in gets pip from the interpreter's own
# ensurepip instead (restoring the pip configuration ensurepip hides), then installs
# what ansible-test asks for from the package index.
GET_PIP = '''"""Stand-in for get-pip.py, written by tests/e2e/test_ansible_sanity.py."""
import ensurepip
import os
import runpy
import sys

saved = dict(os.environ)
ensurepip.bootstrap()
os.environ.clear()
os.environ.update(saved)
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
sys.argv = [sys.argv[0], "install", *args]
runpy.run_module("pip", run_name="__main__", alter_sys=True)
'''


def environment() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
           "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collection"), "NO_COLOR": "1"}
    return env


@pytest.mark.timeout(1500)
def test_ansible_test_sanity() -> None:
    import re

    import ansible_test  # type: ignore[import-untyped]  # ships with ansible-core

    requirements = Path(ansible_test.__file__).parent / "_internal/python_requirements.py"
    found = re.search(r"pip='([0-9.]+)'", requirements.read_text())
    assert found, "where ansible-test names its pip version has moved: update this test"
    bootstrap = (Path.home() / ".ansible/test/cache" /
                 f"get_pip_{found[1].replace('.', '_')}.py")
    if not bootstrap.exists():
        bootstrap.parent.mkdir(parents=True, exist_ok=True)
        bootstrap.write_text(GET_PIP)
    done = subprocess.run([str(BIN / "ansible-test"), "sanity", "--venv", "--python", "3.11",
                           "--color", "no"], cwd=COLLECTION, env=environment(),
                          capture_output=True, text=True, timeout=1400, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert 'Running sanity test "validate-modules"' in output


@pytest.mark.timeout(600)
def test_ansible_lint_production_profile() -> None:
    if not (BIN / "ansible-lint").exists():
        pytest.fail("ansible-lint is missing: pip install -e '.[test]' installs it")
    done = subprocess.run([str(BIN / "ansible-lint"), "--nocolor", "playbooks/",
                           "collection/ansible_collections/longboat/core/roles", "molecule/"],
                          cwd=ROOT, env=environment(), capture_output=True, text=True,
                          timeout=500, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    assert "Profile 'production' was required, and it passed" in output
