"""``python -m rankloss`` is the ``rankloss`` command."""

from __future__ import annotations

import subprocess
import sys


def test_python_dash_m_runs_the_command_line():
    done = subprocess.run(
        [sys.executable, "-m", "rankloss", "--version"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("rankloss 0.")
