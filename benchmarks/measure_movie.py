"""Summary statistics of a calcium-imaging movie, to compare the simulator with real data.

Prints, for a TIFF movie (one run, (n_frames, height, width)) or for a simulated movie: the
median over pixels of the lag-1 autocorrelation at full resolution and after 2x2 / 4x4 binning,
the white-noise fraction of each pixel's standard deviation, the shot-noise relation (noise
variance against mean, in counts per photon), bleaching / drift of the frame mean, rigid motion
of 50-frame averages, and the sizes of the bright blobs of the high-passed mean image (somata).
Only summary statistics are printed, never frames (the real sample movie is GPL-3.0: never
commit it or anything derived from it frame by frame).

Usage::

    python benchmarks/measure_movie.py /work/cache/sample_mouse2p_image.tiff
    python benchmarks/measure_movie.py --simulate   # preset "two_photon", 64x64, 10 cells
"""

import argparse

import numpy as np
from scipy import ndimage

from skvarae.datasets import make_calcium_movies, movie_statistics


def rigid_shift(image, reference):
    """Integer shift of ``image`` against ``reference`` by phase correlation."""
    spectrum = np.fft.fft2(image - image.mean())
    spectrum *= np.conj(np.fft.fft2(reference - reference.mean()))
    correlation = np.fft.ifft2(spectrum / (np.abs(spectrum) + 1e-9)).real
    peak = np.unravel_index(np.argmax(correlation), correlation.shape)
    return tuple(int(v if v < s // 2 else v - s) for v, s in zip(peak, correlation.shape))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", help="TIFF movie (n_frames, height, width)")
    parser.add_argument("--simulate", action="store_true", help="measure the preset instead")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.simulate:
        movie = make_calcium_movies(
            n_runs=1, n_frames=1000, frame_shape=(64, 64), n_cells=10, cell_radius=3.5,
            preset="two_photon", random_state=args.seed,
        ).movies[0].astype(np.float64)
    else:
        import tifffile

        movie = tifffile.imread(args.path).astype(np.float64)
    n_frames = len(movie)
    print(f"movie: {movie.shape}, mean {movie.mean():.4g}")
    stats = movie_statistics(movie)
    for k in (1, 2, 4):
        print(f"binning {k}x{k}: median lag-1 autocorrelation {stats['lag1_median'][k]:.3f}, "
              f"noise fraction of the s.d. {stats['noise_fraction_median'][k]:.3f}, "
              f"signal / noise s.d. {stats['signal_to_noise_median'][k]:.3f}")
    mean = movie.mean(axis=0)
    noise_var = np.diff(movie, axis=0).var(axis=0) / 2
    design = np.vstack([mean.ravel(), np.ones(mean.size)]).T
    gain, floor = np.linalg.lstsq(design, noise_var.ravel(), rcond=None)[0]
    photons = np.median(mean) / gain
    floor_share = floor / np.median(noise_var)
    print(f"noise variance = {gain:.4g} x mean + {floor:.4g} (shot noise: {photons:.3g} photons "
          f"per pixel and frame at the median pixel; floor {floor_share:.0%} of the median noise "
          "variance)")
    frame_mean = movie.mean(axis=(1, 2))
    trend = np.polyfit(np.arange(n_frames), np.log(frame_mean), 1)[0]
    print(f"frame mean: change {stats['drift']:+.2%} (last vs first tenth), log-linear trend "
          f"{trend:+.2g} per frame, s.d. {frame_mean.std() / frame_mean.mean():.1%} of the mean")
    shifts = np.array([rigid_shift(movie[i:i + 50].mean(0), mean) for i in range(0, n_frames, 50)])
    print(f"rigid shift of 50-frame averages: max |shift| {np.abs(shifts).max()} px, "
          f"{np.mean(np.any(shifts != 0, axis=1)):.0%} of the blocks shifted")
    highpass = mean - ndimage.gaussian_filter(mean, 8)
    labels, n = ndimage.label(highpass > np.quantile(highpass, 0.9))
    areas = np.asarray(ndimage.sum(np.ones_like(mean), labels, range(1, n + 1)))
    areas = np.sort(areas[areas >= 10])[::-1]
    if len(areas):
        print(f"blobs of the high-passed mean image (>= 10 px): {len(areas)}, median area "
              f"{np.median(areas):.0f} px (radius {np.sqrt(np.median(areas) / np.pi):.1f})")


if __name__ == "__main__":
    main()
