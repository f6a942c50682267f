"""Convolutional encoder and decoder for movie frames.

The encoder maps a frame of shape (height, width) to a small latent map of shape
``(latent_channels, h, w)`` with stride-2 convolutions and returns it flattened (C order), so that
one frame is one vector z_t of length ``d = latent_channels * h * w`` for the VAR. The decoder
mirrors it back to a single-channel frame. Nothing here trains or fits anything.

Design choices
--------------
- The number of stride-2 layers is chosen from the frame size (:func:`latent_geometry`), so any
  frame size works, from 1 x 1 to very non-square movies.
- Frames whose sides are not multiples of ``2 ** n_layers`` are padded on the bottom and right by
  replicating the last row / column, and the decoder output is cropped back to (height, width).
- No normalisation layers: batch statistics would make the latent of one frame depend on the
  other frames of the batch, which breaks the per-frame meaning of z_t that the VAR relies on.
- GELU nonlinearities: smooth, so that the encoder Jacobian (used for contribution maps) and
  gradient checks are well defined everywhere.
- The last encoder layer and the last decoder layer are linear: latents and the standardised
  dynamic part of the frames are signed.
- The decoder upsamples by nearest-neighbour repetition followed by a convolution rather than a
  strided transposed convolution, which avoids checkerboard artefacts (Odena et al., 2016,
  "Deconvolution and checkerboard artifacts", Distill). The two steps are computed as one
  (:class:`UpsampleConv2d`): a transposed convolution whose kernel is tied to the 3 x 3 one so
  that the function is exactly upsample-then-convolve, at 4/9 of the multiply-adds and without
  the upsampled copy.
- Activations are stored channels-last (NHWC), where the CPU convolutions of these narrow
  networks run 2-3x faster; the values are the same in either layout.
- The optional linear path (``linear_path``) is either one dense map between pixels and latents
  (``"global"``: PCA's, every latent reads every pixel) or tile-local (``"local"``): latent
  (c, i, j) reads and writes only the pixels of its tile, the ``2 ** n_layers`` square block of
  the frame that the convolutions downsample to latent position (i, j). The local path is
  stored block-wise (:class:`TileLinear`), so no training step can make it global.
- Padding is written with ``expand`` / ``cat`` / slicing only, whose backward passes are plain
  sums and copies: deterministic on CUDA too, and differentiable to any order.
"""

import math

import torch
from torch import nn

from ._validation import check_frame_shape, check_integer

__all__ = ["ConvDecoder", "ConvEncoder", "TileLinear", "UpsampleConv2d", "latent_geometry"]


def _check_kernel_size(kernel_size):
    kernel_size = check_integer(kernel_size, "kernel_size", min_val=1)
    if kernel_size % 2 == 0:
        raise ValueError(
            f"kernel_size must be odd (so that 'same' padding is symmetric), got {kernel_size!r}."
        )
    return kernel_size


def latent_geometry(frame_shape, max_latent_side=4):
    """Number of stride-2 layers, padded frame shape and latent map size for a frame shape.

    The number of layers is the smallest ``L >= 1`` such that
    ``ceil(max(height, width) / 2 ** L) <= max_latent_side``. Each side is padded up to the next
    multiple of ``2 ** L``, and the latent map has spatial size ``padded_shape / 2 ** L``.

    Parameters
    ----------
    frame_shape : tuple of int
        (height, width) of one frame, both positive.
    max_latent_side : int, default=4
        Largest allowed side of the latent map.

    Returns
    -------
    n_layers : int
        Number of stride-2 convolutions, at least 1.
    padded_shape : tuple of int
        (height_pad, width_pad), multiples of ``2 ** n_layers``, each at least the frame side.
    latent_hw : tuple of int
        (h, w) = ``(height_pad // 2 ** n_layers, width_pad // 2 ** n_layers)``.

    Raises
    ------
    ValueError
        If ``frame_shape`` is not two positive integers or ``max_latent_side`` is not a positive
        integer.

    Examples
    --------
    >>> latent_geometry((64, 64))
    (4, (64, 64), (4, 4))
    >>> latent_geometry((5, 7))
    (1, (6, 8), (3, 4))
    >>> latent_geometry((128, 256))
    (6, (128, 256), (2, 4))
    """
    height, width = check_frame_shape(frame_shape)
    max_latent_side = check_integer(max_latent_side, "max_latent_side", min_val=1)
    side = max(height, width)
    n_layers = 1
    while math.ceil(side / 2**n_layers) > max_latent_side:
        n_layers += 1
    factor = 2**n_layers
    h, w = math.ceil(height / factor), math.ceil(width / factor)
    return n_layers, (h * factor, w * factor), (h, w)


