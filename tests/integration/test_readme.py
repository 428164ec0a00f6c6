"""Every ```bash block of the README runs, in order, in one shell, against a live `botranks up`.

So the README cannot rot: a snippet that fails (a non-zero exit, or an HTTP error from curl)
fails this test. Blocks fenced as ```sh are shown to readers but not run here: the two
commands at the top (CI runs the second one literally; this test runs the first one's
`botranks up` itself) and alternatives that need other servers. The shell gets the repo as
its working directory (so `.venv/bin/botranks` is this checkout's), the test's own
BOTRANKS_HOME, and the base URL's port rewritten to the test's free port (BOTRANKS_URL for the
CLI). `curl` fails on
HTTP errors (`--fail-with-body`), which the README's readers see as an error body anyway.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from devtools.stack import ROOT, BotranksUp

pytestmark = pytest.mark.integration

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
HARNESS = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }
"""


def readme_blocks(language: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [body for lang, body in FENCE.findall(text) if lang == language]


def test_the_readme_opens_with_the_two_commands():
    first = readme_blocks("sh")[0]
    assert ".venv/bin/botranks up" in first and ".venv/bin/python -m pytest" in first
    ci = (ROOT / ".ci" / "run").read_text()
    assert [line for line in first.splitlines() if "pytest" in line][0] in ci


def test_every_bash_block_of_the_readme_runs_against_botranks_up(tmp_path):
    venv_bin = ROOT / ".venv" / "bin"
    if not (venv_bin / "botranks").exists():
        pytest.fail(".venv/bin/botranks is missing: run the README's install command first")
    with BotranksUp(tmp_path, timeout=120) as up:
        blocks = readme_blocks("bash")
        assert len(blocks) >= 3
        script = HARNESS + "\n".join(
            f"echo '>>> README bash block {i + 1}'\n{block.replace('127.0.0.1:8000', f'127.0.0.1:{up.port}')}"
            for i, block in enumerate(blocks)
        )
        run = subprocess.run(["bash", "-c", script], cwd=ROOT, env=up.env, capture_output=True, text=True, timeout=600)
        Path(tmp_path / "readme.out").write_text(run.stdout + run.stderr)
        assert run.returncode == 0, f"README block failed:\n{run.stdout[-4000:]}\n{run.stderr[-4000:]}"
        assert f">>> README bash block {len(blocks)}" in run.stdout
