"""Command line: ``skvarae demo``, ``skvarae fit``, ``skvarae map``, ``skvarae compare``.

Run ``python -m skvarae --help`` (or ``skvarae --help``) for the commands and their options.
User mistakes (missing files, bad movies or model files, bad options, an unwritable output,
training that diverges, running out of memory) print one line on stderr and exit with status
2; Ctrl-C prints one line and exits with 130; nothing else here is caught. Output paths are
checked before any training starts.
"""

import argparse
import logging
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl-C


def _demo(args):
    from sklearn.metrics import roc_auc_score

    from . import SparseVARAutoencoder, make_calcium_movies
    from .latent_grid import max_latent_side_for_cells
    from .stats import permutation_test_maps

    if not args.no_figures:
        _check_writable_folder(args.out, "--out")
    start = time.perf_counter()
    cell_radius = 3.0
    data = make_calcium_movies(
        n_runs=args.runs,
        n_frames=args.frames,
        frame_shape=(args.size, args.size),
        cell_radius=cell_radius,
        condition_effect=args.condition_effect,
        random_state=args.seed,
    )
    movies, conditions = data.movies, np.asarray(data.conditions)
    print(
        f"Simulated {len(movies)} runs x {movies.shape[1]} frames x {args.size}x{args.size} "
        f"({len(data.drivers)} driver cells, condition_effect={args.condition_effect})."
    )
    model = SparseVARAutoencoder(
        alpha=args.alpha,
        max_latent_side=max_latent_side_for_cells((args.size, args.size), cell_radius),
        max_epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        window=args.window,
        random_state=args.seed,
        verbose=1,
    )
    model.fit(movies)
    group_a, group_b = movies[conditions == 0], movies[conditions == 1]
    result = model.compare_sequences(
        group_a, group_b, n_permutations=args.permutations, random_state=args.seed
    )
    # Per-run driving maps (each run's VAR refitted on its latents): the contribution map, the
    # difference map between the conditions and its family-wise permutation test.
    maps = model.contribution_map(movies, per_run=True)
    map_test = permutation_test_maps(
        maps[conditions == 0], maps[conditions == 1], n_permutations=args.permutations,
        random_state=args.seed,
    )
    truth = _demo_truth(data)
    elapsed = time.perf_counter() - start

    names = data.condition_names
    cells = truth["cells"]
    print(f"Held-out forecast R² (score): {model.score(movies):.3f}")
    print(
        f"VAR sparsity: {np.mean(model.coef_ == 0):.0%} of coefficients are zero "
        f"(alpha={model.alpha}, d={model.coef_.shape[-1]})"
    )
    print(f"{names[0]} vs {names[1]}: {result}")
    omega = maps.mean(axis=0)
    print(
        "Contribution map: ROC AUC of the true driver cells among all cell pixels "
        f"{roc_auc_score(truth['drivers'][cells], omega[cells]):.3f} (0.5: chance)"
    )
    if truth["changed"].any():
        changed_auc = roc_auc_score(truth["changed"][cells], np.abs(map_test.difference)[cells])
        print(
            "Difference map: ROC AUC of the drivers whose couplings changed, among all cell "
            f"pixels {changed_auc:.3f}; {int(map_test.significant().sum())} pixels differ at "
            "family-wise p <= 0.05"
        )
    print(f"Time: {elapsed:.1f} s ({model.n_iter_} epochs on {model.device_})")
    if not args.no_figures:
        written = _demo_figures(model, data, map_test, truth, Path(args.out))
        print(f"Figures written to {args.out}: {', '.join(written)}")
    return 0


def _demo_truth(data):
    """Masks (height, width) of the simulated cells, drivers and drivers whose couplings change."""
    change = np.abs(data.coef[0] - data.coef[1])
    np.fill_diagonal(change, 0.0)
    changed = np.flatnonzero(change.sum(axis=0) > 0)
    masks = data.footprints > 0.5
    return dict(cells=masks.any(axis=0), drivers=masks[data.drivers].any(axis=0),
                changed=masks[changed].any(axis=0))