def _channels(n_layers, base_channels, max_channels):
    """Channels after each encoder layer: ``base_channels * 2 ** i`` capped at ``max_channels``."""
    return [min(base_channels * 2**i, max_channels) for i in range(n_layers)]


def _channels_last(images):
    """(N, C, H, W) images stored channels-last (NHWC), the layout the convolutions run fastest in.

    Same values and shape; only the memory order changes. On the CPU (oneDNN) the convolutions
    of these small-channel networks run 2-3x faster on channels-last inputs
    (``benchmarks/bench_network.py``), and their outputs stay channels-last.
    """
    return images.contiguous(memory_format=torch.channels_last)


def _pad_replicate(images, padded_shape):
    """Pad (N, C, H, W) images on the bottom and right by repeating the last row and column.

    Replicate rather than zero padding: with ``skip_connection=False`` the encoder sees raw frames
    with a large positive baseline, where zeros would add an artificial step edge at the border
    that the network must learn to ignore; replicating the border keeps local statistics, and for
    standardised (zero-mean) frames it is as neutral as zeros. Written with ``expand`` and ``cat``
    (not ``F.pad(mode="replicate")``) so that the backward pass is deterministic on CUDA.
    """
    n, c, height, width = images.shape
    pad_h, pad_w = padded_shape[0] - height, padded_shape[1] - width
    if pad_h:
        images = torch.cat([images, images[:, :, -1:, :].expand(n, c, pad_h, width)], dim=2)
    if pad_w:
        rows = images.shape[2]
        images = torch.cat([images, images[:, :, :, -1:].expand(n, c, rows, pad_w)], dim=3)
    return images


def _upsampling_matrix(kernel_size, like):
    """The (k + 1, k) 0/1 matrix that folds a k-tap kernel onto 2x nearest-neighbour upsampling.

    Upsampling a row by repetition (``u[m] = x[m // 2]``) and then correlating it with taps
    ``w[0..k-1]`` ("same" zero padding) gives ``y[m] = sum_i x[i] K[m - 2 i + r]`` with
    ``r = k // 2`` and ``K = A w``: the transposed convolution of stride 2 with the
    ``k + 1`` taps ``K[j] = sum of w[c] for c in {k - 1 - j, k - j}``.
    """
    rows = torch.arange(kernel_size + 1)[:, None]
    columns = torch.arange(kernel_size)[None, :]
    folds = (columns == kernel_size - 1 - rows) | (columns == kernel_size - rows)
    return folds.to(dtype=like.dtype, device=like.device)


class UpsampleConv2d(nn.Conv2d):
    """Nearest-neighbour 2x upsampling followed by a "same" convolution, in one operation.

    The result is ``conv2d(upsample_nearest_2x(x), weight, bias, padding=k // 2)`` (zero
    padding, odd square kernel ``k``, stride 1), computed as the transposed convolution of
    stride 2 whose ``(k + 1) x (k + 1)`` kernel is ``A weight Aᵀ`` (:func:`_upsampling_matrix`):
    no upsampled copy of the input is made, and the multiply-adds per output pixel fall from
    ``k²`` to ``(k + 1)² / 4`` per pair of channels (9 to 4 for k = 3). The parameters are those
    of the :class:`torch.nn.Conv2d` it subclasses (same names, shapes and meaning), so the
    function, its gradients and the saved weights are those of upsampling then convolving; only
    the rounding differs.

    Parameters
    ----------
    in_channels, out_channels, kernel_size
        As in :class:`torch.nn.Conv2d`; ``kernel_size`` odd, and the padding is ``k // 2``.

    Examples
    --------
    >>> import torch
    >>> layer = UpsampleConv2d(4, 2, 3)
    >>> layer(torch.zeros(1, 4, 5, 6)).shape
    torch.Size([1, 2, 10, 12])
    """

    def __init__(self, in_channels, out_channels, kernel_size, **kwargs):
        kernel_size = _check_kernel_size(kernel_size)
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2, **kwargs)
        plain = (self.stride, self.dilation, self.groups, self.padding_mode)
        if plain != ((1, 1), (1, 1), 1, "zeros"):
            raise ValueError(
                "UpsampleConv2d supports only stride=1, dilation=1, groups=1 and zero padding, got "
                f"stride={self.stride}, dilation={self.dilation}, groups={self.groups}, "
                f"padding_mode={self.padding_mode!r}."
            )

    def forward(self, images):
        """(N, C_in, H, W) -> (N, C_out, 2 H, 2 W)."""
        folds = _upsampling_matrix(self.kernel_size[0], self.weight)
        kernel = torch.einsum("jr,oirc,lc->iojl", folds, self.weight, folds)
        return nn.functional.conv_transpose2d(
            images, kernel, self.bias, stride=2, padding=self.kernel_size[0] // 2
        )


