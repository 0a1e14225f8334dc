"""No telemetry and no network: ONNX Runtime's telemetry stays off in every entry point."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT

GUI_SEARCH = """
import sys
from PySide6.QtWidgets import QApplication
from gui.app import MainWindow
app = QApplication([])
window = MainWindow(dictionary=sys.argv[1], fmt=None, model=sys.argv[2])
window.search_box.setText("cholera")
from PySide6.QtCore import QTimer
QTimer.singleShot(4000, app.quit)
app.exec()
"""


def run_isolated(args: list[str], home, *, strace: bool) -> subprocess.CompletedProcess:
    """Run a Python entry point with a scratch HOME (where telemetry would write its device id),
    under strace (network system calls only) when it is installed."""
    env = {
        "HOME": str(home),
        "PATH": os.environ.get("PATH", ""),
        "QT_QPA_PLATFORM": "offscreen",
        "SAPBERT_KO_EN_CACHE": str(home / "cache"),
        "SAPBERT_KO_EN_DATA": str(home / "data"),
    }
    command = [sys.executable, *args]
    if strace:
        command = [
            "strace",
            "-f",
            "-qq",
            "-e",
            "trace=socket,connect",
            "-o",
            str(home / "strace.log"),
            *command,
        ]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("entry", ["cli", "gui"])
def test_no_telemetry_file_and_no_network_socket(entry, tmp_path, small_kcd, tiny_bundle):
    if entry == "gui":
        pytest.importorskip("PySide6")
        args = ["-c", GUI_SEARCH, str(small_kcd), str(tiny_bundle)]
    else:
        args = [
            "-m",
            "core",
            "search",
            "--dictionary",
            str(small_kcd),
            "--model",
            str(tiny_bundle),
            "cholera",
        ]
    home = tmp_path / "home"
    home.mkdir()
    traced = shutil.which("strace") is not None
    out = run_isolated(args, home, strace=traced)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not (home / ".cache" / "Microsoft").exists(), "onnxruntime wrote its telemetry files"
    if traced:
        log = (home / "strace.log").read_text()
        network = [line for line in log.splitlines() if re.search(r"AF_INET6?\b", line)]
        assert not network, network[:5]