def _demo_figures(model, data, map_test, truth, out):
    from . import plotting

    out.mkdir(parents=True, exist_ok=True)
    names = data.condition_names
    contribution = plotting.plot_contribution_map_from_estimator(
        model, title="contribution map Ω (driving)"
    )
    axes = contribution.axes[0]
    axes.contour(truth["drivers"].astype(float), levels=[0.5], colors="cyan", linewidths=1.0)
    axes.set_xlabel("cyan: true driver cells")
    difference = plotting.plot_difference_map_test(
        map_test, model.mean_frame_, labels=names, outlines=truth["changed"]
    )
    difference.axes[0].set_xlabel("green: drivers whose couplings change")
    figures = {
        "contribution_map.png": contribution,
        "difference_map.png": difference,
        "coefficients.png": plotting.plot_coef_from_estimator(model),
        "forecast.png": plotting.plot_forecast_from_estimator(model, data.movies[0]),
        "loss.png": plotting.plot_history_from_estimator(model),
    }
    import matplotlib.pyplot as plt  # importable: the plots above needed it

    for name, figure in figures.items():
        figure.savefig(out / name, dpi=120, bbox_inches="tight")
        plt.close(figure)
    return list(figures)


def _check_writable(path, option):
    """OSError naming ``option`` unless a file can be written at ``path`` (nothing is created)."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; give a file name")
    if not folder.is_dir():
        raise FileNotFoundError(f"{option} {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise PermissionError(f"{option} {path} is not writable")


def _check_writable_folder(path, option):
    """OSError naming ``option`` unless ``path`` is, or can be created as, a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{option} {path} cannot be created or written")


def _fit(args):
    from . import SparseVARAutoencoder

    _check_writable(args.out, "--out")
    model = SparseVARAutoencoder(
        alpha=args.alpha,
        lags=args.lags,
        latent_channels=args.latent_channels,
        spatial_bin=args.spatial_bin,
        max_epochs=args.epochs,
        learning_rate=args.learning_rate,
        batch_size=args.batch_size,
        window=args.window,
        device=args.device,
        random_state=args.seed,
        verbose=1,
    )
    model.fit(args.runs)
    model.save(args.out)
    print(
        f"Fitted on {len(model.coef_)} runs in {model.n_iter_} epochs; score "
        f"{model.score(args.runs):.3f}; {np.mean(model.coef_ == 0):.0%} of VAR coefficients zero. "
        f"Saved to {args.out}"
    )
    return 0


def _load(path):
    from . import SparseVARAutoencoder

    if Path(path).is_dir():
        raise ValueError(
            f"model file {path} is a folder, not a model file: the first argument is the "
            "model written by 'skvarae fit' (e.g. model.pt), then the runs"
        )
    if not Path(path).is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return SparseVARAutoencoder.load(path)


def _map(args):
    from . import plotting

    _check_writable(args.out, "--out")
    if args.npy:
        _check_writable(args.npy, "--npy")
    model = _load(args.model)
    contribution = model.contribution_map(args.runs)
    figure = plotting.plot_contribution_map(contribution, model.mean_frame_)
    figure.savefig(args.out, dpi=120, bbox_inches="tight")
    if args.npy:
        np.save(args.npy, contribution)
    print(f"Contribution map of {len(args.runs)} run(s) written to {args.out}")
    return 0


def _compare(args):
    model = _load(args.model)
    result = model.compare_sequences(
        args.a, args.b, n_permutations=args.permutations, random_state=args.seed, n_jobs=args.jobs
    )
    print(result)
    return 0


def _window(text):
    """``--window`` values: a positive number of frames, or 'none' for whole runs."""
    if text.lower() == "none":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of frames or 'none', got {text!r}")