#: Accepted values of ``linear_path`` and what they mean; ``True`` is ``"global"``, what it meant
#: before the tile-local path existed (files saved with ``True`` hold a dense linear path).
_LINEAR_PATHS = {False: False, None: False, True: "global", "global": "global", "local": "local"}


def _check_linear_path(linear_path):
    try:
        return _LINEAR_PATHS[linear_path]
    except (KeyError, TypeError):
        raise ValueError(
            f'linear_path must be "local", "global", True (= "global") or False, '
            f"got {linear_path!r}."
        ) from None


class TileLinear(nn.Module):
    """A linear map between frames and latent maps in which every latent sees only its tile.

    Latent (c, i, j) of a latent map of shape ``(channels, h, w)`` is a weighted sum of the pixels
    of tile (i, j), the block ``[i * tile, (i + 1) * tile) x [j * tile, (j + 1) * tile)`` of the
    frame (the block the encoder's ``n_layers`` stride-2 convolutions downsample to position
    (i, j), with ``tile = 2 ** n_layers``); the transposed map (``transposed=True``, the
    decoder's) writes latent (c, i, j) into that tile only. The weights are stored block-wise,
    ``weight[c, i, j]`` of shape ``(tile, tile)``, so locality is structural: a pixel outside the
    tile has no weight at all. Frames are zero-padded on the bottom and right to the tile grid
    (decoded frames cropped back); weights on padded pixels get no gradient and stay at their
    initial zero.

    Parameters
    ----------
    frame_shape : tuple of int
        (height, width).
    latent_shape : tuple of int
        (channels, h, w), with ``h * tile >= height > (h - 1) * tile`` (and likewise w).
    tile : int
        Side of a tile in pixels.
    transposed : bool, default=False
        ``False``: frames (n, height, width) -> latents (n, channels * h * w) (C order).
        ``True``: latents -> frames, with the same block structure.

    Examples
    --------
    >>> import torch
    >>> layer = TileLinear((5, 7), (2, 3, 4), 2)
    >>> layer.weight.shape
    torch.Size([2, 3, 4, 2, 2])
    >>> layer(torch.zeros(10, 5, 7)).shape
    torch.Size([10, 24])
    >>> layer.dense_weight().shape  # (channels * h * w, height * width)
    torch.Size([24, 35])
    """

    def __init__(self, frame_shape, latent_shape, tile, *, transposed=False):
        super().__init__()
        self.frame_shape = check_frame_shape(frame_shape)
        self.latent_shape = tuple(int(v) for v in latent_shape)
        self.tile = check_integer(tile, "tile", min_val=1)
        self.transposed = bool(transposed)
        _, h, w = self.latent_shape
        self.padded_shape = (h * self.tile, w * self.tile)
        self.weight = nn.Parameter(torch.zeros(*self.latent_shape, self.tile, self.tile))

    def extra_repr(self):
        return (
            f"frame_shape={self.frame_shape}, latent_shape={self.latent_shape}, "
            f"tile={self.tile}, transposed={self.transposed}"
        )

    def forward(self, inputs):
        _, h, w = self.latent_shape
        t = self.tile
        height, width = self.frame_shape
        if self.transposed:
            latents = inputs.reshape(inputs.shape[0], *self.latent_shape)
            blocks = torch.einsum("nchw,chwab->nhawb", latents, self.weight)
            return blocks.reshape(inputs.shape[0], h * t, w * t)[:, :height, :width]
        pad_h, pad_w = self.padded_shape[0] - height, self.padded_shape[1] - width
        frames = nn.functional.pad(inputs, (0, pad_w, 0, pad_h)) if pad_h or pad_w else inputs
        blocks = frames.reshape(frames.shape[0], h, t, w, t)
        return torch.einsum("nhawb,chwab->nchw", blocks, self.weight).flatten(start_dim=1)

    def dense_weight(self):
        """The map as a dense matrix ``(channels * h * w, height * width)`` (rows: latents).

        The decoder's map (``transposed=True``) is its transpose. Zero outside each row's tile.
        """
        channels, h, w = self.latent_shape
        t = self.tile
        blocks = self.weight.permute(0, 1, 3, 2, 4)  # (c, h, w, a, b) -> (c, h, a, w, b)
        dense = torch.zeros(channels, h, w, h, t, w, t, dtype=self.weight.dtype,
                            device=self.weight.device)
        for i in range(h):
            for j in range(w):
                dense[:, i, j, i, :, j, :] = blocks[:, i, :, j, :]
        dense = dense.reshape(channels * h * w, h * t, w * t)
        return dense[:, : self.frame_shape[0], : self.frame_shape[1]].flatten(start_dim=1)


