"""The optimisation loop of :class:`skvarae.SparseVARAutoencoder`.

Read top to bottom: :func:`end_to_end_loss` and :func:`two_stage_loss` are the model's two
losses on a batch of sequences (:func:`sequence_loss` picks one by name),
:func:`activation_bytes` and :func:`plan_frames_per_chunk` size the chunks that keep a step
within a memory budget, :func:`make_batches` draws one epoch's batches, and :func:`train` runs
Adam with early stopping on a given loss and returns the best weights it saw.

Loss (per batch of sequences x̃ of shape (B, T, H, W), in standardised units)::

    z       = encoder(x̃_t)                       latents, (B, T, d)
    A, c    = fit_var(z, alpha, lags)            sparse VAR per sequence, from scratch
    ẑ_t     = c + Σ_k A_k z_{t-k}                one-step forecast, t >= lags
    loss    = forecast_weight · mean (decoder(ẑ_t) − x̃_t)²
            + reconstruction_weight · mean (decoder(z_t) − x̃_t)²

With ``reconstruction_subsample`` below 1, the second mean runs over a random subset of each
sequence's frames (:func:`subsample_frames`): an unbiased estimate of it, for fewer decoder
passes.

``training="end_to_end"`` (:func:`end_to_end_loss`) minimises both terms, so gradients flow
through the LARS fit into the encoder; ``training="two_stage"`` (:func:`two_stage_loss`)
minimises the reconstruction term alone (a plain autoencoder; the VAR is fitted once, after
training). :func:`train` takes either as ``loss``, or any function with the same signature.
"""

import collections
import copy
import functools
import logging
import math
import time

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint
from tqdm.auto import tqdm

from .var import fit_var, forecast_var

__all__ = [
    "Windows",
    "HeldOutTails",
    "end_to_end_loss",
    "two_stage_loss",
    "subsample_frames",
    "sequence_loss",
    "make_batches",
    "train",
]

logger = logging.getLogger(__name__)


def _run_chunk(function, *args):
    """``function(*args)``, keeping only its inputs for the backward pass when gradients are on.

    Activation checkpointing (non-reentrant): the activations inside ``function`` are freed
    after the forward pass and recomputed in the backward pass. The networks draw no random
    numbers, so the RNG state need not be preserved.
    """
    if not torch.is_grad_enabled():
        return function(*args)
    return checkpoint(function, *args, use_reentrant=False, preserve_rng_state=False)


def encode_frames(encoder, frames, frames_per_chunk=None):
    """Encode sequences of frames: (B, T, H, W) -> (B, T, d).

    With ``frames_per_chunk``, the B * T frames go through the encoder that many at a time and,
    when gradients are on, each chunk's activations are recomputed in the backward pass instead
    of kept (see :func:`plan_frames_per_chunk`). The result is the same.
    """
    batch, n_frames = frames.shape[:2]
    flat = frames.flatten(0, 1)
    if frames_per_chunk is None or len(flat) <= frames_per_chunk:
        latents = encoder(flat)
    else:
        latents = torch.cat([_run_chunk(encoder, part) for part in flat.split(frames_per_chunk)])
    return latents.unflatten(0, (batch, n_frames))


def _sum_of_squared_errors(decoder, latents, frames):
    return torch.sum((decoder(latents) - frames) ** 2)


