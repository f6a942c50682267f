"""Training-step time with the decoder's hand-written upsampling backward, against autograd's.

Baseline: nearest-neighbour 2x upsampling written with ``expand`` and ``reshape`` and
differentiated by autograd (a reduction over the expanded dimensions), which is what
``skvarae.network`` used before. Candidate: ``skvarae.network._upsample_nearest2x``, the same
forward with the backward written as two additions of strided views (bit-for-bit the same
gradients on the CPU; see tests/test_network.py). Both run in this process, alternating, on an
end-to-end training step (``sequence_loss`` forward and backward) of the default network.

    python benchmarks/bench_upsample.py              # 32x32 and 64x64 frames
    python benchmarks/bench_upsample.py --threads 1
"""

import argparse
import statistics
import time

import torch

from skvarae import network
from skvarae.network import ConvDecoder, ConvEncoder
from skvarae.training import sequence_loss


def upsample_by_expand(images):
    """The baseline: expand + reshape, backward by autograd."""
    n, c, height, width = images.shape
    return (
        images[:, :, :, None, :, None]
        .expand(n, c, height, 2, width, 2)
        .reshape(n, c, 2 * height, 2 * width)
    )


def step_seconds(upsample, side, batch, frames, repeats):
    original = network._upsample_nearest2x
    network._upsample_nearest2x = upsample
    try:
        torch.manual_seed(0)
        encoder, decoder = ConvEncoder((side, side)), ConvDecoder((side, side))
        x = torch.randn(batch, frames, side, side)

        def step():
            sequence_loss(encoder, decoder, x, alpha=0.01, lags=1)["loss"].backward()

        step()  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return statistics.median(times)
    finally:
        network._upsample_nearest2x = original


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} "
          "end-to-end training steps (forward + backward), default network")
    print("| frames | batch x window | autograd expand (s/step) | skvarae (s/step) | speed-up |")
    print("|---|---|---|---|---|")
    for side, batch, frames in ((32, 8, 128), (64, 2, 128), (128, 1, 64)):
        baseline = step_seconds(upsample_by_expand, side, batch, frames, args.repeats)
        candidate = step_seconds(network._upsample_nearest2x, side, batch, frames, args.repeats)
        print(f"| {side}x{side} | {batch} x {frames} | {baseline:.3f} | {candidate:.3f} |"
              f" {baseline / candidate:.2f}x |")


if __name__ == "__main__":
    main()
