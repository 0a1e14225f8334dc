import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("torch", "transformers", "optimum")


@pytest.mark.parametrize(
    "modules",
    [
        "core, core.bundle, core.dictionary, core.index, core.search, core.evaluation, core.__main__",
        "gui, gui.app, gui.models, gui.workers, gui.batch, gui.__main__",
    ],
)
def test_runtime_never_imports_torch(modules):
    code = (
        f"import sys, {modules}\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {HEAVY!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": ""},
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_missing_extra_names_the_install_command():
    from core.errors import MissingExtraError, require

    with pytest.raises(MissingExtraError, match=r"pip install 'sapbert-ko-en\[gui\]'"):
        require("no_such_module_xyz", "gui")