class _Geometry(nn.Module):
    """Shared argument validation and geometry of :class:`ConvEncoder` / :class:`ConvDecoder`."""

    def __init__(
        self, frame_shape, *, latent_channels, max_latent_side, base_channels, max_channels,
        kernel_size, linear_path=False,
    ):
        super().__init__()
        self.linear_path = _check_linear_path(linear_path)
        self.frame_shape = check_frame_shape(frame_shape)
        self.latent_channels = check_integer(latent_channels, "latent_channels", min_val=1)
        self.max_latent_side = check_integer(max_latent_side, "max_latent_side", min_val=1)
        self.base_channels = check_integer(base_channels, "base_channels", min_val=1)
        self.max_channels = check_integer(max_channels, "max_channels", min_val=1)
        self.kernel_size = _check_kernel_size(kernel_size)
        self.n_layers, self.padded_shape, latent_hw = latent_geometry(
            self.frame_shape, self.max_latent_side
        )
        self.latent_shape = (self.latent_channels, *latent_hw)
        self.n_latent = self.latent_channels * latent_hw[0] * latent_hw[1]
        self.channels = _channels(self.n_layers, self.base_channels, self.max_channels)
        self.tile = 2**self.n_layers

    def _make_linear_path(self, transposed):
        n_pixels = self.frame_shape[0] * self.frame_shape[1]
        if self.linear_path == "local":
            self.tile_linear = TileLinear(
                self.frame_shape, self.latent_shape, self.tile, transposed=transposed
            )
        elif self.linear_path == "global":
            shape = (self.n_latent, n_pixels)
            self.linear = nn.Linear(*(shape[::-1] if not transposed else shape), bias=False)

    def _linear(self, inputs):
        if self.linear_path == "local":
            return self.tile_linear(inputs)
        if self.transposed_linear:
            return self.linear(inputs).unflatten(1, self.frame_shape)
        return self.linear(inputs.flatten(start_dim=1))

    def extra_repr(self):
        return (
            f"frame_shape={self.frame_shape}, padded_shape={self.padded_shape}, "
            f"latent_shape={self.latent_shape}, linear_path={self.linear_path}"
        )

    def _check_components(self, components):
        if not self.linear_path:
            raise ValueError("This network was built with linear_path=False.")
        components = torch.as_tensor(components)
        if self.linear_path == "local":
            shape, names = (*self.latent_shape, self.tile, self.tile), "(*latent_shape, tile, tile)"
        else:
            shape = (self.n_latent, self.frame_shape[0] * self.frame_shape[1])
            names = "(n_latent, height * width)"
        if components.shape != shape:
            raise ValueError(
                f"components must have shape {names} = {shape} with "
                f"linear_path={self.linear_path!r}, got {tuple(components.shape)}."
            )
        return components

    def _set_linear_path(self, components, transposed):
        components = self._check_components(components)
        if self.linear_path == "local":
            self.tile_linear.weight.copy_(components)
        else:
            self.linear.weight.copy_(components.T if transposed else components)


