"""`SparseVARAutoencoder`: the scikit-learn estimator. Validation, data contract, orchestration.

The maths lives elsewhere: the network in :mod:`skvarae.network`, the sparse VAR in
:mod:`skvarae.var` (on :mod:`skvarae.lars`), the optimisation loop in :mod:`skvarae.training`.
"""

import copy
import numbers
import platform
import warnings

import numpy as np
import sklearn
import torch
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from .contribution import contribution_map as _contribution_map
from .contribution import contribution_maps
from .io import check_runs, iter_frame_batches
from .network import ConvDecoder, ConvEncoder
from .stats import compare_sequences as _compare_sequences
from .training import Windows, train
from .var import fit_var, forecast_var

__all__ = ["SparseVARAutoencoder"]

#: Pixels (frames x height x width) per chunk when streaming frames without gradients (mean
#: frame, encoding, decoding): 16 MiB of float32 input, whatever the frame size.
_CHUNK_PIXELS = 2**22
_SAVE_FORMAT = 1


def _frames_per_chunk(frame_shape):
    """Frames per chunk of streamed inference, about ``_CHUNK_PIXELS`` pixels (at least 1)."""
    return max(1, _CHUNK_PIXELS // int(np.prod(frame_shape)))


def _resolve_device(device):
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    resolved = torch.device(device)
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available.")
    return resolved


def _same_shape_or_list(arrays):
    """Stack arrays of one shape into one array, else return the list."""
    if len({a.shape for a in arrays}) == 1:
        return np.stack(arrays)
    return arrays


class SparseVARAutoencoder(TransformerMixin, BaseEstimator):
    """Convolutional autoencoder with a sparse VAR fitted by LARS-lasso in every forward pass.

    Frames x_t of each run are modelled as ``mean_frame_ + scale_ * f_dec(ẑ_t)``, where
    ``z_t = f_enc((x_t - mean_frame_) / scale_)`` is a small latent (the flattened latent map of
    shape ``latent_shape_``) and ``ẑ_t = c + A_1 z_{t-1} + ... + A_p z_{t-p}`` is its one-step
    forecast by a sparse VAR(p). The VAR is fitted from scratch per sequence by LARS-lasso on
    latents centred and divided by one RMS scalar (so ``alpha`` does not depend on their scale),
    and end-to-end training backpropagates through that fit.

    Parameters
    ----------
    alpha : float, default=0.01
        ℓ1 penalty of the VAR fit (scikit-learn's ``LassoLars`` objective on standardised
        latents). Larger values give sparser ``coef_``.
    lags : int, default=1
        VAR order p.
    latent_channels : int, default=2
        Channels of the latent map; the latent dimension is
        ``d = latent_channels * h * w``.
    max_latent_side : int, default=4
        The encoder downsamples by 2 until both sides of the latent map are at most this.
    base_channels : int, default=8
        Channels of the first convolution (doubling per layer, at most 64).
    training : {"end_to_end", "two_stage"}, default="end_to_end"
        ``"end_to_end"``: the loss includes the forecast through the per-sequence VAR fit and
        gradients flow through LARS. ``"two_stage"``: train a plain autoencoder, then fit the VAR.
    skip_connection : bool, default=True
        Subtract the mean frame before encoding and add it back after decoding. With ``False``
        the network sees the raw frame (minus its global scalar mean) and must reproduce it.
    forecast_weight, reconstruction_weight : float, default=1.0
        Weights of the forecast and reconstruction mean squared errors in the loss
        (see :mod:`skvarae.training`).
    max_epochs : int, default=100
        Maximum number of passes over the training sequences.
    learning_rate : float, default=1e-3
        Adam learning rate.
    batch_size : int, default=8
        Sequences (runs, or windows of runs) per optimisation step. Memory per step grows with
        ``batch_size x window x`` frame size: about 0.5 KiB per pixel of every frame in the step
        with the default network. With few runs, smaller batches give more steps per epoch.
    window : int or None, default=128
        Runs longer than this are cut into windows of this many frames (tiling the run, the last
        window aligned to its end); each window gets its own VAR fit during training. ``None``
        trains on whole runs.
    tol : float, default=1e-4
        Minimum decrease of the epoch loss that counts as an improvement.
    n_iter_no_change : int, default=10
        Stop after this many epochs without improvement; the best weights are restored.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA when available, else the CPU (resolved in ``fit``).
    n_jobs : int or None, default=None
        Threads (joblib) for the per-run work after training: encoding, per-run VAR refits,
        forecasts and scores of many runs (``transform``, ``predict``, ``score``, ``encode``).
        ``None`` runs them one after the other; ``-1`` uses all cores. Training itself is not
        parallelised by this; run ``GridSearchCV(n_jobs=...)`` for parallel fits.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialisation and batch shuffling (local generators only). With a
        fixed seed, results on the CPU are identical from run to run.
    verbose : int, default=0
        Show a progress bar with the loss during training.

    Attributes
    ----------
    coef_ : ndarray of shape (n_runs, lags, d, d)
        VAR matrices per training run: ``coef_[r, k - 1][i, j]`` is the effect of latent ``j`` at
        lag ``k`` on latent ``i`` in run ``r`` (statsmodels' order).
    intercept_ : ndarray of shape (n_runs, d)
        VAR constants per training run.
    contribution_maps_ : ndarray of shape (n_runs, height, width)
        Contribution map of each training run (weighted by ``coef_[r]``), computed at the end of
        ``fit``; see :meth:`contribution_map`.
    latent_shape_ : tuple of int
        ``(channels, h, w)`` of the latent map.
    mean_frame_ : ndarray of shape (height, width)
        Mean over all frames of all training runs (the static structure).
    scale_ : float
        Standard deviation of the dynamic part ``x_t - mean_frame_`` (of ``x_t`` minus its global
        mean when ``skip_connection=False``).
    history_ : list of dict
        Per-epoch losses (``loss``, ``reconstruction``, ``forecast``) and durations.
    n_iter_ : int
        Number of epochs run.
    device_ : str
        The device the network lives on.
    frame_shape_ : tuple of int
        ``(height, width)`` of the training frames.
    n_features_in_ : int
        Pixels per frame.
    encoder_, decoder_ : torch.nn.Module
        The trained networks.

    See Also
    --------
    skvarae.fit_var : The sparse VAR fit used inside the model.
    skvarae.lasso_lars : The differentiable LARS-lasso solver.

    Notes
    -----
    Input ``X`` is a sequence of runs: a 4-D array (n_runs, n_frames, height, width), a list of
    3-D arrays (lengths may differ), paths to TIFF / ``.npy`` files, or a 2-D array
    (n_runs, n_frames) of single-pixel runs. One sample is one run, so cross-validation splits
    by run. Outputs are always numpy arrays.

    Examples
    --------
    >>> import numpy as np
    >>> from skvarae import SparseVARAutoencoder
    >>> movies = np.random.default_rng(0).random((2, 20, 8, 8), dtype=np.float32)
    >>> model = SparseVARAutoencoder(max_epochs=2, random_state=0).fit(movies)
    >>> model.coef_.shape
    (2, 1, 32, 32)
    """

    _parameter_constraints = {
        "alpha": [Interval(numbers.Real, 0, None, closed="left")],
        "lags": [Interval(numbers.Integral, 1, None, closed="left")],
        "latent_channels": [Interval(numbers.Integral, 1, None, closed="left")],
        "max_latent_side": [Interval(numbers.Integral, 1, None, closed="left")],
        "base_channels": [Interval(numbers.Integral, 1, None, closed="left")],
        "training": [StrOptions({"end_to_end", "two_stage"})],
        "skip_connection": ["boolean"],
        "forecast_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "reconstruction_weight": [Interval(numbers.Real, 0, None, closed="left")],
        "max_epochs": [Interval(numbers.Integral, 1, None, closed="left")],
        "learning_rate": [Interval(numbers.Real, 0, None, closed="neither")],
        "batch_size": [Interval(numbers.Integral, 1, None, closed="left")],
        "window": [Interval(numbers.Integral, 3, None, closed="left"), None],
        "tol": [Interval(numbers.Real, 0, None, closed="left")],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "n_jobs": [numbers.Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        alpha=0.01,
        lags=1,
        latent_channels=2,
        max_latent_side=4,
        base_channels=8,
        training="end_to_end",
        skip_connection=True,
        forecast_weight=1.0,
        reconstruction_weight=1.0,
        max_epochs=100,
        learning_rate=1e-3,
        batch_size=8,
        window=128,
        tol=1e-4,
        n_iter_no_change=10,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.alpha = alpha
        self.lags = lags
        self.latent_channels = latent_channels
        self.max_latent_side = max_latent_side
        self.base_channels = base_channels
        self.training = training
        self.skip_connection = skip_connection
        self.forecast_weight = forecast_weight
        self.reconstruction_weight = reconstruction_weight
        self.max_epochs = max_epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.window = window
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the autoencoder and fit one sparse VAR per training run.

        Parameters
        ----------
        X : array-like of shape (n_runs, n_frames, height, width), list of runs, or paths
            Training runs (see the class Notes for every accepted form).
        y : None
            Ignored; present so the estimator can sit in a supervised Pipeline.

        Returns
        -------
        self : SparseVARAutoencoder
            The fitted estimator.
        """
        if self.window is not None and self.window < self.lags + 2:
            raise ValueError(f"window={self.window} must be at least lags + 2 = {self.lags + 2}.")
        runs = check_runs(X, min_frames=self.lags + 2)
        device = _resolve_device(self.device)
        rng = check_random_state(self.random_state)
        frame_shape = runs[0].shape[1:]

        mean_frame, scale = self._frame_statistics(runs)
        offset = mean_frame if self.skip_connection else np.full_like(mean_frame, mean_frame.mean())
        sequences = Windows(runs, self.window, offset, scale)

        seed = int(rng.randint(np.iinfo(np.int32).max))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder, decoder = self._build_network(frame_shape)
        encoder.to(device)
        decoder.to(device)
        history, best_epoch = train(
            encoder,
            decoder,
            sequences,
            loss_params=dict(
                alpha=self.alpha,
                lags=self.lags,
                training=self.training,
                forecast_weight=self.forecast_weight,
                reconstruction_weight=self.reconstruction_weight,
            ),
            max_epochs=self.max_epochs,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            rng=rng,
            device=device,
            verbose=self.verbose,
        )

        # Everything above succeeded: only now does the estimator change state.
        self.encoder_, self.decoder_ = encoder, decoder
        self.device_ = str(device)
        self.frame_shape_ = tuple(int(s) for s in frame_shape)
        self.n_features_in_ = int(np.prod(frame_shape))
        self.mean_frame_ = mean_frame
        self.scale_ = scale
        self.latent_shape_ = tuple(encoder.latent_shape)
        self.history_ = history
        self.n_iter_ = len(history)
        self.best_epoch_ = best_epoch
        coefs, intercepts = zip(*self._per_run(self._fit_run_var, runs))
        self.coef_ = np.stack(coefs)
        self.intercept_ = np.stack(intercepts)
        self.contribution_maps_ = contribution_maps(
            encoder, runs, self.coef_, offset=offset, scale=scale, baseline=mean_frame
        )
        return self

    def _frame_statistics(self, runs):
        """Mean frame over all frames of all runs, and the scale of what the network models."""
        total, n_frames = 0.0, 0
        chunk = _frames_per_chunk(runs[0].shape[1:])
        for run in runs:
            for batch in iter_frame_batches(run, chunk):
                total = total + batch.sum(axis=0, dtype=np.float64)
                n_frames += len(batch)
        mean_frame = total / n_frames
        offset = mean_frame if self.skip_connection else mean_frame.mean()
        squares = 0.0
        for run in runs:
            for batch in iter_frame_batches(run, chunk):
                squares += float(np.sum((batch - offset) ** 2, dtype=np.float64))
        scale = float(np.sqrt(squares / (n_frames * mean_frame.size)))
        if not scale > 0:
            warnings.warn(
                "The training movie does not change over time (its dynamic part is zero); "
                "scale_ is set to 1.",
                UserWarning,
                stacklevel=3,
            )
            scale = 1.0
        return mean_frame.astype(np.float32), scale

    def _build_network(self, frame_shape):
        kwargs = dict(
            latent_channels=self.latent_channels,
            max_latent_side=self.max_latent_side,
            base_channels=self.base_channels,
        )
        return ConvEncoder(frame_shape, **kwargs), ConvDecoder(frame_shape, **kwargs)

    def _offset(self):
        if self.skip_connection:
            return self.mean_frame_
        return np.full_like(self.mean_frame_, self.mean_frame_.mean())

    # --------------------------------------------------------------- inference
    def _validated_runs(self, X):
        check_is_fitted(self)
        runs = check_runs(X, min_frames=self.lags + 2)
        if runs[0].shape[1:] != self.frame_shape_:
            raise ValueError(
                f"X has frames of shape {runs[0].shape[1:]}, but the model was fitted on frames "
                f"of shape {self.frame_shape_}."
            )
        return runs

    def _per_run(self, function, runs):
        """``[function(run) for run in runs]``, in ``n_jobs`` joblib threads when set."""
        if self.n_jobs is None or len(runs) < 2:
            return [function(run) for run in runs]
        return Parallel(n_jobs=self.n_jobs, prefer="threads")(
            delayed(function)(run) for run in runs
        )

    @torch.no_grad()
    def _encode_run(self, run):
        """Latents of one run as a float64 CPU tensor of shape (n_frames, d)."""
        offset, device = self._offset(), torch.device(self.device_)
        latents = [
            self.encoder_(torch.from_numpy((batch - offset) / self.scale_).float().to(device))
            for batch in iter_frame_batches(run, _frames_per_chunk(self.frame_shape_))
        ]
        return torch.cat(latents).double().cpu()

    @torch.no_grad()
    def _decode(self, latents):
        """Frames in pixel units, (n, H, W) numpy float32, from latents (n, d)."""
        device = torch.device(self.device_)
        frames = [
            self.decoder_(chunk.float().to(device)).cpu().numpy()
            for chunk in torch.split(latents, _frames_per_chunk(self.frame_shape_))
        ]
        return np.concatenate(frames) * self.scale_ + self._offset()

    def _fit_run_var(self, run):
        """Sparse VAR of one run's latents: coef (lags, d, d) and intercept (d,), numpy."""
        coef, intercept = fit_var(self._encode_run(run), self.alpha, self.lags)
        return coef.numpy(), intercept.numpy()

    def encode(self, X):
        """Latents of every frame.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_``.

        Returns
        -------
        latents : ndarray of shape (n_runs, n_frames, d), or list of (n_frames_r, d) arrays
            A list when run lengths differ.
        """
        runs = self._validated_runs(X)
        latents = self._per_run(self._encode_run, runs)
        return _same_shape_or_list([z.float().numpy() for z in latents])

    def transform(self, X):
        """Refit the sparse VAR on each run's latents and return its coefficients.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_``.

        Returns
        -------
        features : ndarray of shape (n_runs, lags * d * d)
            Each run's VAR matrices flattened in ``coef_`` order: sparse, interpretable features
            for a downstream estimator.
        """
        runs = self._validated_runs(X)
        return np.stack([coef.ravel() for coef, _ in self._per_run(self._fit_run_var, runs)])

    def predict(self, X):
        """One-step-ahead forecast frames, with the VAR refitted on each run.

        Parameters
        ----------
        X : runs
            See the class Notes; frames of shape ``frame_shape_``.

        Returns
        -------
        frames : ndarray of shape (n_runs, n_frames - lags, height, width), or list
            ``frames[r, t]`` forecasts frame ``t + lags`` of run ``r`` from the frames before it.
            A list when run lengths differ.
        """
        runs = self._validated_runs(X)
        return _same_shape_or_list(self._per_run(self._forecast_run, runs))

    def _forecast_run(self, run):
        latents = self._encode_run(run)
        coef, intercept = fit_var(latents, self.alpha, self.lags)
        return self._decode(forecast_var(latents, coef, intercept))

    def score(self, X, y=None):
        """Held-out one-step forecast R² of the dynamic part, averaged over runs.

        For each run, the VAR is fitted on the latents of the first three quarters of its frames
        only; the frames of the last quarter are then forecast one step ahead (from the observed
        frames before them) and compared with the truth. R² is computed on the dynamic part
        ``x_t - mean_frame_``, pooled over pixels (``r2_score(..., "variance_weighted")``).

        Parameters
        ----------
        X : runs
            See the class Notes; every run needs at least ``lags + 4`` frames.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean R² over runs (1 is perfect; higher is better).
        """
        runs = self._validated_runs(X)
        for index, run in enumerate(runs):
            if len(run) - max(2, len(run) // 4) < self.lags + 2:
                raise ValueError(
                    f"Run {index} has {len(run)} frames: too few to hold out its last quarter "
                    f"(at least 2 frames) and fit a VAR({self.lags}) on the rest "
                    f"(need at least {self.lags + 4} frames)."
                )
        return float(np.mean(self._per_run(self._score_run, runs)))

    def _score_run(self, run):
        """Held-out R² of one run (see :meth:`score`)."""
        n_test = max(2, len(run) // 4)
        n_fit = len(run) - n_test
        latents = self._encode_run(run)
        coef, intercept = fit_var(latents[:n_fit], self.alpha, self.lags)
        forecast = forecast_var(latents[n_fit - self.lags :], coef, intercept)
        predicted = (self._decode(forecast) - self.mean_frame_).reshape(n_test, -1)
        observed = np.asarray(run[n_fit:], dtype=np.float64) - self.mean_frame_
        observed = observed.reshape(n_test, -1)
        # Variance-weighted R² over pixels (as r2_score(..., "variance_weighted")).
        residual = np.sum((observed - predicted) ** 2)
        total = np.sum((observed - observed.mean(axis=0)) ** 2)
        return 1.0 - residual / total if total > 0 else float(residual == 0)

    def contribution_map(self, X=None, *, per_run=False, kind="driving"):
        """How much each pixel drives the learned dynamics: the contribution map Ω.

        For each run r (T_r frames), with the encoder's Jacobian J_t = ∂z/∂x̃ at the
        standardised frame x̃_t and the deviation ``δ_t = (x_t - mean_frame_) / scale_``, the
        reading map of latent j is ``G_j[p] = (1 / T_r) Σ_t |J_t[j, p] · δ_t[p]|``; with
        ``out_j = Σ_k Σ_{i≠j} |A_k[i, j]|`` and ``in_j = Σ_k Σ_{i≠j} |A_k[j, i]|``
        (``kind="driving"``)::

            w_j = max(out_j - in_j, 0),   Ω_r[p] = Σ_j w_j G_j[p],   Ω = mean_r Ω_r.

        Activity at a pixel counts by how much it feeds latents that predict the future of the
        other latents more than they predict it (a latent's own persistence, or the mutual
        prediction of two latents sharing a cell, is not driving). The
        reasons and the other kinds are in :mod:`skvarae.contribution`; the difference between
        two conditions, with family-wise corrected p-values, is
        :func:`skvarae.contribution.difference_map_test`.

        Parameters
        ----------
        X : runs, optional
            See the class Notes; frames of shape ``frame_shape_``. Each run's VAR is refitted on
            its latents (as in :meth:`transform`) to give its weights. ``None`` returns the maps
            of the training runs (``contribution_maps_``, weighted by ``coef_``).
        per_run : bool, default=False
            Return one map per run instead of their mean.
        kind : {"driving", "cross", "coefficient"}, default="driving"
            ``"cross"`` leaves out only the self-terms; ``"coefficient"`` is all outgoing mass,
            self-terms included (skvarae <= 0.1). Kinds other than the default need ``X``.

        Returns
        -------
        omega : ndarray of shape (height, width), or (n_runs, height, width)
            Non-negative float64 map(s), in the units of the latents; (n_runs, height, width)
            with ``per_run=True``.
        """
        return _contribution_map(self, X, per_run=per_run, kind=kind)

    def compare_sequences(
        self, X_a, X_b, *, n_permutations=1000, random_state=None, n_jobs=None, **kwargs
    ):
        """Permutation test of whether two sets of runs share the same dynamics.

        Shortcut for :func:`skvarae.stats.compare_sequences` ``(self, X_a, X_b, ...)``: runs
        are encoded by this model, one sparse VAR is fitted per run (or block of a run), and the
        condition labels are permuted across them.

        Parameters
        ----------
        X_a, X_b : runs
            Runs of the two conditions; frames of shape ``frame_shape_``.
        n_permutations : int, default=1000
            Exact enumeration when all relabellings fit, else the number of random permutations.
        random_state : int, RandomState instance or None, default=None
            Source of the random permutations.
        n_jobs : int or None, default=None
            Number of joblib jobs for the permutations.
        **kwargs
            Further options of :func:`skvarae.stats.compare_sequences`.

        Returns
        -------
        result : PermutationTestResult
            Statistic, p-value, null distribution and how the test was run.
        """
        return _compare_sequences(
            self,
            X_a,
            X_b,
            n_permutations=n_permutations,
            random_state=random_state,
            n_jobs=n_jobs,
            **kwargs,
        )

    # ---------------------------------------------------------- persistence
    def __getstate__(self):
        state = self.__dict__.copy()
        for name in ("encoder_", "decoder_"):
            if name in state:
                state[name] = copy.deepcopy(state[name]).cpu()
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "device_" in state:
            self.device_ = self._loadable_device(state["device_"])
            for name in ("encoder_", "decoder_"):
                getattr(self, name).to(self.device_)

    @staticmethod
    def _loadable_device(device):
        if torch.device(device).type == "cuda" and not torch.cuda.is_available():
            warnings.warn(
                f"This model was fitted on {device!r}, but CUDA is not available here; "
                "it is loaded on the CPU.",
                UserWarning,
                stacklevel=3,
            )
            return "cpu"
        return device

    def save(self, path):
        """Save parameters, fitted state and library versions to ``path`` (a torch file).

        Parameters
        ----------
        path : str or path-like
            Destination file, conventionally ``*.pt``.

        See Also
        --------
        load : Read the file back (with ``torch.load(weights_only=True)``).
        """
        check_is_fitted(self)
        params = self.get_params()
        if not (params["random_state"] is None or isinstance(params["random_state"], int)):
            warnings.warn(
                "random_state is not an int or None and is saved as None.",
                UserWarning,
                stacklevel=2,
            )
            params["random_state"] = None
        params["device"] = str(params["device"])
        payload = {
            "format": _SAVE_FORMAT,
            "params": params,
            "versions": {
                "skvarae": _version(),
                "torch": str(torch.__version__),
                "scikit-learn": str(sklearn.__version__),
                "numpy": str(np.__version__),
                "python": platform.python_version(),
            },
            "fitted": {
                "coef_": torch.from_numpy(self.coef_),
                "intercept_": torch.from_numpy(self.intercept_),
                "contribution_maps_": torch.from_numpy(self.contribution_maps_),
                "mean_frame_": torch.from_numpy(self.mean_frame_),
                "scale_": self.scale_,
                "latent_shape_": list(self.latent_shape_),
                "frame_shape_": list(self.frame_shape_),
                "history_": self.history_,
                "n_iter_": self.n_iter_,
                "best_epoch_": self.best_epoch_,
                "device_": self.device_,
            },
            "encoder": {k: v.cpu() for k, v in self.encoder_.state_dict().items()},
            "decoder": {k: v.cpu() for k, v in self.decoder_.state_dict().items()},
        }
        torch.save(payload, path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save`.

        Parameters
        ----------
        path : str or path-like
            File written by :meth:`save`.

        Returns
        -------
        model : SparseVARAutoencoder
            The fitted estimator, on its original device when available, else on the CPU.
        """
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _SAVE_FORMAT:
            raise ValueError(f"{path!s} is not a model file written by SparseVARAutoencoder.save.")
        model = cls(**payload["params"])
        fitted = payload["fitted"]
        model.coef_ = fitted["coef_"].numpy()
        model.intercept_ = fitted["intercept_"].numpy()
        model.contribution_maps_ = fitted["contribution_maps_"].numpy()
        model.mean_frame_ = fitted["mean_frame_"].numpy()
        model.scale_ = fitted["scale_"]
        model.latent_shape_ = tuple(fitted["latent_shape_"])
        model.frame_shape_ = tuple(fitted["frame_shape_"])
        model.n_features_in_ = int(np.prod(model.frame_shape_))
        model.history_ = fitted["history_"]
        model.n_iter_ = fitted["n_iter_"]
        model.best_epoch_ = fitted["best_epoch_"]
        model.device_ = cls._loadable_device(fitted["device_"])
        model.encoder_, model.decoder_ = model._build_network(model.frame_shape_)
        model.encoder_.load_state_dict(payload["encoder"])
        model.decoder_.load_state_dict(payload["decoder"])
        for module in (model.encoder_, model.decoder_):
            module.to(model.device_).eval()
        return model

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.two_d_array = True
        return tags


def _version():
    from . import __version__

    return __version__
