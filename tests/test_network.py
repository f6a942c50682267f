"""Tests for skvarae.network: the convolutional encoder and decoder."""

import math

import numpy as np
import pytest
import torch

from skvarae.network import ConvDecoder, ConvEncoder, UpsampleConv2d, latent_geometry

FRAME_SHAPES = [(1, 1), (2, 3), (3, 2), (5, 7), (8, 8), (9, 1), (17, 33), (64, 64), (128, 256)]


@pytest.fixture(autouse=True)
def _single_thread():
    # These modules are tiny: one intra-op thread is faster, and immune to a busy shared machine.
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n_threads)


def _n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("frame_shape", FRAME_SHAPES)
@pytest.mark.parametrize("max_latent_side", [1, 3, 4])
def test_latent_geometry_definition(frame_shape, max_latent_side):
    n_layers, padded_shape, (h, w) = latent_geometry(frame_shape, max_latent_side)
    factor = 2**n_layers
    side = max(frame_shape)
    # Smallest L >= 1 with ceil(side / 2**L) <= max_latent_side.
    assert n_layers >= 1
    assert math.ceil(side / factor) <= max_latent_side
    if n_layers > 1:
        assert math.ceil(side / 2 ** (n_layers - 1)) > max_latent_side
    for size, padded, latent in zip(frame_shape, padded_shape, (h, w)):
        assert padded % factor == 0
        assert size <= padded < size + factor
        assert latent == padded // factor == math.ceil(size / factor)


def test_latent_geometry_examples():
    assert latent_geometry((1, 1)) == (1, (2, 2), (1, 1))
    assert latent_geometry((2, 3)) == (1, (2, 4), (1, 2))
    assert latent_geometry((64, 64)) == (4, (64, 64), (4, 4))
    assert latent_geometry((17, 33), max_latent_side=4) == (4, (32, 48), (2, 3))
    assert latent_geometry((128, 256)) == (6, (128, 256), (2, 4))


@pytest.mark.parametrize("frame_shape", FRAME_SHAPES)
def test_shapes_and_round_trip(frame_shape):
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder(frame_shape), ConvDecoder(frame_shape)
    _, _, (h, w) = latent_geometry(frame_shape)
    assert encoder.latent_shape == decoder.latent_shape == (2, h, w)
    assert encoder.n_latent == decoder.n_latent == 2 * h * w
    frames = torch.randn(3, *frame_shape)
    latents = encoder(frames)
    assert latents.shape == (3, encoder.n_latent)
    assert decoder(latents).shape == (3, *frame_shape)


@pytest.mark.parametrize("latent_channels", [1, 3])
def test_latent_is_flattened_latent_map_in_c_order(latent_channels):
    torch.manual_seed(0)
    encoder = ConvEncoder((17, 33), latent_channels=latent_channels)
    frames = torch.randn(4, 17, 33)
    latents = encoder(frames)
    assert encoder.latent_shape[0] == latent_channels
    padded = torch.nn.functional.pad(frames[:, None], (0, 48 - 33, 0, 32 - 17), mode="replicate")
    latent_map = encoder.layers(padded)
    assert latent_map.shape[1:] == encoder.latent_shape
    torch.testing.assert_close(latents, latent_map.reshape(4, -1))


def test_padding_replicates_border():
    # The encoder of a 5 x 7 frame sees the 6 x 8 frame with the last row / column repeated.
    torch.manual_seed(0)
    small, big = ConvEncoder((5, 7)), ConvEncoder((6, 8))
    big.load_state_dict(small.state_dict())
    frames = torch.randn(2, 5, 7)
    padded = torch.cat([frames, frames[:, -1:]], dim=1)
    padded = torch.cat([padded, padded[:, :, -1:]], dim=2)
    torch.testing.assert_close(small(frames), big(padded))


def test_decoder_output_is_cropped_top_left():
    torch.manual_seed(0)
    small, big = ConvDecoder((5, 7)), ConvDecoder((6, 8))
    big.load_state_dict(small.state_dict())
    latents = torch.randn(2, small.n_latent)
    torch.testing.assert_close(small(latents), big(latents)[:, :5, :7])


def test_latents_and_output_are_signed():
    # No final activation: latents and reconstructions take both signs.
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder((16, 16)), ConvDecoder((16, 16))
    latents = encoder(torch.randn(32, 16, 16))
    output = decoder(10 * torch.randn(32, decoder.n_latent))
    assert (latents < 0).any() and (latents > 0).any()
    assert (output < 0).any() and (output > 0).any()


