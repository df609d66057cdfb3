"""``make bench [BUNDLE=pix2pix_ngf]``: speed and memory of a bundle on this machine, with its real network sizes.

Prints:
- inference: seconds per 3D MR volume (256 x 256 x 180) through the bundle's inferer, and peak memory (bundles whose
  2D network runs on whole slices, e.g. mask2ct_lung: per 2D input of the first two sizes, 256 x 256);
- training: seconds per iteration at the bundle's training patch size (``patch_size``, or ``image_size``) and
  ``--batch`` (default: the bundle's ``batch_size``); generator + discriminator, all losses;
- for bundles with a sliding-window inferer (swin_pix2pix_3d): how time and peak memory grow with the ROI size, the
  overlap and ``sw_batch_size``, one factor at a time from the bundle's defaults, each in a fresh process (so its
  peak memory is its own), on a ``--sweep-shape`` volume.

Figures, not assertions: run it on the machine you care about.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
from monai.bundle import ConfigParser
from monai.data.utils import dense_patch_slices
from monai.inferers import SliceInferer
from torch.utils.data import DataLoader

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """Peak resident memory of this process. Linux's ``VmHWM`` starts afresh in a new program, whereas ``ru_maxrss``
    keeps the peak of the parent that started it (it survives fork and exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_inference(configs: Path, shape: tuple[int, int, int], repeats: int, overrides: dict | None = None) -> float:
    parser = ConfigParser()
    parser.read_config(str(configs / "inference.json"))
    parser.update(overrides or {})
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
    return seconds


def sliding_window_sweep(bundle: str, configs: Path, shape: tuple[int, int, int]) -> None:
    """Seconds and peak RSS per volume, varying ROI size, overlap and sw_batch_size one at a time."""
    parser = ConfigParser()
    parser.read_config(str(configs / "inference.json"))
    roi, overlap, batch = parser["patch_size"], parser["sw_overlap"], parser["sw_batch_size"]
    settings = [{}]
    # SwinUNETR needs multiples of 32, and more than 32 (its bottleneck must exceed one voxel for instance norm)
    settings += [{"patch_size": [r] * len(roi)} for r in (roi[0] + 32, 2 * roi[0]) if r != roi[0]]
    settings += [{"sw_overlap": o} for o in (0.25, 0.75) if o != overlap]
    settings += [{"sw_batch_size": b} for b in (1, 4) if b != batch]
    print(
        f"sliding window on a {shape} volume, one setting per process (defaults: ROI {roi}, overlap {overlap}, "
        f"sw_batch_size {batch}):"
    )
    print("| ROI | overlap | sw_batch_size | windows | s per volume | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for setting in settings:
        command = [
            sys.executable,
            __file__,
            "--bundle",
            bundle,
            "--shape",
            *map(str, shape),
            "--one",
            json.dumps(setting),
        ]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
        r, o = setting.get("patch_size", roi), setting.get("sw_overlap", overlap)
        # the windows SlidingWindowInferer visits (its scan interval: ROI x (1 - overlap), at least 1)
        windows = len(dense_patch_slices(shape, r, [max(1, int(w * (1 - o))) for w in r]))
        print(
            f"| {r[0]} | {o} | {setting.get('sw_batch_size', batch)} | {windows} | {result['seconds']:.1f} | "
            f"{result['peak_rss_mb']:.0f} |",
            flush=True,
        )


def bench_training(configs: Path, batch: int | None, iterations: int) -> None:
    parser = ConfigParser()
    parser.read_config(str(configs / "train.json"))
    shape = tuple(parser.get("patch_size") or parser.get("image_size"))
    batch = batch or parser.get_parsed_content("batch_size")
    samples = [
        {
            "image": torch.rand(1, *shape) * 2 - 1,
            "label": torch.rand(1, *shape) * 2 - 1,
            "mask": torch.ones(1, *shape),
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
        f"training: {per_iteration:.2f} s per iteration (batch {batch}, {'x'.join(map(str, shape))}, G+D, all losses); "
        f"peak RSS {peak_rss_mb():.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="pix2pix_ngf", help="bundle folder name under bundles/")
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 180))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: the bundle's batch_size)")
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--sweep-shape", type=int, nargs=3, default=(128, 128, 96))
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one sweep setting (JSON)
    args = parser.parse_args()
    configs = ROOT / "bundles" / args.bundle / "configs"
    if args.one is not None:
        seconds = bench_inference(configs, tuple(args.shape), args.repeats, json.loads(args.one))
        print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device cpu")
    print(f"bundle {args.bundle}")
    bench_inference(configs, tuple(args.shape), args.repeats)
    bench_training(configs, args.batch, args.iterations)
    inference = ConfigParser.load_config_file(str(configs / "inference.json"))
    if inference.get("inferer", {}).get("_target_") in ("SlidingWindowInferer", "monai.inferers.SlidingWindowInferer"):
        sliding_window_sweep(args.bundle, configs, tuple(args.sweep_shape))


if __name__ == "__main__":
    main()