class ConvEncoder(_Geometry):
    """Strided convolutional encoder from frames to flattened latent maps.

    ``n_layers`` stride-2 convolutions (see :func:`latent_geometry`) with
    ``base_channels * 2 ** i`` output channels (capped at ``max_channels``), each followed by
    GELU, then a linear 1 x 1 convolution to ``latent_channels`` channels. Frames are padded on
    the bottom and right (replicating the border) to a multiple of ``2 ** n_layers``.

    Parameters
    ----------
    frame_shape : tuple of int
        (height, width) of the frames.
    latent_channels : int, default=2
        Channels of the latent map.
    max_latent_side : int, default=4
        Largest side of the latent map; sets the number of stride-2 layers.
    base_channels : int, default=8
        Channels after the first convolution; doubled at every layer.
    max_channels : int, default=64
        Cap on the channels of any layer.
    kernel_size : int, default=3
        Side of the convolution kernels; odd.
    linear_path : {"local", "global"} or bool, default=False
        Add a linear map from pixels to latents to the convolutional path. ``"local"``: a
        :class:`TileLinear`, each latent reads only its tile. ``"global"`` (or ``True``): a dense
        ``nn.Linear`` (attribute ``linear``), each latent reads every pixel. ``False``: none.

    Attributes
    ----------
    frame_shape : tuple of int
        (height, width).
    padded_shape : tuple of int
        (height_pad, width_pad) the frames are padded to.
    n_layers : int
        Number of stride-2 convolutions.
    channels : list of int
        Output channels of each stride-2 convolution.
    latent_shape : tuple of int
        (latent_channels, h, w), with h = height_pad / 2 ** n_layers (and w likewise).
    n_latent : int
        d = latent_channels * h * w, the length of one latent vector.
    tile : int
        ``2 ** n_layers``, the side of the block of pixels downsampled to one latent position.

    Raises
    ------
    ValueError
        If an argument is not a positive integer (``frame_shape``: two of them; ``kernel_size``:
        odd), naming the argument.

    See Also
    --------
    ConvDecoder : The mirror image, from latents back to frames.
    latent_geometry : How the number of layers and the latent size are chosen.

    Examples
    --------
    >>> import torch
    >>> encoder = ConvEncoder((5, 7))
    >>> encoder.latent_shape, encoder.n_latent
    ((2, 3, 4), 24)
    >>> encoder(torch.zeros(10, 5, 7)).shape
    torch.Size([10, 24])
    """

    def __init__(
        self, frame_shape, *, latent_channels=2, max_latent_side=4, base_channels=8,
        max_channels=64, kernel_size=3, linear_path=False,
    ):
        super().__init__(
            frame_shape, latent_channels=latent_channels, max_latent_side=max_latent_side,
            base_channels=base_channels, max_channels=max_channels, kernel_size=kernel_size,
            linear_path=linear_path,
        )
        self.transposed_linear = False
        self._make_linear_path(transposed=False)
        layers = []
        in_channels = 1
        for out_channels in self.channels:
            layers += [
                nn.Conv2d(
                    in_channels, out_channels, self.kernel_size, stride=2,
                    padding=self.kernel_size // 2,
                ),
                nn.GELU(),
            ]
            in_channels = out_channels
        layers.append(nn.Conv2d(in_channels, self.latent_channels, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, frames):
        """Encode frames.

        Parameters
        ----------
        frames : torch.Tensor of shape (n_frames, height, width)
            Floating point, same dtype and device as the parameters.

        Returns
        -------
        latents : torch.Tensor of shape (n_frames, n_latent)
            Latent maps of shape ``latent_shape`` flattened in C order (channel, row, column).
        """
        if frames.ndim != 3 or tuple(frames.shape[1:]) != self.frame_shape:
            raise ValueError(
                f"frames must have shape (n_frames, {self.frame_shape[0]}, "
                f"{self.frame_shape[1]}), got {tuple(frames.shape)}."
            )
        images = _pad_replicate(frames[:, None], self.padded_shape)
        latents = self.layers(_channels_last(images)).flatten(start_dim=1)
        if self.linear_path:
            latents = latents + self._linear(frames)
        return latents

    @torch.no_grad()
    def init_linear_path(self, components):
        """Start from a linear encoder: ``z = components @ x`` plus a zero convolutional part.

        Sets the linear path's weights to ``components`` and the last (1 x 1) convolution to
        zero, so that the encoder computes exactly ``components @ x.ravel()`` until training
        moves it. With the first principal components of the training frames (of each tile's
        pixels for the local path), the model starts as PCA and the convolutions learn what PCA
        misses.

        Parameters
        ----------
        components : array-like
            ``linear_path="global"``: shape (n_latent, height * width), rows are the latent
            directions in pixel space (C order). ``linear_path="local"``: shape
            ``(*latent_shape, tile, tile)``, ``components[c, i, j]`` the weights of latent
            (c, i, j) on the pixels of its tile (rows and columns beyond the frame are ignored).
        """
        self._set_linear_path(components, transposed=False)
        self.layers[-1].weight.zero_()
        self.layers[-1].bias.zero_()


class ConvDecoder(_Geometry):
    """Convolutional decoder from flattened latent maps to frames, mirroring :class:`ConvEncoder`.

    A 1 x 1 convolution from ``latent_channels`` to the deepest encoder width, then ``n_layers``
    blocks of (nearest-neighbour 2x upsampling, convolution, GELU) walking the encoder channels
    back, then a linear convolution to one channel, cropped to (height, width).

    Parameters
    ----------
    frame_shape : tuple of int
        (height, width) of the frames.
    latent_channels : int, default=2
        Channels of the latent map.
    max_latent_side : int, default=4
        Largest side of the latent map; sets the number of upsampling layers.
    base_channels : int, default=8
        Channels of the last upsampling block; halved at every layer from the output inwards.
    max_channels : int, default=64
        Cap on the channels of any layer.
    kernel_size : int, default=3
        Side of the convolution kernels; odd.
    linear_path : {"local", "global"} or bool, default=False
        As in :class:`ConvEncoder`, from latents to pixels: ``"local"`` writes each latent into
        its tile only.

    Attributes
    ----------
    frame_shape, padded_shape, n_layers, channels, latent_shape, n_latent, tile
        As in :class:`ConvEncoder` with the same arguments.

    Raises
    ------
    ValueError
        If an argument is not a positive integer (``frame_shape``: two of them; ``kernel_size``:
        odd), naming the argument.

    See Also
    --------
    ConvEncoder : The encoder this decoder mirrors.

    Examples
    --------
    >>> import torch
    >>> decoder = ConvDecoder((5, 7))
    >>> decoder(torch.zeros(10, decoder.n_latent)).shape
    torch.Size([10, 5, 7])
    """

    def __init__(
        self, frame_shape, *, latent_channels=2, max_latent_side=4, base_channels=8,
        max_channels=64, kernel_size=3, linear_path=False,
    ):
        super().__init__(
            frame_shape, latent_channels=latent_channels, max_latent_side=max_latent_side,
            base_channels=base_channels, max_channels=max_channels, kernel_size=kernel_size,
            linear_path=linear_path,
        )
        self.transposed_linear = True
        self._make_linear_path(transposed=True)
        self.stem = nn.Sequential(nn.Conv2d(self.latent_channels, self.channels[-1], 1), nn.GELU())
        # Block i undoes encoder layer i: channels[i] -> channels[i - 1] (channels[0] at the end).
        blocks = []
        for i in reversed(range(self.n_layers)):
            in_channels, out_channels = self.channels[i], self.channels[max(i - 1, 0)]
            upsample_conv = UpsampleConv2d(in_channels, out_channels, self.kernel_size)
            blocks.append(nn.Sequential(upsample_conv, nn.GELU()))
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(self.channels[0], 1, self.kernel_size, padding=self.kernel_size // 2)

    def forward(self, latents):
        """Decode latents.

        Parameters
        ----------
        latents : torch.Tensor of shape (n_frames, n_latent)
            Flattened latent maps (C order), same dtype and device as the parameters.

        Returns
        -------
        frames : torch.Tensor of shape (n_frames, height, width)
            Reconstructed frames (linear output, signed).
        """
        if latents.ndim != 2 or latents.shape[1] != self.n_latent:
            raise ValueError(
                f"latents must have shape (n_frames, {self.n_latent}), got {tuple(latents.shape)}."
            )
        images = self.stem(_channels_last(latents.reshape(latents.shape[0], *self.latent_shape)))
        for block in self.blocks:
            images = block(images)
        images = self.head(images)
        height, width = self.frame_shape
        frames = images[:, 0, :height, :width]
        if self.linear_path:
            frames = frames + self._linear(latents)
        return frames

    @torch.no_grad()
    def init_linear_path(self, components):
        """Start from a linear decoder: ``x = components.T @ z`` plus a zero convolutional part.

        Sets the linear path's weights to ``components.T`` and the last convolution to zero
        (see :meth:`ConvEncoder.init_linear_path`).

        Parameters
        ----------
        components : array-like
            As in :meth:`ConvEncoder.init_linear_path`.
        """
        self._set_linear_path(components, transposed=True)
        self.head.weight.zero_()
        self.head.bias.zero_()