def decoding_error(decoder, latents, frames, frames_per_chunk=None):
    """Mean squared error of decoded latents against frames, ``mean (decoder(z) - x)²``.

    Parameters
    ----------
    decoder : torch.nn.Module
        Maps latents (N, d) to frames (N, H, W).
    latents : torch.Tensor of shape (B, T, d)
    frames : torch.Tensor of shape (B, T, H, W)
        The frames the decoded latents are compared with.
    frames_per_chunk : int, optional
        Decode this many frames at a time; with gradients on, each chunk's activations (and
        decoded frames) are recomputed in the backward pass instead of kept, so the memory of
        the step no longer grows with the decoder's activations of all B * T frames. The value
        is the same up to the order of summation.

    Returns
    -------
    torch.Tensor
        Scalar mean over all B * T * H * W values.
    """
    latents, frames = latents.flatten(0, 1), frames.flatten(0, 1)
    if frames_per_chunk is None or len(latents) <= frames_per_chunk:
        return torch.mean((decoder(latents) - frames) ** 2)
    total = sum(
        _run_chunk(functools.partial(_sum_of_squared_errors, decoder), part, target)
        for part, target in zip(latents.split(frames_per_chunk), frames.split(frames_per_chunk))
    )
    return total / frames.numel()


def subsample_frames(latents, frames, fraction, generator=None):
    """The same random subset of frames of every sequence, from latents and frames alike.

    Each sequence keeps ``n = max(1, round(fraction * T))`` of its T frames, drawn uniformly
    without replacement (independently per sequence, kept in time order). The mean of any
    per-frame quantity over the kept frames is then an unbiased estimate of its mean over all
    frames.

    Parameters
    ----------
    latents : torch.Tensor of shape (B, T, d)
    frames : torch.Tensor of shape (B, T, H, W)
    fraction : float in (0, 1]
        ``1`` returns the inputs themselves.
    generator : torch.Generator, optional
        A CPU generator to draw from (the global one when ``None``).

    Returns
    -------
    latents : torch.Tensor of shape (B, n, d)
    frames : torch.Tensor of shape (B, n, H, W)
    """
    batch, n_frames = latents.shape[:2]
    n_kept = max(1, round(fraction * n_frames))
    if n_kept >= n_frames:
        return latents, frames
    keys = torch.rand(batch, n_frames, generator=generator)
    kept = keys.argsort(dim=1)[:, :n_kept].sort(dim=1).values.to(latents.device)
    sequences = torch.arange(batch, device=latents.device)[:, None]
    return latents[sequences, kept], frames[sequences, kept]


def two_stage_loss(encoder, decoder, frames, *, frames_per_chunk=None):
    """Reconstruction loss of a plain autoencoder on a batch of sequences (no VAR).

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Map frames (N, H, W) to latents (N, d) and back.
    frames : torch.Tensor of shape (B, T, H, W)
        Standardised frames of B sequences of equal length T.
    frames_per_chunk : int, optional
        Run the networks on this many frames at a time, recomputing their activations in the
        backward pass (see :func:`plan_frames_per_chunk`); ``None`` runs all at once.

    Returns
    -------
    losses : dict of str to torch.Tensor
        ``"loss"`` (the scalar to minimise) and ``"reconstruction"`` (the same value).
    """
    latents = encode_frames(encoder, frames, frames_per_chunk)
    reconstruction = decoding_error(decoder, latents, frames, frames_per_chunk)
    return {"reconstruction": reconstruction, "loss": reconstruction}