def test_channels_double_and_are_capped():
    encoder = ConvEncoder((128, 256), base_channels=8, max_channels=32)
    assert encoder.channels == [8, 16, 32, 32, 32, 32]
    decoder = ConvDecoder((128, 256), base_channels=8, max_channels=32)
    assert decoder.channels == encoder.channels


def test_default_models_are_small():
    total = _n_params(ConvEncoder((64, 64))) + _n_params(ConvDecoder((64, 64)))
    assert total < 60_000
    total = _n_params(ConvEncoder((128, 256))) + _n_params(ConvDecoder((128, 256)))
    assert total < 250_000


@pytest.mark.parametrize("frame_shape", [(1, 1), (5, 7), (17, 33)])
def test_gradient_reaches_every_parameter(frame_shape):
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder(frame_shape), ConvDecoder(frame_shape)
    frames = torch.randn(4, *frame_shape)
    loss = (decoder(encoder(frames)) - frames).pow(2).mean()
    loss.backward()
    for module in (encoder, decoder):
        for name, parameter in module.named_parameters():
            assert parameter.grad is not None, name
            assert torch.isfinite(parameter.grad).all(), name
            assert parameter.grad.abs().sum() > 0, name


def test_gradient_with_respect_to_input_frames():
    # Contribution maps need d latent / d pixel, including pixels copied into the padding.
    torch.manual_seed(0)
    encoder = ConvEncoder((5, 7))
    frames = torch.randn(2, 5, 7, dtype=torch.float64, requires_grad=True)
    encoder.double()
    encoder(frames).sum().backward()
    assert frames.grad.shape == frames.shape
    assert (frames.grad != 0).all()


def test_float64_and_gradcheck():
    torch.manual_seed(0)
    encoder = ConvEncoder((3, 5), base_channels=2).double()
    decoder = ConvDecoder((3, 5), base_channels=2).double()
    frames = torch.randn(2, 3, 5, dtype=torch.float64, requires_grad=True)
    output = decoder(encoder(frames))
    assert output.dtype == torch.float64
    assert output.shape == (2, 3, 5)
    assert torch.autograd.gradcheck(lambda x: decoder(encoder(x)), (frames,))


def test_construction_is_deterministic_under_manual_seed():
    def build():
        torch.manual_seed(123)
        return ConvEncoder((17, 33)), ConvDecoder((17, 33))

    first, second = build(), build()
    for a, b in zip(first, second):
        state_a, state_b = a.state_dict(), b.state_dict()
        assert state_a.keys() == state_b.keys()
        for key in state_a:
            torch.testing.assert_close(state_a[key], state_b[key], rtol=0, atol=0)
    torch.manual_seed(124)
    other = ConvEncoder((17, 33))
    assert not torch.equal(other.layers[0].weight, first[0].layers[0].weight)


def test_construction_under_fork_rng_leaves_global_state_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ConvEncoder((64, 64))
        ConvDecoder((64, 64))
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)


def test_forward_is_deterministic():
    torch.manual_seed(0)
    encoder, decoder = ConvEncoder((17, 33)), ConvDecoder((17, 33))
    frames = torch.randn(5, 17, 33)
    torch.testing.assert_close(decoder(encoder(frames)), decoder(encoder(frames)), rtol=0, atol=0)


def test_frames_are_encoded_independently():
    # No batch statistics: a frame's latent does not depend on the rest of the batch.
    torch.manual_seed(0)
    encoder = ConvEncoder((17, 33))
    frames = torch.randn(6, 17, 33)
    torch.testing.assert_close(encoder(frames)[2:3], encoder(frames[2:3]))


def test_tiny_autoencoder_overfits_a_few_frames():
    torch.manual_seed(0)
    encoder = ConvEncoder((8, 8), base_channels=8)
    decoder = ConvDecoder((8, 8), base_channels=8)
    frames = torch.randn(4, 8, 8)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=1e-2)
    losses = []
    for _ in range(200):
        optimizer.zero_grad()
        loss = (decoder(encoder(frames)) - frames).pow(2).mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 100


def test_empty_batch():
    encoder, decoder = ConvEncoder((5, 7)), ConvDecoder((5, 7))
    assert encoder(torch.zeros(0, 5, 7)).shape == (0, encoder.n_latent)
    assert decoder(torch.zeros(0, decoder.n_latent)).shape == (0, 5, 7)