def build_parser():
    """The argument parser of the ``skvarae`` command."""
    parser = argparse.ArgumentParser(
        prog="skvarae",
        description="Sparse VAR autoencoder for calcium-imaging movies: find which regions "
        "drive the dynamics, and test whether two sets of runs differ.",
    )
    parser.add_argument("--log-level", default="WARNING", help="logging level (e.g. INFO)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="fit on simulated data, print a summary and write figures",
        description="Simulate two conditions of calcium-imaging runs with known driver cells, "
        "fit the model, test the conditions against each other and write figures.",
    )
    demo.add_argument("--out", default="skvarae-demo", help="folder for the PNG figures")
    demo.add_argument("--runs", type=int, default=8, help="simulated runs (two conditions)")
    demo.add_argument("--frames", type=int, default=200, help="frames per run")
    demo.add_argument("--size", type=int, default=32, help="frame side in pixels")
    demo.add_argument("--condition-effect", type=float, default=0.8,
                      help="how much the couplings differ between conditions (0 to 1)")
    demo.add_argument("--alpha", type=float, default=0.01, help="ℓ1 penalty")
    demo.add_argument("--epochs", type=int, default=40, help="maximum training epochs")
    demo.add_argument("--learning-rate", type=float, default=5e-3, help="Adam learning rate")
    demo.add_argument("--batch-size", type=int, default=2,
                      help="windows per optimisation step (few runs: small batches)")
    demo.add_argument("--window", type=_window, default=100,
                      help="frames per training window ('none': whole runs)")
    demo.add_argument("--permutations", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-figures", action="store_true", help="skip the figures")
    demo.set_defaults(handler=_demo)

    fit = commands.add_parser(
        "fit", help="fit a model on movie files and save it",
        description="Fit on runs given as TIFF, .npy, HDF5 or NWB files, suite2p plane "
        "folders, folders of TIFF frames or glob patterns (one run per file), and save the "
        "model.",
    )
    fit.add_argument("runs", nargs="+", metavar="RUN", help="movie files, folders or patterns")
    fit.add_argument("--out", default="model.pt", help="model file to write (default model.pt)")
    fit.add_argument("--alpha", type=float, default=0.01, help="ℓ1 penalty (default 0.01)")
    fit.add_argument("--lags", type=int, default=1, help="VAR order (default 1)")
    fit.add_argument("--latent-channels", type=int, default=2)
    fit.add_argument("--spatial-bin", type=int, default=1, metavar="N",
                     help="average frames over N x N pixel blocks first (default 1: no "
                     "binning; about cell diameter / 4)")
    fit.add_argument("--epochs", type=int, default=100, help="maximum epochs (default 100)")
    fit.add_argument("--learning-rate", type=float, default=1e-3,
                     help="Adam learning rate (default 1e-3)")
    fit.add_argument("--batch-size", type=int, default=8,
                     help="windows per optimisation step (default 8; fewer for few runs)")
    fit.add_argument("--window", type=_window, default=128,
                     help="frames per training window (default 128; 'none': whole runs)")
    fit.add_argument("--device", default="auto", help="torch device (default: CUDA if present)")
    fit.add_argument("--seed", type=int, default=0)
    fit.set_defaults(handler=_fit)

    map_ = commands.add_parser(
        "map", help="contribution map of runs under a saved model",
        description="Compute the contribution map (which pixels drive the learned dynamics).",
    )
    map_.add_argument("model", help="model file written by 'skvarae fit'")
    map_.add_argument("runs", nargs="+", metavar="RUN")
    map_.add_argument("--out", default="map.png", help="PNG to write (default map.png)")
    map_.add_argument("--npy", default=None, help="also save the map as a .npy array")
    map_.set_defaults(handler=_map)

    compare = commands.add_parser(
        "compare", help="permutation test: do two sets of runs differ in their dynamics?",
    )
    compare.add_argument("model", help="model file written by 'skvarae fit'")
    compare.add_argument("--a", nargs="+", required=True, metavar="RUN", help="first group")
    compare.add_argument("--b", nargs="+", required=True, metavar="RUN", help="second group")
    compare.add_argument("--permutations", type=int, default=1000)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--jobs", type=int, default=None, help="parallel jobs (joblib)")
    compare.set_defaults(handler=_compare)
    return parser


_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def main(argv=None):
    """Entry point of ``skvarae`` and ``python -m skvarae``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = args.log_level.upper()
    if level not in _LOG_LEVELS:
        print(
            f"skvarae {args.command}: error: --log-level must be one of {', '.join(_LOG_LEVELS)}, "
            f"got {args.log_level!r}",
            file=sys.stderr,
        )
        return EXIT_USER_ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")

    def show_warning(message, category, filename, lineno, file=None, line=None):
        # One line per warning, like the errors, rather than Python's file:line and source.
        print(f"skvarae {args.command}: warning: {message}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show_warning
        try:
            return args.handler(args)
        except (ValueError, TypeError, OSError, ImportError, FloatingPointError) as error:
            message = " ".join(str(error).split()) or type(error).__name__
            print(f"skvarae {args.command}: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR
        except MemoryError as error:
            print(f"skvarae {args.command}: error: out of memory {error}".rstrip(),
                  file=sys.stderr)
            return EXIT_USER_ERROR
        except KeyboardInterrupt:
            print(f"skvarae {args.command}: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
