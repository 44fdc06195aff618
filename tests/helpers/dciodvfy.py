"""Run dicom3tools' `dciodvfy` (the DICOM IOD validator) on a file; skip the test when it is not installed.

Install on Debian/Ubuntu: `apt-get install -y dicom3tools`.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest


def dciodvfy_errors(path: Path) -> list[str]:
    """The "Error" lines dciodvfy reports for `path` (skips the calling test when dciodvfy is absent)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy not installed (Debian package dicom3tools)")
    result = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]