@pytest.mark.parametrize("module", [ConvEncoder, ConvDecoder])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"frame_shape": (0, 4)}, "frame_shape"),
        ({"frame_shape": (4,)}, "frame_shape"),
        ({"frame_shape": (4, 4, 4)}, "frame_shape"),
        ({"frame_shape": (4.0, 4)}, "frame_shape"),
        ({"frame_shape": 4}, "frame_shape"),
        ({"frame_shape": (True, 4)}, "frame_shape"),
        ({"latent_channels": 0}, "latent_channels"),
        ({"latent_channels": 1.5}, "latent_channels"),
        ({"max_latent_side": 0}, "max_latent_side"),
        ({"max_latent_side": "4"}, "max_latent_side"),
        ({"base_channels": -1}, "base_channels"),
        ({"max_channels": 0}, "max_channels"),
        ({"kernel_size": 0}, "kernel_size"),
        ({"kernel_size": 4}, "kernel_size"),
    ],
)
def test_invalid_arguments(module, kwargs, match):
    kwargs = {"frame_shape": (8, 8), **kwargs}
    frame_shape = kwargs.pop("frame_shape")
    with pytest.raises(ValueError, match=match):
        module(frame_shape, **kwargs)


@pytest.mark.parametrize(
    "frame_shape, max_latent_side, match",
    [
        ((0, 1), 4, "frame_shape"),
        ((2, 2), 0, "max_latent_side"),
        ((2, 2), None, "max_latent_side"),
    ],
)
def test_latent_geometry_invalid_arguments(frame_shape, max_latent_side, match):
    with pytest.raises(ValueError, match=match):
        latent_geometry(frame_shape, max_latent_side)


def test_numpy_integers_are_accepted():
    np = pytest.importorskip("numpy")
    encoder = ConvEncoder(np.array([5, 7]), latent_channels=np.int64(3))
    assert encoder.frame_shape == (5, 7)
    assert encoder.latent_shape == (3, 3, 4)
    assert all(type(s) is int for s in encoder.latent_shape)


def test_forward_rejects_wrong_input_shape():
    encoder, decoder = ConvEncoder((5, 7)), ConvDecoder((5, 7))
    with pytest.raises(ValueError, match=r"frames must have shape \(n_frames, 5, 7\)"):
        encoder(torch.zeros(2, 7, 5))
    with pytest.raises(ValueError, match="frames must have shape"):
        encoder(torch.zeros(5, 7))
    with pytest.raises(ValueError, match=r"latents must have shape \(n_frames, 24\)"):
        decoder(torch.zeros(2, 23))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_forward_and_backward_on_cuda():
    torch.manual_seed(0)
    encoder = ConvEncoder((17, 33)).cuda()
    decoder = ConvDecoder((17, 33)).cuda()
    frames = torch.randn(4, 17, 33, device="cuda", requires_grad=True)
    output = decoder(encoder(frames))
    assert output.shape == (4, 17, 33)
    assert output.device.type == "cuda"
    output.pow(2).mean().backward()
    assert frames.grad.device.type == "cuda"
    # Same weights on the CPU give the same result (up to float32 rounding).
    expected = ConvDecoder((17, 33)).eval()
    expected.load_state_dict({k: v.cpu() for k, v in decoder.state_dict().items()})
    encoder_cpu = ConvEncoder((17, 33))
    encoder_cpu.load_state_dict({k: v.cpu() for k, v in encoder.state_dict().items()})
    torch.testing.assert_close(
        output.detach().cpu(), expected(encoder_cpu(frames.detach().cpu())), rtol=1e-3, atol=1e-4
    )


def _upsample_then_conv(images, conv):
    """The reference: repeat every pixel 2 x 2, then a 'same' convolution with conv's weights."""
    upsampled = torch.repeat_interleave(torch.repeat_interleave(images, 2, dim=2), 2, dim=3)
    return torch.nn.functional.conv2d(
        upsampled, conv.weight, conv.bias, padding=conv.kernel_size[0] // 2
    )


@pytest.mark.parametrize("kernel_size", [1, 3, 5])
@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (3, 2, 5, 7), (2, 3, 8, 6)])
def test_upsample_conv_is_upsampling_then_convolution(kernel_size, shape):
    torch.manual_seed(0)
    conv = UpsampleConv2d(shape[1], 4, kernel_size).double()
    torch.nn.init.normal_(conv.weight)
    images = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    output = conv(images)
    expected = _upsample_then_conv(images, conv)
    assert output.shape == (shape[0], 4, 2 * shape[2], 2 * shape[3])
    torch.testing.assert_close(output, expected, rtol=0, atol=1e-12)
    grad = torch.randn_like(output)
    fast = torch.autograd.grad(output, (images, conv.weight, conv.bias), grad)
    reference = torch.autograd.grad(expected, (images, conv.weight, conv.bias), grad)
    for a, b in zip(fast, reference):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-11)


