"""Bench: wall time of the second (no-change) run of playbooks/engine.yml on 3 lab
hosts. The first run installs and starts the engines; the runs after it must report
changed=0, and their wall time is what an operator waits for a "nothing to do" check.
No baseline tool: ours alone (DESIGN.md's Ansible goal is under 30 s for the swarm
playbook; this is the engine playbook it builds on).

    python tests/bench/ansible_engine_rerun.py [--runs 3]
    pytest -m bench tests/bench/ansible_engine_rerun.py -s
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.e2e.test_engine_playbook import EngineLab

pytestmark = pytest.mark.bench


def measure(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lbb-") as tmp:
        lab = EngineLab(f"lbb{os.getpid() % 1000000}", "10.252.2.0/24", Path(tmp))
        try:
            lab.up()
            _recap, first, _out = lab.playbook()
            again = []
            for _ in range(runs):
                recap, elapsed, output = lab.playbook()
                changed = {host: values[1] for host, values in recap.items()}
                assert set(changed.values()) == {0}, output
                again.append(elapsed)
        finally:
            lab.down()
        assert lab.leftovers() == []
    return {"first": first, "rerun_median": statistics.median(again),
            "rerun_min": min(again), "rerun_max": max(again)}


def report(result: dict[str, float], runs: int) -> None:
    print(f"playbooks/engine.yml on 3 lab hosts: first run {result['first']:.1f} s; "
          f"no-change rerun median {result['rerun_median']:.1f} s "
          f"(min {result['rerun_min']:.1f}, max {result['rerun_max']:.1f}, {runs} runs)")


@pytest.mark.timeout(1800)
def test_engine_playbook_rerun() -> None:
    result = measure(3)
    report(result, 3)
    assert result["rerun_median"] < 30


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    report(measure(args.runs), args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
