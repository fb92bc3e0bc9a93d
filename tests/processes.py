"""Python processes the tests start side by side (test_model.py's two backends, test_devices.py's device counts):
each prints one JSON line last, its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def start_python(arguments: list[str], **environment: str) -> subprocess.Popen:
    """``python ARGUMENTS`` with this process's environment plus ``environment``, on the CPU only."""
    return subprocess.Popen([sys.executable, *map(str, arguments)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **environment})


def reports_of(processes: list[subprocess.Popen], timeout: float = 600) -> list[dict]:
    """Each process's last line, read as JSON, in order; a failed one fails the test with its stderr, and the others
    are stopped (one may be waiting for a file the failed one would have written)."""
    try:
        reports = []
        for process in processes:
            stdout, stderr = process.communicate(timeout=timeout)
            assert process.returncode == 0, stderr[-3000:]
            reports.append(json.loads(stdout.strip().splitlines()[-1]))
        return reports
    finally:
        for process in processes:
            process.kill()