def test_upsample_conv_gradcheck_and_double_backward():
    conv = UpsampleConv2d(2, 3, 3).double()
    images = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(conv, (images,))
    assert torch.autograd.gradgradcheck(lambda x: conv(x) ** 2, (images,))


def test_upsample_conv_has_the_parameters_of_a_conv2d():
    """Same names and shapes as the nn.Conv2d the decoder used before: saved weights load."""
    conv = UpsampleConv2d(8, 4, 3)
    plain = torch.nn.Conv2d(8, 4, 3, padding=1)
    assert {k: v.shape for k, v in conv.state_dict().items()} == {
        k: v.shape for k, v in plain.state_dict().items()
    }
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        UpsampleConv2d(8, 4, 2)
    with pytest.raises(ValueError, match="stride=1"):
        UpsampleConv2d(8, 4, 3, stride=2)


@pytest.mark.parametrize("frame_shape", [(17, 33), (64, 64)])
def test_networks_compute_the_same_in_either_memory_layout(frame_shape):
    """Channels-last activations are a speed choice only: the reference computes layer by layer
    in the default (NCHW) layout, upsampling by repetition, and agrees to float64 rounding."""
    torch.manual_seed(0)
    encoder = ConvEncoder(frame_shape, linear_path="local").double()
    decoder = ConvDecoder(frame_shape, linear_path="local").double()
    for parameter in [*encoder.parameters(), *decoder.parameters()]:
        torch.nn.init.normal_(parameter, std=0.3)
    frames = torch.randn(3, *frame_shape, dtype=torch.float64)
    latents = encoder(frames)
    images = torch.nn.functional.pad(
        frames[:, None],
        (0, encoder.padded_shape[1] - frame_shape[1], 0, encoder.padded_shape[0] - frame_shape[0]),
        mode="replicate",
    )
    for layer in encoder.layers:
        images = layer(images.contiguous())
    expected = images.flatten(1) + encoder.tile_linear(frames)
    torch.testing.assert_close(latents, expected, rtol=0, atol=1e-10)

    images = decoder.stem(latents.reshape(3, *decoder.latent_shape).contiguous())
    for block in decoder.blocks:
        images = torch.nn.functional.gelu(_upsample_then_conv(images.contiguous(), block[0]))
    images = decoder.head(images.contiguous())[:, 0, : frame_shape[0], : frame_shape[1]]
    expected = images + decoder.tile_linear(latents)
    torch.testing.assert_close(decoder(latents), expected, rtol=0, atol=1e-10)


# ------------------------------------------------------------------ the linear path
@pytest.mark.parametrize("frame_shape", [(8, 8), (5, 7)])
def test_linear_path_initialised_from_components_is_exactly_linear(frame_shape):
    """After init_linear_path, encoder and decoder are the linear maps W and Wᵀ (PCA's)."""
    torch.manual_seed(0)
    encoder = ConvEncoder(frame_shape, linear_path=True)
    decoder = ConvDecoder(frame_shape, linear_path=True)
    n_pixels = frame_shape[0] * frame_shape[1]
    components = torch.linalg.qr(torch.randn(n_pixels, encoder.n_latent))[0].T[: encoder.n_latent]
    if components.shape[0] < encoder.n_latent:  # more latents than pixels: pad with zeros
        components = torch.cat(
            [components, torch.zeros(encoder.n_latent - components.shape[0], n_pixels)]
        )
    encoder.init_linear_path(components)
    decoder.init_linear_path(components)
    frames = torch.randn(6, *frame_shape)
    z = encoder(frames)
    torch.testing.assert_close(z, frames.flatten(1) @ components.T)
    torch.testing.assert_close(decoder(z), (z @ components).unflatten(1, frame_shape))


def test_linear_path_trains_both_parts():
    encoder = ConvEncoder((8, 8), linear_path=True)
    components = torch.eye(64)[: encoder.n_latent]
    encoder.init_linear_path(components)
    encoder(torch.randn(3, 8, 8)).pow(2).sum().backward()
    assert encoder.linear.weight.grad.abs().sum() > 0
    assert encoder.layers[-1].weight.grad.abs().sum() > 0  # the zeroed layer still learns


def test_init_linear_path_checks_its_input():
    encoder = ConvEncoder((8, 8), linear_path=True)
    with pytest.raises(ValueError, match="components must have shape"):
        encoder.init_linear_path(torch.zeros(3, 64))
    with pytest.raises(ValueError, match="linear_path=False"):
        ConvEncoder((8, 8)).init_linear_path(torch.zeros(32, 64))