def end_to_end_loss(
    encoder, decoder, frames, *, alpha, lags, forecast_weight=1.0, reconstruction_weight=1.0,
    reconstruction_subsample=1.0, generator=None, frames_per_chunk=None,
):
    """Forecast and reconstruction loss, through a sparse VAR fitted on each sequence.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Map frames (N, H, W) to latents (N, d) and back.
    frames : torch.Tensor of shape (B, T, H, W)
        Standardised frames of B sequences of equal length T >= lags + 2.
    alpha : float
        ℓ1 penalty of the per-sequence VAR fit.
    lags : int
        VAR order.
    forecast_weight, reconstruction_weight : float, default=1.0
        Weights of the two mean-squared-error terms (see the module docstring).
    reconstruction_subsample : float in (0, 1], default=1.0
        Fraction of each sequence's frames whose reconstruction is decoded: the reconstruction
        term is the mean over a random subset of frames (:func:`subsample_frames`), an
        unbiased estimate of the mean over all of them (and so is its gradient) at a fraction
        of the decoder's cost. Every frame is still encoded, fits the VAR and is forecast.
    generator : torch.Generator, optional
        CPU generator that draws the subsets (the global one when ``None``).
    frames_per_chunk : int, optional
        Run the networks on this many frames at a time, recomputing their activations in the
        backward pass (see :func:`plan_frames_per_chunk`); ``None`` runs all at once. The VAR
        fit always sees every latent of the batch.

    Returns
    -------
    losses : dict of str to torch.Tensor
        ``"loss"`` (the scalar to minimise), ``"reconstruction"`` and ``"forecast"``.

    Raises
    ------
    FloatingPointError
        If the latents are not finite, or so large that their squares overflow (the weights
        diverged), before the VAR fit.

    Examples
    --------
    >>> import functools
    >>> loss = functools.partial(end_to_end_loss, alpha=0.01, lags=1)  # a loss for train()
    """
    latents = encode_frames(encoder, frames, frames_per_chunk)
    reconstruction = decoding_error(
        decoder,
        *subsample_frames(latents, frames, reconstruction_subsample, generator),
        frames_per_chunk,
    )
    if not bool(torch.isfinite(latents.detach().square().sum())):
        raise FloatingPointError("The latents became NaN, infinite or too large")
    coef, intercept = fit_var(latents, alpha, lags)
    forecasts = forecast_var(latents, coef, intercept)
    forecast = decoding_error(decoder, forecasts, frames[:, lags:], frames_per_chunk)
    return {
        "reconstruction": reconstruction,
        "forecast": forecast,
        "loss": forecast_weight * forecast + reconstruction_weight * reconstruction,
    }


def sequence_loss(
    encoder,
    decoder,
    frames,
    *,
    alpha,
    lags,
    training="end_to_end",
    forecast_weight=1.0,
    reconstruction_weight=1.0,
    reconstruction_subsample=1.0,
    generator=None,
):
    """Loss of the model on a batch of sequences, by the name of the training mode.

    ``training="two_stage"`` is :func:`two_stage_loss`; ``"end_to_end"`` is
    :func:`end_to_end_loss`.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Map frames (N, H, W) to latents (N, d) and back.
    frames : torch.Tensor of shape (B, T, H, W)
        Standardised frames of B sequences of equal length T >= lags + 2.
    alpha : float
        ℓ1 penalty of the per-sequence VAR fit.
    lags : int
        VAR order.
    training : {"end_to_end", "two_stage"}
        ``"two_stage"`` uses the reconstruction term only and fits no VAR.
    forecast_weight, reconstruction_weight : float
        Weights of the two mean-squared-error terms (see the module docstring).
    reconstruction_subsample : float in (0, 1]
        End-to-end: fraction of frames whose reconstruction is decoded (see
        :func:`end_to_end_loss`).
    generator : torch.Generator, optional
        Draws those frames.

    Returns
    -------
    losses : dict of str to torch.Tensor
        ``"loss"`` (the scalar to minimise), ``"reconstruction"`` and, for end-to-end training,
        ``"forecast"``.
    """
    if training == "two_stage":
        return two_stage_loss(encoder, decoder, frames)
    if training != "end_to_end":
        raise ValueError(f'training must be "end_to_end" or "two_stage", got {training!r}.')
    return end_to_end_loss(
        encoder,
        decoder,
        frames,
        alpha=alpha,
        lags=lags,
        forecast_weight=forecast_weight,
        reconstruction_weight=reconstruction_weight,
        reconstruction_subsample=reconstruction_subsample,
        generator=generator,
    )


