"""The gallery examples run, and the documentation builds, so that neither can rot.

Every ``examples/plot_*.py`` is executed with :mod:`runpy` in a temporary working directory,
with matplotlib's non-interactive Agg backend; figures are closed afterwards. The
documentation build (``sphinx-build -W``, examples not executed) is marked slow.
"""

import os
import runpy
import shutil
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
DOCS_DIR = ROOT / "docs"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))

#: Examples that need an optional package (module to import) beyond the test extra.
NEEDS = {"plot_dask_cluster": "distributed", "plot_read_nwb": "pynwb"}

#: What Sphinx generates inside the source folder; not copied into the test build.
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst")


@pytest.fixture(autouse=True)
def single_torch_thread():
    """The examples' models are tiny: one torch thread is fastest on a shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_examples_are_found():
    assert len(EXAMPLES) >= 6, f"expected the gallery examples in {EXAMPLES_DIR}"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_has_a_gallery_title(path):
    """sphinx-gallery needs a module docstring that starts with a title underlined by '='."""
    source = path.read_text(encoding="utf-8")
    assert source.startswith('"""\n'), f"{path.name} must open with a module docstring"
    lines = source.splitlines()
    title, underline = lines[1], lines[2]
    assert title.strip(), f"{path.name}: the docstring must start with a title"
    assert set(underline) == {"="} and len(underline) >= len(title), (
        f"{path.name}: the title must be underlined by '=' at least as long as the title"
    )


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_example_runs(path, tmp_path, monkeypatch):
    module = NEEDS.get(path.stem)
    if module is not None and find_spec(module) is None:
        pytest.skip(f"{path.name} needs {module}, which is not installed")
    matplotlib = pytest.importorskip("matplotlib")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(path)])
    try:
        runpy.run_path(str(path), run_name="__main__")
    finally:
        plt.close("all")


@pytest.mark.slow
def test_docs_build(tmp_path):
    """``sphinx-build -b html -W --keep-going`` succeeds (gallery not executed, offline)."""
    for module in ("sphinx", "numpydoc", "sphinx_gallery", "myst_parser", "matplotlib"):
        pytest.importorskip(module)
    source = tmp_path / "docs"
    shutil.copytree(DOCS_DIR, source, ignore=shutil.ignore_patterns(*GENERATED))
    shutil.copytree(EXAMPLES_DIR, tmp_path / "examples")
    env = dict(os.environ, SKVARAE_DOCS_OFFLINE="1", MPLBACKEND="Agg")
    command = [
        sys.executable, "-m", "sphinx",
        "-b", "html", "-W", "--keep-going", "-q",
        "-D", "plot_gallery=0",
        str(source), str(tmp_path / "html"),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert (tmp_path / "html" / "index.html").is_file()
    assert (tmp_path / "html" / "auto_examples" / "index.html").is_file()