# ------------------------------------------------------------------ the tile-local linear path
def _tile_of_pixels(frame_shape, tile):
    """(H, W) arrays of the tile row and column of every pixel."""
    rows, cols = np.indices(frame_shape)
    return rows // tile, cols // tile


def _assert_local(jacobian, latent_shape, frame_shape, tile):
    """``jacobian[(c, i, j), (y, x)]`` is zero unless pixel (y, x) lies in tile (i, j)."""
    tile_row, tile_col = _tile_of_pixels(frame_shape, tile)
    jacobian = jacobian.reshape(*latent_shape, *frame_shape)
    for i in range(latent_shape[1]):
        for j in range(latent_shape[2]):
            outside = torch.from_numpy((tile_row != i) | (tile_col != j))
            assert jacobian[:, i, j][:, outside].abs().max() == 0
            assert jacobian[:, i, j][:, ~outside].abs().max() > 0


@pytest.mark.parametrize("frame_shape", [(8, 8), (10, 13)])
def test_local_linear_path_reads_and_writes_only_its_tile_even_after_training(frame_shape):
    """Latent (c, i, j) of the local path has zero gradient w.r.t. pixels outside tile (i, j)."""
    torch.manual_seed(0)
    encoder = ConvEncoder(frame_shape, linear_path="local", max_latent_side=3)
    decoder = ConvDecoder(frame_shape, linear_path="local", max_latent_side=3)
    assert encoder.tile == 2**encoder.n_layers
    for module in (encoder, decoder):
        torch.nn.init.normal_(module.tile_linear.weight)
    start = [module.tile_linear.weight.detach().clone() for module in (encoder, decoder)]
    frames = torch.randn(16, *frame_shape)
    optimiser = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=0.1)
    for _ in range(3):  # training cannot make the path global
        optimiser.zero_grad()
        (decoder(encoder(frames)) - frames).pow(2).mean().backward()
        optimiser.step()
    x = frames[:1]
    read = torch.autograd.functional.jacobian(lambda f: encoder.tile_linear(f)[0], x)
    _assert_local(read.reshape(encoder.n_latent, -1), encoder.latent_shape, frame_shape,
                  encoder.tile)
    z = torch.randn(1, decoder.n_latent)
    write = torch.autograd.functional.jacobian(lambda v: decoder.tile_linear(v)[0], z)
    _assert_local(write.reshape(-1, decoder.n_latent).T, decoder.latent_shape, frame_shape,
                  decoder.tile)
    # and the dense form agrees with the layer
    torch.testing.assert_close(encoder.tile_linear(frames),
                               frames.flatten(1) @ encoder.tile_linear.dense_weight().T)
    # weights on the zero padding get no gradient: training leaves them where they started
    height, width = frame_shape
    for module, weight_before in zip((encoder, decoder), start):
        weight = module.tile_linear.weight.detach()
        padded = torch.zeros(*module.padded_shape, dtype=torch.bool)
        padded[height:], padded[:, width:] = True, True
        blocks = padded.reshape(module.latent_shape[1], module.tile, module.latent_shape[2],
                                module.tile).permute(0, 2, 1, 3)
        assert not torch.equal(weight, weight_before)
        torch.testing.assert_close(weight[:, blocks], weight_before[:, blocks], rtol=0, atol=0)


def test_local_linear_path_initialised_from_tile_components_is_exactly_linear():
    torch.manual_seed(0)
    encoder = ConvEncoder((10, 13), linear_path="local", max_latent_side=3)
    decoder = ConvDecoder((10, 13), linear_path="local", max_latent_side=3)
    components = torch.randn(*encoder.latent_shape, encoder.tile, encoder.tile)
    encoder.init_linear_path(components)
    decoder.init_linear_path(components)
    dense = encoder.tile_linear.dense_weight()
    torch.testing.assert_close(dense, decoder.tile_linear.dense_weight())
    frames = torch.randn(5, 10, 13)
    z = encoder(frames)
    torch.testing.assert_close(z, frames.flatten(1) @ dense.T)
    torch.testing.assert_close(decoder(z), (z @ dense).unflatten(1, (10, 13)))
    with pytest.raises(ValueError, match="components must have shape"):
        encoder.init_linear_path(torch.zeros(encoder.n_latent, 130))


def test_linear_path_values():
    assert ConvEncoder((8, 8), linear_path=True).linear_path == "global"
    assert ConvEncoder((8, 8), linear_path="local").linear_path == "local"
    assert ConvEncoder((8, 8)).linear_path is False
    with pytest.raises(ValueError, match="linear_path"):
        ConvEncoder((8, 8), linear_path="tiles")