def activation_bytes(encoder, decoder, frame_shape, device):
    """Bytes the autograd graph keeps per frame for one encoder pass and one decoder pass.

    Measured, not modelled: one and then two zero frames go through both networks with
    gradients on, and the tensors autograd saves for the backward pass are counted (each
    storage once, with ``torch.autograd.graph.saved_tensors_hooks``); the difference is the
    cost of one more frame, whatever the architecture.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        On ``device``; map frames (N, H, W) to latents (N, d) and back.
    frame_shape : tuple of int
        (H, W).
    device : torch.device

    Returns
    -------
    encoder_bytes, decoder_bytes : int
        Per frame.
    """
    dtype = next(encoder.parameters()).dtype

    def saved_bytes(module, inputs):
        storages = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            return tensor

        with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            module(inputs.requires_grad_(True))
        return sum(storages.values())

    def per_frame(module, make_input):
        return max(0, saved_bytes(module, make_input(2)) - saved_bytes(module, make_input(1)))

    def frames(n):
        return torch.zeros((n, *frame_shape), dtype=dtype, device=device)

    with torch.no_grad():
        n_latent = encoder(frames(1)).shape[1]

    def latents(n):
        return torch.zeros((n, n_latent), dtype=dtype, device=device)

    return per_frame(encoder, frames), per_frame(decoder, latents)


#: Peak memory of a step over the bytes autograd saves: the backward pass holds the gradients
#: of the activations next to them. Measured on the CPU (``benchmarks/bench_memory.py``): 1.24
#: for whole steps, 1.5 for chunked ones (a chunk is recomputed while the others' latents wait).
_BACKWARD_FACTOR = 1.5


