"""Training-step time of the networks as skvarae runs them, against the plain layer-by-layer form.

Baseline: the same encoder and decoder weights evaluated the straightforward way, which is how
``skvarae.network`` ran before: activations in PyTorch's default (NCHW) memory layout, and each
decoder block upsampling by pixel repetition (``expand`` + ``reshape``) before a 3 x 3
convolution at the output resolution. Candidate: the modules' own ``forward``, with
channels-last activations and the decoder's :class:`skvarae.network.UpsampleConv2d` (the same
upsample-then-convolve, computed as one stride-2 transposed convolution). Both run in this
process, alternating, on training steps (``sequence_loss`` forward and backward) of the
default network. The decoded frames of both are compared too (they agree to float32
rounding: the last column is the largest difference relative to the largest value).

    python benchmarks/bench_network.py                 # 64x64 and 128x128 (d = 32 and 128)
    python benchmarks/bench_network.py --threads 1 --repeats 5
"""

import argparse
import statistics
import time

import torch
from torch import nn

from skvarae.network import ConvDecoder, ConvEncoder
from skvarae.training import sequence_loss


def _upsample_by_repetition(images):
    n, c, height, width = images.shape
    return (
        images[:, :, :, None, :, None]
        .expand(n, c, height, 2, width, 2)
        .reshape(n, c, 2 * height, 2 * width)
    )


class PlainEncoder(nn.Module):
    """``encoder`` evaluated layer by layer in the NCHW layout (the baseline)."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, frames):
        encoder = self.encoder
        height, width = encoder.frame_shape
        images = nn.functional.pad(
            frames[:, None],
            (0, encoder.padded_shape[1] - width, 0, encoder.padded_shape[0] - height),
            mode="replicate",
        )
        for layer in encoder.layers:
            images = layer(images.contiguous())
        latents = images.flatten(start_dim=1)
        return latents + encoder._linear(frames) if encoder.linear_path else latents


class PlainDecoder(nn.Module):
    """``decoder`` evaluated layer by layer in the NCHW layout, upsampling by repetition."""

    def __init__(self, decoder):
        super().__init__()
        self.decoder = decoder

    def forward(self, latents):
        decoder = self.decoder
        images = decoder.stem(latents.reshape(latents.shape[0], *decoder.latent_shape))
        for convolution, activation in decoder.blocks:
            images = _upsample_by_repetition(images.contiguous())
            images = activation(nn.functional.conv2d(
                images, convolution.weight, convolution.bias, padding=convolution.padding
            ))
        height, width = decoder.frame_shape
        frames = decoder.head(images.contiguous())[:, 0, :height, :width]
        return frames + decoder._linear(latents) if decoder.linear_path else frames


def step_seconds(encoder, decoder, frames, training):
    start = time.perf_counter()
    loss = sequence_loss(encoder, decoder, frames, alpha=0.01, lags=1, training=training)["loss"]
    loss.backward()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} "
          "training steps (forward + backward) of 4 windows x 64 frames, default network "
          "(local linear path), alternating baseline and candidate")
    print("| frames | d | training | plain NCHW (s/step) | skvarae (s/step) | speed-up |"
          " output difference |")
    print("|---|---|---|---|---|---|---|")
    for side, max_latent_side in ((64, 4), (128, 4), (128, 8)):
        torch.manual_seed(0)
        encoder = ConvEncoder((side, side), max_latent_side=max_latent_side, linear_path="local")
        decoder = ConvDecoder((side, side), max_latent_side=max_latent_side, linear_path="local")
        for parameter in [*encoder.parameters(), *decoder.parameters()]:
            nn.init.normal_(parameter, std=0.05)
        plain = PlainEncoder(encoder), PlainDecoder(decoder)
        frames = torch.randn(4, 64, side, side)
        with torch.no_grad():
            output = decoder(encoder(frames[0]))
            difference = (output - plain[1](plain[0](frames[0]))).abs().max() / output.abs().max()
        for training in ("two_stage", "end_to_end"):
            step_seconds(encoder, decoder, frames, training)  # warm-up
            step_seconds(*plain, frames, training)
            times = {"plain": [], "skvarae": []}
            for _ in range(args.repeats):
                times["plain"].append(step_seconds(*plain, frames, training))
                times["skvarae"].append(step_seconds(encoder, decoder, frames, training))
            baseline, candidate = (statistics.median(times[k]) for k in ("plain", "skvarae"))
            print(f"| {side}x{side} | {encoder.n_latent} | {training} | {baseline:.2f} |"
                  f" {candidate:.2f} | {baseline / candidate:.2f}x |"
                  f" {difference:.1e} |", flush=True)


if __name__ == "__main__":
    main()
