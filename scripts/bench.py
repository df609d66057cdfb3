"""``make bench [BUNDLE=pix2pix_ngf]``: speed and memory of a bundle on this machine, with its real network sizes.

Prints:
- inference: seconds per 3D MR volume (256 x 256 x 180) through the bundle's inferer, and peak memory (bundles whose
  2D network runs on whole slices, e.g. mask2ct_lung: per 2D input of the first two sizes, 256 x 256);
- training: seconds per iteration at batch 4 of 256 x 256 slices (2D bundles; generator + discriminator, all losses).

Figures, not assertions: run it on the machine you care about.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.inferers import SliceInferer
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_inference(configs: Path, shape: tuple[int, int, int], repeats: int) -> None:
    parser = ConfigParser()
    parser.read_config(str(configs / "inference.json"))
    network = parser.get_parsed_content("network").eval()
    inferer = parser.get_parsed_content("inferer")
    whole_slices = not isinstance(inferer, SliceInferer) and parser["network_def"].get("spatial_dims") == 2
    shape = tuple(shape[:2]) if whole_slices else shape
    volume = torch.rand(1, 1, *shape) * 2 - 1
    with torch.no_grad():
        inferer(volume if whole_slices else volume[..., :8], network)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            inferer(volume, network)
        seconds = (time.perf_counter() - start) / repeats
    print(
        f"inference: {seconds:.2f} s per {'slice' if whole_slices else 'volume'} {shape} "
        f"(sw_batch_size {getattr(inferer, 'sw_batch_size', 1)}, "
        f"{torch.get_num_threads()} threads); peak RSS so far {peak_rss_mb():.0f} MB"
    )


def bench_training(configs: Path, batch: int, size: int, iterations: int) -> None:
    parser = ConfigParser()
    parser.read_config(str(configs / "train.json"))
    samples = [
        {
            "image": torch.rand(1, size, size) * 2 - 1,
            "label": torch.rand(1, size, size) * 2 - 1,
            "mask": torch.ones(1, size, size),
        }
        for _ in range(batch * (iterations + 1))
    ]
    parser["train#dataloader"] = DataLoader(samples, batch_size=batch)
    parser["train#handlers"] = []
    parser["epochs"] = 1
    trainer = parser.get_parsed_content("train#trainer")
    times = []

    def timed(engine):
        times.append(time.perf_counter())

    from ignite.engine import Events

    trainer.add_event_handler(Events.ITERATION_COMPLETED, timed)
    trainer.run()
    per_iteration = (times[-1] - times[0]) / (len(times) - 1)
    print(
        f"training: {per_iteration:.2f} s per iteration (batch {batch}, {size}x{size}, G+D, all losses); "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="pix2pix_ngf", help="bundle folder name under bundles/")
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 180))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    configs = ROOT / "bundles" / args.bundle / "configs"
    print(f"bundle {args.bundle}")
    bench_inference(configs, tuple(args.shape), args.repeats)
    bench_training(configs, args.batch, args.size, args.iterations)


if __name__ == "__main__":
    main()