def plan_frames_per_chunk(n_frames, frame_shape, encoder_bytes, decoder_bytes, *, n_decodes,
                          budget):
    """Frames per chunk that keep a training step within a memory budget.

    The estimate of a step of ``N`` frames of ``P`` pixels (``e`` and ``g`` the bytes kept per
    frame by one encoder and one decoder pass, :func:`activation_bytes`; ``f = 1.5`` for the
    gradients the backward pass holds next to them)::

        all at once:  N * 8 P + f * N * (e + n_decodes * g)
        in chunks:    N * 8 P + f * c * (e + g)      (c frames per chunk, recomputed)

    ``8 P`` bytes per frame are the float32 batch and its copy while it is assembled. Whole
    batches are kept when they fit (no recomputation); otherwise the largest chunk that fits is
    used, at the cost of one more forward pass of each network.

    Parameters
    ----------
    n_frames : int
        Frames in the largest training step (``batch_size`` windows of ``window`` frames).
    frame_shape : tuple of int
        (H, W).
    encoder_bytes, decoder_bytes : int
        Per frame, from :func:`activation_bytes`.
    n_decodes : float
        Decoder passes per frame in the loss: 1 for two-stage, ``1 + reconstruction_subsample``
        for end-to-end (the forecast of every frame and the reconstruction of a share of them).
    budget : float or None
        Bytes; ``None`` for no limit.

    Returns
    -------
    frames_per_chunk : int or None
        ``None`` when the whole step fits the budget.

    Raises
    ------
    ValueError
        When even one frame per chunk does not fit: the message gives the estimate.
    """
    pixels = int(np.prod(frame_shape))
    batch_bytes = n_frames * 8 * pixels
    chunk_bytes = _BACKWARD_FACTOR * (encoder_bytes + decoder_bytes)  # per frame of a chunk
    whole = batch_bytes + _BACKWARD_FACTOR * n_frames * (encoder_bytes + n_decodes * decoder_bytes)
    if budget is None or whole <= budget:
        return None
    frames_per_chunk = int((budget - batch_bytes) // max(chunk_bytes, 1))
    if frames_per_chunk < 1:
        raise ValueError(
            f"A training step of {n_frames} frames of {frame_shape[0]}x{frame_shape[1]} needs at "
            f"least {(batch_bytes + chunk_bytes) / 2**30:.2f} GiB, above the memory budget of "
            f"{budget / 2**30:.2f} GiB."
        )
    return frames_per_chunk


class Windows:
    """Training sequences: windows of runs, read and standardised on demand.

    Nothing is copied up front: a window is read from its run (which may be a memory-mapped
    file) only when a batch needs it, so memory does not grow with the length of the movie.

    Parameters
    ----------
    runs : list of ndarray of shape (n_frames_r, H, W)
        Validated runs, any numeric dtype (see :func:`skvarae.io.check_runs`).
    window : int or None
        Frames per window; runs longer than this are tiled by windows, the last one aligned to
        the end of the run so no frame is left out. ``None`` uses whole runs.
    offset : ndarray of shape (H, W)
        Subtracted from every frame.
    scale : float
        Frames are divided by this after subtracting ``offset``.
    n_frames : list of int, optional
        Use only the first ``n_frames[r]`` frames of run ``r`` (e.g. to hold out the rest for
        validation); all frames by default.
    """

    def __init__(self, runs, window, offset, scale, n_frames=None):
        self.runs, self.offset, self.scale = runs, offset, scale
        self.spans = []  # (run index, first frame, number of frames)
        for index, run in enumerate(runs):
            n_frames_run = len(run) if n_frames is None else int(n_frames[index])
            self._add_spans(index, n_frames_run, window)

    def _add_spans(self, index, n_frames, window):
        if window is None or n_frames <= window:
            self.spans.append((index, 0, n_frames))
            return
        starts = list(range(0, n_frames - window + 1, window))
        if starts[-1] + window < n_frames:
            starts.append(n_frames - window)
        self.spans.extend((index, start, window) for start in starts)

    def __len__(self):
        return len(self.spans)

    @property
    def lengths(self):
        """Number of frames of each window."""
        return [length for _, _, length in self.spans]

    def __getitem__(self, i):
        """Window ``i`` as a float32 tensor of shape (length, H, W), standardised."""
        index, start, length = self.spans[i]
        return self.frames(index, start, start + length)

    def frames(self, index, start, stop):
        """Frames ``start:stop`` of run ``index``, standardised, as a float32 tensor."""
        frames = np.asarray(self.runs[index][start:stop], dtype=np.float32)
        return torch.from_numpy((frames - self.offset) / np.float32(self.scale))


class HeldOutTails:
    """Validation loss on the last frames of each training run, forecast as ``score`` does.

    For each run with a held-out tail, the latents of the ``context`` frames before the tail fit
    the VAR (as one training window does), the tail is forecast one step ahead from the observed
    frames before each of its frames, and the forecast and the reconstruction of the tail are
    compared with the truth. Training never sees the tails (:class:`Windows` with ``n_frames``),
    so this measures what early stopping should: how well the model forecasts frames it was not
    trained on.

    Parameters
    ----------
    sequences : Windows
        Standardised runs (their ``runs``, ``offset`` and ``scale`` are used).
    n_train : list of int
        Frames of each run used for training; the rest is the tail. Runs with fewer than
        ``lags + 2`` training frames or fewer than 2 tail frames are skipped.
    context : int or None
        Frames before the tail that fit the VAR (all training frames when ``None``).
    alpha, lags : float, int
        The VAR fit, as in training.
    forecast_weight, reconstruction_weight : float
        Weights of the two terms; ``forecast_weight=0`` for two-stage training (no VAR).
    frames_per_chunk : int, optional
        Frames the networks see at a time (memory); all of a run's frames at once by default.
    """

    def __init__(
        self, sequences, n_train, *, context, alpha, lags, forecast_weight=1.0,
        reconstruction_weight=1.0, frames_per_chunk=None,
    ):
        self.frames_per_chunk = frames_per_chunk
        self.sequences, self.alpha, self.lags = sequences, alpha, lags
        self.forecast_weight, self.reconstruction_weight = forecast_weight, reconstruction_weight
        self.spans = []  # (run index, first context frame, first tail frame, end)
        for index, (run, n_fit) in enumerate(zip(sequences.runs, n_train)):
            if n_fit >= lags + 2 and len(run) - n_fit >= 2:
                first = 0 if context is None else max(0, n_fit - context)
                self.spans.append((index, first, n_fit, len(run)))

    def __len__(self):
        return len(self.spans)

    @torch.no_grad()
    def __call__(self, encoder, decoder, device):
        """Mean validation losses over the tails: dict with ``loss`` and its terms."""
        totals = {"forecast": 0.0, "reconstruction": 0.0}
        for index, first, n_fit, stop in self.spans:
            frames = self.sequences.frames(index, first, stop).to(device)[None]
            latents = encode_frames(encoder, frames, self.frames_per_chunk)
            tail = frames[:, n_fit - first :]
            reconstruction = decoding_error(
                decoder, latents[:, n_fit - first :], tail, self.frames_per_chunk
            )
            totals["reconstruction"] += reconstruction.item()
            if self.forecast_weight > 0:
                fit = latents[:, : n_fit - first].double()
                coef, intercept = fit_var(fit, self.alpha, self.lags)
                forecast = forecast_var(
                    latents[:, n_fit - first - self.lags :].double(), coef, intercept
                )
                error = decoding_error(
                    decoder, forecast.to(latents.dtype), tail, self.frames_per_chunk
                )
                totals["forecast"] += error.item()
        losses = {name: total / len(self.spans) for name, total in totals.items()}
        losses["loss"] = (
            self.forecast_weight * losses["forecast"]
            + self.reconstruction_weight * losses["reconstruction"]
        )
        return losses


def largest_step(lengths, batch_size):
    """Frames in the largest batch :func:`make_batches` can draw from sequences of ``lengths``."""
    counts = collections.Counter(int(length) for length in lengths)
    return max(length * min(batch_size, count) for length, count in counts.items())


def make_batches(lengths, batch_size, rng):
    """Shuffle sequences into batches of equal-length sequences for one epoch.

    Parameters
    ----------
    lengths : list of int
        Number of frames of each training sequence.
    batch_size : int
        Maximum number of sequences per batch.
    rng : numpy.random.RandomState
        Source of the shuffling.

    Returns
    -------
    batches : list of list of int
        Indices of sequences; every batch holds sequences of one length.
    """
    by_length = {}
    for index in rng.permutation(len(lengths)):
        by_length.setdefault(lengths[index], []).append(int(index))
    batches = [
        indices[start : start + batch_size]
        for _, indices in sorted(by_length.items())
        for start in range(0, len(indices), batch_size)
    ]
    return [batches[i] for i in rng.permutation(len(batches))]


def train(
    encoder,
    decoder,
    sequences,
    *,
    loss,
    max_epochs,
    learning_rate,
    batch_size,
    tol,
    n_iter_no_change,
    rng,
    device,
    validation=None,
    verbose=0,
):
    """Train encoder and decoder with Adam and early stopping.

    Training stops after ``max_epochs`` epochs, or earlier when the monitored loss has not
    improved by at least ``tol`` for ``n_iter_no_change`` consecutive epochs. The monitored loss
    is the validation loss when ``validation`` is given (measured before training too, as
    epoch 0, so that training can never return worse weights than it started from), else the
    mean training loss of the epoch. The weights of the best epoch are restored in place.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Modules already on ``device``; trained in place.
    sequences : Windows or sequence of torch.Tensor of shape (T_i, H, W)
        Standardised training sequences, indexable and with a ``lengths`` attribute or
        ``len()`` per item (loaded on the CPU batch by batch, then moved to ``device``).
    loss : callable
        ``loss(encoder, decoder, frames)`` with frames (B, T, H, W) on ``device``, returning a
        dict of scalar tensors with at least ``"loss"`` (the value minimised); every entry is
        averaged per epoch into ``history``. E.g. :func:`two_stage_loss` or
        ``functools.partial(end_to_end_loss, alpha=0.01, lags=1)``.
    max_epochs, batch_size, n_iter_no_change : int
    learning_rate, tol : float
    rng : numpy.random.RandomState
        Shuffles the batches.
    device : torch.device
    validation : callable, optional
        ``validation(encoder, decoder, device)`` returning a dict with ``"loss"`` (e.g.
        :class:`HeldOutTails`); evaluated without gradients after every epoch and before the
        first. Its entries are recorded in ``history`` as ``validation_<name>``.
    verbose : int
        Show a progress bar with the loss when > 0.

    Returns
    -------
    history : list of dict
        Per epoch: ``epoch``, ``loss``, the loss terms, the validation losses when
        ``validation`` is given, and ``duration`` in seconds.
    best_epoch : int
        The (1-based) epoch whose weights were restored; 0 when no epoch improved on the
        starting weights (only possible with ``validation``).

    Raises
    ------
    FloatingPointError
        When a loss is NaN or infinite (or ``loss`` raises FloatingPointError, e.g. for
        non-finite latents); the message names the epoch. The modules are then left at the
        best weights seen before.
    """
    parameters = list(encoder.parameters()) + list(decoder.parameters())
    optimizer = torch.optim.Adam(parameters, lr=learning_rate)
    best_loss, best_epoch, best_state, epochs_without_improvement = math.inf, 0, None, 0
    history = []
    progress = tqdm(range(1, max_epochs + 1), disable=not verbose, desc="training", unit="epoch")

    def restore_best():
        if best_state is not None:
            encoder.load_state_dict(best_state[0])
            decoder.load_state_dict(best_state[1])

    def validate():
        encoder.eval()
        decoder.eval()
        losses = validation(encoder, decoder, device)
        encoder.train()
        decoder.train()
        return {f"validation_{name}": value for name, value in losses.items()}

    if validation is not None:
        best_loss = validate()["validation_loss"]
        best_state = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(decoder.state_dict()))
        logger.debug("epoch 0: validation loss %.6g", best_loss)
    lengths = getattr(sequences, "lengths", None) or [len(s) for s in sequences]
    encoder.train()
    decoder.train()
    for epoch in progress:
        start = time.perf_counter()
        totals, n_sequences = {}, 0
        for batch in make_batches(lengths, batch_size, rng):
            frames = torch.stack([sequences[i] for i in batch]).to(device)
            try:
                losses = loss(encoder, decoder, frames)
            except FloatingPointError as error:
                restore_best()
                raise FloatingPointError(
                    f"{error} at epoch {epoch}; try a smaller learning_rate or check the input "
                    "for extreme values."
                ) from None
            if not torch.isfinite(losses["loss"]):
                restore_best()
                raise FloatingPointError(
                    f"The training loss became {losses['loss'].item()} at epoch {epoch}; "
                    "try a smaller learning_rate or check the input for extreme values."
                )
            optimizer.zero_grad()
            losses["loss"].backward()
            optimizer.step()
            for name, value in losses.items():
                totals[name] = totals.get(name, 0.0) + value.item() * len(batch)
            n_sequences += len(batch)
        record = {name: total / n_sequences for name, total in totals.items()}
        monitored = record["loss"]
        if validation is not None:
            record.update(validate())
            monitored = record["validation_loss"]
        record.update(epoch=epoch, duration=time.perf_counter() - start)
        history.append(record)
        progress.set_postfix(loss=f"{monitored:.4g}")
        logger.debug("epoch %d: %s", epoch, record)

        if monitored < best_loss - tol:
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if monitored < best_loss:
            best_loss, best_epoch = monitored, epoch
            best_state = (copy.deepcopy(encoder.state_dict()), copy.deepcopy(decoder.state_dict()))
        if epochs_without_improvement >= n_iter_no_change:
            logger.info("stopping early at epoch %d: no improvement above tol", epoch)
            break
    progress.close()
    restore_best()
    encoder.eval()
    decoder.eval()
    return history, best_epoch
