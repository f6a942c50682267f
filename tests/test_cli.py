import subprocess
import sys

import numpy as np
import pytest

from skvarae import SparseVARAutoencoder, make_calcium_movies
from skvarae.__main__ import main

pytest.importorskip("matplotlib")

SMALL_DEMO = ["--runs", "4", "--frames", "60", "--size", "32", "--epochs", "2",
              "--permutations", "20"]


@pytest.fixture(scope="module")
def run_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    data = make_calcium_movies(n_runs=4, n_frames=40, frame_shape=(32, 32), random_state=0)
    paths = []
    for index, movie in enumerate(data.movies):
        path = folder / f"run{index}.npy"
        np.save(path, movie)
        paths.append(str(path))
    return paths


def test_demo_prints_a_summary_and_writes_figures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", *SMALL_DEMO, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for expected in ("score", "sparsity", "pvalue", "Time", "driver cells among all cell pixels"):
        assert expected in printed
    names = {p.name for p in out.glob("*.png")}
    assert names == {"contribution_map.png", "difference_map.png", "coefficients.png",
                     "forecast.png", "loss.png"}
    assert all(p.stat().st_size > 1000 for p in out.glob("*.png"))


def test_fit_map_compare_round_trip(run_files, tmp_path, capsys):
    model_path = tmp_path / "model.pt"
    assert main(["fit", *run_files, "--epochs", "2", "--out", str(model_path)]) == 0
    assert "Saved to" in capsys.readouterr().out
    model = SparseVARAutoencoder.load(model_path)
    assert model.coef_.shape[0] == 4

    map_png, map_npy = tmp_path / "map.png", tmp_path / "map.npy"
    assert main(["map", str(model_path), *run_files[:2], "--out", str(map_png),
                 "--npy", str(map_npy)]) == 0
    assert map_png.stat().st_size > 1000
    np.testing.assert_allclose(np.load(map_npy), model.contribution_map(run_files[:2]))

    assert main(["compare", str(model_path), "--a", *run_files[:2], "--b", *run_files[2:],
                 "--permutations", "10"]) == 0
    assert "PermutationTestResult" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "does-not-exist.tif"], "does-not-exist"),
        (["map", "missing-model.pt", "x.npy"], "missing-model.pt"),
        (["fit", "{first}", "--alpha", "-1"], "alpha"),
        (["fit", "{first}", "--batch-size", "0"], "batch_size"),
        (["fit", "{first}", "--spatial-bin", "0"], "spatial_bin"),
    ],
)
def test_user_errors_are_one_line_with_nonzero_exit(argv, message, run_files, capsys, tmp_path):
    argv = [a.replace("{first}", run_files[0]) for a in argv]
    assert main(argv + (["--out", str(tmp_path / "m.pt")] if argv[0] == "fit" else [])) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_fit_passes_the_training_options_to_the_estimator(run_files, tmp_path):
    model_path = tmp_path / "model.pt"
    argv = ["fit", *run_files, "--epochs", "1", "--learning-rate", "0.01", "--batch-size", "3",
            "--window", "none", "--out", str(model_path)]
    assert main(argv) == 0
    params = SparseVARAutoencoder.load(model_path).get_params()
    assert (params["learning_rate"], params["batch_size"], params["window"]) == (0.01, 3, None)


def test_fit_passes_spatial_bin_to_the_estimator(run_files, tmp_path):
    model_path = tmp_path / "model.pt"
    argv = ["fit", *run_files, "--epochs", "1", "--spatial-bin", "2", "--out", str(model_path)]
    assert main(argv) == 0
    model = SparseVARAutoencoder.load(model_path)
    assert model.spatial_bin == 2 and model.offset_.shape == (16, 16)


def test_bad_window_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "run.npy", "--window", "long"])
    assert exit_info.value.code == 2
    assert "--window" in capsys.readouterr().err


def test_warnings_are_one_line_each(run_files, tmp_path, capsys):
    model_path = tmp_path / "model.pt"
    assert main(["fit", *run_files, "--epochs", "1", "--out", str(model_path)]) == 0
    capsys.readouterr()
    # One run per group: the test cannot reach p <= 0.05, which it says with a warning.
    assert main(["compare", str(model_path), "--a", run_files[0], "--b", run_files[1],
                 "--permutations", "10"]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert lines and all(line.startswith("skvarae compare: warning: ") for line in lines)
    assert "return " not in err and ".py:" not in err


def test_python_m_skvarae_help():
    completed = subprocess.run(
        [sys.executable, "-m", "skvarae", "--help"], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode == 0
    for command in ("demo", "fit", "map", "compare"):
        assert command in completed.stdout
