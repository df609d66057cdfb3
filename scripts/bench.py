"""``make bench [BUNDLE=pix2pix_ngf]``: speed and memory of a bundle on this machine, with its real network sizes.

Prints the CPU's vector ISA and bf16 support, then, side by side for fp32 and bf16 (the inference configs'
``precision``), all measured in the same run:
- the network alone: seconds per 3D MR volume (``--shape``, default 256 x 256 x 180) through the bundle's inferer, with
  the network as inference prepares it (bundles whose 2D network runs on whole slices, e.g. mask2ct_lung: per 2D
  input of the first two sizes); its FLOPs; the machine's measured 3x3-convolution peak; the time the FLOPs would take
  at that peak and its ratio to the measured time; the plain eager network (``network_def`` cast to the precision,
  NCHW, PyTorch's instance norm) and the prepared network's time against it in bf16; for bundles that crop to the
  body mask (``CropToMaskInferer``), also on the procedural head's mask box, as inference runs a case that has a mask;
- end to end (``python -m custom infer`` in a fresh process, imports and I/O included): one volume, and a folder of
  ``--folder`` volumes per volume, with peak memory; on procedural heads made once under ``--work``;
- the cost of ensembles and test-time augmentation: each added member, flip and shift against one model
  (``--ensemble-shape``);
- with ``--canonical <checkout>``: canonical pix2pix's ``unet_256`` generator on the same volume, one slice at a time;
- training (alone with ``--training-only``): seconds and CPU seconds per iteration at the bundle's training patch size
  (``patch_size``, or ``image_size``) and ``--batch`` (default: the bundle's ``batch_size``), generator +
  discriminator, all losses, for the plain eager bf16 and fp32 steps, the bundle's default step (its ``train.json``)
  and its quick recipe, each in a fresh process: their ratios, updates per CPU-minute, the step's FLOP rate beside
  the convolution peak, and peak memory;
- bf16 only where the CPU has it in hardware (AVX512/AMX; ``--emulated-bf16`` forces it): emulated, it is tens of
  times slower than fp32 and would take hours;
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

import numpy as np
import torch
from monai.bundle import ConfigParser
from monai.data.utils import dense_patch_slices
from monai.inferers import SliceInferer
from torch.utils.data import DataLoader

from custom.inferers import CropToMaskInferer, mask_bounding_box
from custom.networks import PRECISIONS, native_bf16

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


def conv_peak(dtype: torch.dtype, repeats: int = 3) -> float:
    """The machine's 3x3-convolution rate in GFLOP/s for ``dtype``: the best over a few layer shapes (channels-last,
    the layout the bundles infer in), best of ``repeats``. The hardware limit the networks are compared with."""
    best = 0.0
    with torch.inference_mode():
        for channels, size in ((64, 128), (128, 64), (256, 32)):
            conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(dtype=dtype, memory_format=torch.channels_last)
            x = torch.randn(8, channels, size, size, dtype=dtype).contiguous(memory_format=torch.channels_last)
            flops = 2 * 9 * channels * channels * size * size * 8
            conv(x)
            for _ in range(repeats):
                start = time.perf_counter()
                conv(x)
                best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def _parsed(configs: Path, overrides: dict | None = None) -> ConfigParser:
    from custom.bundles import flat_config

    parser = ConfigParser(flat_config(configs / "inference.json"))
    parser.update(overrides or {})
    return parser


def bench_network(
    configs: Path,
    shape: tuple[int, ...],
    precision: str,
    repeats: int,
    overrides: dict | None = None,
    mask: torch.Tensor | None = None,
    plain: bool = False,
):
    """Seconds per volume (best of ``repeats``) of the bundle's inferer and network (as inference prepares it, random
    weights), and the network's FLOPs per volume: torch's count for one window times the windows the inferer ran.
    ``mask`` (1, 1, *shape): a body mask handed to the inferer, as inference does for a case with one. ``plain``: the
    plain eager network instead (``network_def`` in eval mode cast to the precision, NCHW, PyTorch's instance norm)."""
    from torch.utils.flop_counter import FlopCounterMode

    parser = _parsed(configs, {**(overrides or {}), "precision": precision, "device": "$torch.device('cpu')"})
    if plain:
        dtype = PRECISIONS[precision]
        eager = parser.get_parsed_content("network_def").eval().to(dtype)

        def network(x: torch.Tensor) -> torch.Tensor:
            return eager(x.to(dtype)).float()

    else:  # as the config's inferer prepares the network it is handed
        network = parser.get_parsed_content("prepare_network")(parser.get_parsed_content("network"))
    # one model, as the bundle runs it (the config's "inferer" wraps it for ensembles and test-time flips)
    inferer = parser.get_parsed_content("model_inferer" if "model_inferer" in parser else "inferer")
    whole_slices = not isinstance(inferer, SliceInferer) and parser["network_def"].get("spatial_dims") == 2
    shape = tuple(shape[:2]) if whole_slices else tuple(shape)
    volume = torch.rand(1, 1, *shape) * 2 - 1
    windows: list[torch.Size] = []

    def counted(x: torch.Tensor) -> torch.Tensor:
        windows.append(x.shape)
        return network(x)

    with torch.inference_mode():
        inferer(volume if whole_slices else volume[..., : min(8, shape[-1])], network)  # warm-up, same window shapes
        seconds = float("inf")
        for _ in range(repeats):
            windows.clear()
            start = time.perf_counter()
            inferer(volume, counted, **({} if mask is None else {"mask": mask}))
            seconds = min(seconds, time.perf_counter() - start)
        with FlopCounterMode(display=False) as counter:
            network(torch.zeros(1, *windows[0][1:]))
    return seconds, counter.get_total_flops() * sum(w[0] for w in windows), shape, inferer


def ensemble_report(configs: Path, shape: tuple[int, int, int], repeats: int) -> None:
    """The cost of each added member and test-time augmentation: seconds per volume of ``shape`` through the bundle's
    ``model_inferer`` wrapped in :class:`custom.inferers.EnsembleInferer` (the configs' ``inferer``), with 1-4 members
    (random weights; the others copies) and with or without ``--tta flip`` / ``flip_shift`` and the uncertainty map,
    against the single model in the same run; bf16 where the CPU has it, else fp32. A shift pads the network's input
    by ``tta_shift`` on both sides of each axis it moves, so it costs more than a pass of the unpadded input."""
    from custom.inferers import EnsembleInferer

    precision = "bf16" if native_bf16("cpu") else "fp32"
    parser = _parsed(configs, {"precision": precision, "device": "$torch.device('cpu')"})
    network = parser.get_parsed_content("network")
    prepare = parser.get_parsed_content("prepare_network")
    model_inferer = parser.get_parsed_content("model_inferer")
    whole_slices = not isinstance(model_inferer, SliceInferer) and parser["network_def"].get("spatial_dims") == 2
    volume = torch.rand(1, 1, *(shape[:2] if whole_slices else shape)) * 2 - 1
    state = network.state_dict()
    settings = [
        ("1 model", 0, "none", False),
        ("2 members", 1, "none", False),
        ("1 model + flip", 0, "flip", False),
        ("2 members + flip + uncertainty", 1, "flip", True),
        ("4 members + flip + uncertainty", 3, "flip", True),
    ]
    spatial_dims = parser["network_def"].get("spatial_dims", 2)
    if spatial_dims == 2:
        settings += [("1 model + flip_shift", 0, "flip_shift", False),
                     ("2 members + flip_shift + uncertainty", 1, "flip_shift", True)]  # fmt: skip
    else:  # 3D: 8 shifts, each on a window padded by 2 * tta_shift per axis; one row keeps the bench short
        settings.append(("1 model + shift", 0, "shift", False))
    tta_shift = parser.get_parsed_content("tta_shift")
    print(f"ensembles and test-time augmentation ({precision}, volume {tuple(volume.shape[2:])}, best of {repeats}):")
    print("| setting | network passes per window | s per volume | x one model |")
    print("|---|---|---|---|")
    single = None
    with torch.inference_mode():
        for name, others, tta, uncertainty in settings:
            members = [state] * others
            inferer = EnsembleInferer(
                model_inferer,
                members,
                tta,
                tta_shift=tta_shift,
                spatial_dims=spatial_dims,
                uncertainty=uncertainty,
                prepare=prepare,
            )
            inferer(volume if whole_slices else volume[..., :2], network)  # warm-up, builds the members
            seconds = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                inferer(volume, network)
                seconds = min(seconds, time.perf_counter() - start)
            single = single or seconds
            passes = (others + 1) * len(inferer.augmentations)
            print(f"| {name} | {passes} | {seconds:.2f} | {seconds / single:.2f} |")


def bench_inference(configs: Path, shape: tuple[int, int, int], repeats: int, overrides: dict | None = None) -> float:
    """One line: seconds per volume (fp32) through the bundle's inferer; used by the sliding-window sweep."""
    seconds, _, shape, inferer = bench_network(configs, shape, "fp32", repeats, overrides)
    print(
        f"inference: {seconds:.2f} s per volume {shape} "
        f"(sw_batch_size {getattr(getattr(inferer, 'inferer', inferer), 'sw_batch_size', 1)}, "
        f"{torch.get_num_threads()} threads); peak RSS so far {peak_rss_mb():.0f} MB"
    )
    return seconds


def _bench_cases(work: Path, shape: tuple[int, int, int], cases: int) -> Path:
    """``cases`` procedural demo heads of ``shape`` at 1 mm under ``work`` (made once, then reused)."""
    data = work / f"heads_{'x'.join(map(str, shape))}"
    if not all((data / f"1HD{i:03d}" / "mr.nii.gz").is_file() for i in range(1, cases + 1)):
        from custom.demo.heads import make_demo_data

        print(f"making {cases} demo volumes {shape} in {data} (once) ...", flush=True)
        make_demo_data(str(data), cases=cases, shape=shape, spacing=(1.0, 1.0, 1.0))
    return data


# ``python -m custom ...`` that reports, at exit, its peak memory (VmHWM: ``ru_maxrss`` of a child would include the
# parent's peak, which survives fork and exec) and when its first network forward started (start-up time)
_REPORTING_CUSTOM = (
    "import time\n"
    "start = time.perf_counter()\n"
    "import atexit, runpy, sys\n"
    "first = []\n"
    "def report():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM:'):\n"
    "            sys.stderr.write(f'\\npeak_kb {line.split()[1]}\\n')\n"
    "    sys.stderr.write(f'first_forward_s {first[0] if first else float(\"nan\")}\\n')\n"
    "    sys.stderr.write(f'network_s {network[0]}\\n')\n"
    "atexit.register(report)\n"
    "def hook(module, args):\n"
    "    if not first:\n"
    "        first.append(time.perf_counter() - start)\n"
    "import torch\n"
    "torch.nn.modules.module.register_module_forward_pre_hook(hook)\n"
    "network = [0.0]\n"  # seconds in the evaluator's iterations: the network's passes, input to output
    "from monai.engines import SupervisedEvaluator\n"
    "iteration = SupervisedEvaluator._iteration\n"
    "def timed(*args, **kwargs):\n"
    "    begin = time.perf_counter()\n"
    "    try:\n"
    "        return iteration(*args, **kwargs)\n"
    "    finally:\n"
    "        network[0] += time.perf_counter() - begin\n"
    "SupervisedEvaluator._iteration = timed\n"
    "sys.argv = ['custom', *sys.argv[1:]]\n"
    "runpy.run_module('custom', run_name='__main__', alter_sys=True)\n"
)


def _import_seconds(module: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
    return time.perf_counter() - start


def bench_end_to_end(
    bundle: str, model: Path, inputs: Path, precision: str, out: Path
) -> tuple[float, float, float, float]:
    """Wall seconds, peak RSS (MB), seconds to the first network forward (start-up: imports, config, checks, first
    read) and seconds in the network's passes (the evaluator's iterations) of ``python -m custom infer`` in a fresh
    process: everything a user waits for, and the network's part of it in the same run."""
    import shutil

    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", _REPORTING_CUSTOM, "infer", str(ROOT / "bundles" / bundle), str(out)]
    command += ["--input", str(inputs), "--ckpt", str(model), "--precision", precision, "--device", "cpu"]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(command)} failed:\n{result.stderr}")
    report = dict(
        line.split()[:2] for line in result.stderr.splitlines() if line.startswith(("peak_kb ", "first_", "network_"))
    )
    return (
        seconds,
        float(report.get("peak_kb", "nan")) / 1024.0,
        float(report.get("first_forward_s", "nan")),
        float(report.get("network_s", "nan")),
    )


def bench_canonical(checkout: Path, shape: tuple[int, int, int], repeats: int) -> tuple[float, float]:
    """Seconds per volume and FLOPs of canonical pix2pix's generator (``unet_256``, its defaults: batch norm, dropout,
    64 filters), one slice at a time as its ``test.py`` runs it, fp32, network only."""
    from torch.utils.flop_counter import FlopCounterMode

    sys.path.insert(0, str(checkout))
    from models import networks  # the canonical repository's module

    net = networks.define_G(1, 1, 64, "unet_256", norm="batch", use_dropout=True).eval()
    slices = torch.rand(shape[2], 1, 1, shape[0], shape[1]) * 2 - 1
    with torch.inference_mode():
        with FlopCounterMode(display=False) as counter:
            net(slices[0])
        seconds = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for one in slices:
                net(one)
            seconds = min(seconds, time.perf_counter() - start)
    return seconds, counter.get_total_flops() * shape[2]


def inference_report(bundle: str, configs: Path, args: argparse.Namespace) -> None:
    """The side-by-side table of issue "fast inference": network only, the hardware limit, end to end (one volume,
    and a folder of volumes), peak memory, per precision; canonical pix2pix's generator when a checkout is given."""
    import tempfile

    precisions = ["fp32", "bf16"] if native_bf16("cpu") or args.emulated_bf16 else ["fp32"]
    if precisions == ["fp32"]:
        print("bf16: skipped, it is emulated on this CPU (--emulated-bf16 times it anyway)")
    peaks = {p: conv_peak(PRECISIONS[p]) for p in precisions}
    rows: dict[str, dict[str, str]] = {p: {} for p in precisions}
    eager: dict[str, float] = {}
    network_seconds: dict[str, float] = {}
    flops = 0.0
    for p in precisions:
        seconds, flops, shape, inferer = bench_network(configs, tuple(args.shape), p, args.repeats)
        limit = flops / (peaks[p] * 1e9)
        rows[p]["network only, s per volume"] = f"{seconds:.2f}"
        rows[p]["conv peak, GFLOP/s (measured)"] = f"{peaks[p]:.0f}"
        rows[p]["limit at conv peak, s"] = f"{limit:.2f}"
        rows[p]["ratio limit / network"] = f"{limit / seconds:.0%}"
        eager[p] = bench_network(configs, tuple(args.shape), p, args.repeats, plain=True)[0]
        rows[p]["plain eager network (NCHW, instance norm), s per volume"] = f"{eager[p]:.2f}"
        network_seconds[p] = seconds
    for p in precisions:  # against the plain eager network in bf16 (fp32 where bf16 is not timed), in this run
        rows[p]["network / plain eager bf16 network"] = f"{network_seconds[p] / eager.get('bf16', eager[p]):.2f}"
    windows = getattr(inferer, "inferer", inferer)  # the sliding window inside a CropToMaskInferer
    print(
        f"network: {flops / 1e12:.2f} TFLOP per volume {shape}; inferer {type(inferer).__name__} "
        f"(sw_batch_size {getattr(windows, 'sw_batch_size', 1)}, overlap {getattr(windows, 'overlap', '-')}); "
        f"{torch.get_num_threads()} threads"
    )
    if isinstance(inferer, CropToMaskInferer) and len(shape) == 3:  # a case with a body mask: the head's box only
        import nibabel as nib

        work = Path(args.work or Path(tempfile.gettempdir()) / "sct-bench")
        mask_file = _bench_cases(work, tuple(args.shape), args.folder) / "1HD001" / "mask.nii.gz"
        mask = torch.as_tensor(np.asarray(nib.load(mask_file).dataobj) > 0)[None, None].float()
        box = "x".join(str(b.stop - b.start) for b in mask_bounding_box(mask))
        for p in precisions:
            seconds, box_flops, _, _ = bench_network(configs, tuple(args.shape), p, args.repeats, mask=mask)
            rows[p][f"network only, head with its mask (box {box}), s per volume"] = f"{seconds:.2f}"
        print(f"with the head's mask, the network runs on its box {box}: {box_flops / 1e12:.2f} TFLOP")
    if args.end_to_end and len(shape) == 3:  # MR volumes in, sCT volumes out
        work = Path(args.work or Path(tempfile.gettempdir()) / "sct-bench")
        data = _bench_cases(work, tuple(args.shape), args.folder)
        model = work / f"{bundle}_random.pt"
        network_def = _parsed(configs).get_parsed_content("network_def")
        torch.save(network_def.state_dict(), model)  # random weights: speed does not depend on them
        floor = _import_seconds("monai")
        print(f"start-up floor: `import monai` alone takes {floor:.2f} s in a fresh process (it imports all of MONAI)")
        for p in precisions:
            one, memory, startup, _ = bench_end_to_end(bundle, model, data / "1HD001" / "mr.nii.gz", p, work / "out")
            folder, folder_memory, folder_startup, in_run = bench_end_to_end(bundle, model, data, p, work / "out")
            network = float(rows[p]["network only, s per volume"])
            rows[p]["end to end, one volume, s"] = f"{one:.2f}"
            rows[p]["of which start-up to the first slice, s"] = f"{startup:.2f}"
            rows[p][f"end to end, folder of {args.folder}, s per volume"] = f"{folder / args.folder:.2f}"
            rows[p]["folder per volume / network"] = f"{folder / args.folder / network:.2f}"
            # once the process runs: the start-up (imports, config, first read) is paid once per folder, not per volume
            steady = (folder - folder_startup) / args.folder
            rows[p]["folder per volume after the start-up, s (/ network)"] = f"{steady:.2f} ({steady / network:.2f})"
            # the same, against the network's passes in that very run (machine noise cancels): I/O and preprocessing
            in_run /= args.folder
            rows[p][
                "folder: network's passes in the run, s per volume (after start-up / it)"
            ] = f"{in_run:.2f} ({steady / in_run:.2f})"
            rows[p]["peak RSS, MB (one / folder)"] = f"{memory:.0f} / {folder_memory:.0f}"
    print("| | " + " | ".join(precisions) + " |")
    print("|---|" + "---|" * len(precisions))
    for name in rows[precisions[0]]:
        print(f"| {name} | " + " | ".join(rows[p][name] for p in precisions) + " |")
    if args.canonical:
        seconds, canonical_flops = bench_canonical(Path(args.canonical), tuple(args.shape), args.repeats)
        fastest = min(precisions, key=lambda p: float(rows[p]["network only, s per volume"]))
        ours = float(rows[fastest]["network only, s per volume"])
        print(
            f"canonical pix2pix unet_256 (fp32, one slice at a time, network only): {seconds:.2f} s per volume, "
            f"{canonical_flops / 1e12:.2f} TFLOP; ours in {fastest} is {seconds / ours:.1f}x faster"
        )
    else:
        print("canonical pix2pix: give --canonical <checkout of junyanz/pytorch-CycleGAN-and-pix2pix> to time it here")


def sliding_window_sweep(bundle: str, configs: Path, shape: tuple[int, int, int]) -> None:
    """Seconds and peak RSS per volume, varying ROI size, overlap and sw_batch_size one at a time."""
    parser = _parsed(configs)
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


def bench_training(configs: Path, batch: int | None, iterations: int, overrides: dict | None = None) -> dict:
    """One training step of the bundle (generator + discriminator, all losses) on random tensors of its training patch
    size: wall and CPU seconds per iteration after the first (start-up, compilation), the FLOPs of the first iteration
    (torch's count) and this process's peak RSS."""
    from ignite.engine import Events
    from torch.utils.flop_counter import FlopCounterMode

    from custom.bundles import flat_config

    parser = ConfigParser(flat_config(configs / "train.json"))
    parser.update(overrides or {})
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
    parser["train#trainer#train_data_loader"] = DataLoader(samples, batch_size=batch)
    parser["train#handlers"] = []
    parser["epochs"] = 1
    trainer = parser.get_parsed_content("train#trainer")
    marks = []
    counter = FlopCounterMode(display=False)  # around the first (untimed) iteration only
    trainer.add_event_handler(Events.ITERATION_STARTED(once=1), lambda engine: counter.__enter__())
    trainer.add_event_handler(Events.ITERATION_COMPLETED(once=1), lambda engine: counter.__exit__(None, None, None))
    trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda engine: marks.append((time.perf_counter(), time.process_time()))
    )
    started = time.perf_counter()
    trainer.run()
    first = marks[0][0] - started
    steps = [(b[0] - a[0], b[1] - a[1]) for a, b in zip(marks, marks[1:])]
    wall, cpu = min(steps)  # the best iteration: the least disturbed by the rest of the machine
    return {
        "batch": batch,
        "shape": list(shape),
        "precision": trainer.precision,
        "first_seconds": first,
        "seconds": wall,
        "cpu_seconds": cpu,
        "gflop": counter.get_total_flops() / 1e9,
        "peak_rss_mb": peak_rss_mb(),
    }


def machine_line() -> str:
    """The CPU features that decide the precision: its vector ISA and whether oneDNN has bf16 in hardware."""
    native = native_bf16("cpu")
    return (
        f"CPU {torch.backends.cpu.get_cpu_capability()}, bf16 {'native' if native else 'emulated (no AVX512/AMX)'}, "
        f"{torch.get_num_threads()} threads"
    )


# the plain step of the training-only report: eager NCHW, instance norm as PyTorch runs it, MONAI's losses as they are,
# PyTorch's default (unfused) Adam
PLAIN = {"channels_last": False, "gan#g_optimizer#fused": False, "gan#d_optimizer#fused": False}
# our exact, cheaper forms of MONAI losses, and the MONAI loss each replaces (same arguments)
PLAIN_LOSSES = {"custom.losses.SeparableSSIMLoss": "monai.losses.SSIMLoss"}


def plain_overrides(configs: Path) -> dict:
    """:data:`PLAIN`, and every generator loss of the bundle's ``train.json`` that is one of our cheaper exact forms
    given back as the MONAI loss it replaces."""
    from custom.bundles import flat_config

    overrides = dict(PLAIN)
    losses = ConfigParser(flat_config(configs / "train.json")).get("generator_losses")
    for name, term in (losses if isinstance(losses, dict) else {}).items():
        loss = term.get("loss") if isinstance(term, dict) else None
        for ours, monai in PLAIN_LOSSES.items():
            if isinstance(loss, str) and ours in loss:
                overrides[f"generator_losses#{name}#loss"] = loss.replace(ours, monai)
    return overrides


def training_report(bundle: str, args: argparse.Namespace) -> None:
    """``--training-only``: for the bundle's default recipe (``train.json``) and its quick recipe (``+
    train_quick.json``, where it has one), the plain eager step (NCHW, PyTorch's instance norm, MONAI's SSIM loss) and
    the bundle's step (``channels_last``: see :func:`custom.networks.for_training`; its SSIM loss with a separable
    window, :class:`custom.losses.SeparableSSIMLoss`), in bf16 (where the CPU has it) and in fp32, and the
    recipe as configured; each in a fresh process (so its peak memory is its own), one after the other in one run:
    seconds and CPU seconds per iteration, updates per CPU-minute, the rate of the step's FLOPs beside the machine's
    convolution peak, the first iteration and peak memory, and the ratio of the bundle's step to the plain one.
    Emulated bf16 (a CPU without AVX512/AMX: tens of times slower) is skipped unless ``--emulated-bf16``."""
    configs = ROOT / "bundles" / bundle / "configs"
    precisions = ["bf16", "fp32"]
    if not (native_bf16("cpu") or args.emulated_bf16):
        precisions.remove("bf16")
        print("bf16: skipped, bf16 is emulated on this CPU (--emulated-bf16 times it anyway)")
    recipes = {"default": {}}
    if (configs / "train_quick.json").is_file():
        recipes["quick"] = ConfigParser.load_config_file(str(configs / "train_quick.json"))
    steps = {}
    plain = plain_overrides(configs)
    for recipe, overrides in recipes.items():
        for precision in precisions:
            steps[f"{recipe}, plain eager {precision}"] = {**overrides, "precision": precision, **plain}
            fast = {**overrides, "precision": precision, "channels_last": True}
            steps[f"{recipe}, channels-last step {precision}"] = fast
        steps[f"{recipe}, as configured"] = overrides
    results = {}
    for name, overrides in steps.items():
        command = [sys.executable, __file__, "--bundle", bundle, "--iterations", str(args.iterations)]
        command += ["--one-training", json.dumps(overrides)] + (["--batch", str(args.batch)] if args.batch else [])
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results[name] = json.loads(done.stdout.splitlines()[-1])
    peaks = {p: conv_peak(PRECISIONS[p]) for p in {r["precision"] for r in results.values()}}
    print(f"training step (G + D, all losses), {machine_line()}:")
    print("| recipe, step | batch, patch | precision | s per iteration | CPU s per iteration | updates per CPU-minute "
          "| GFLOP per iteration | GFLOP/s / conv peak | first iteration s | peak RSS MB |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        rate = r["gflop"] / r["seconds"]
        print(
            f"| {name} | {r['batch']} x {'x'.join(map(str, r['shape']))} | {r['precision']} | {r['seconds']:.3f} | "
            f"{r['cpu_seconds']:.3f} | {60 / r['cpu_seconds']:.1f} | {r['gflop']:.0f} | "
            f"{rate:.0f} / {peaks[r['precision']]:.0f} ({rate / peaks[r['precision']]:.0%}) | "
            f"{r['first_seconds']:.1f} | {r['peak_rss_mb']:.0f} |"
        )
    for recipe in recipes:
        for precision in precisions:
            plain = results[f"{recipe}, plain eager {precision}"]
            ratio = plain["seconds"] / results[f"{recipe}, channels-last step {precision}"]["seconds"]
            print(f"{recipe} recipe, {precision}: channels-last step {ratio:.2f}x the plain eager step's iterations/s")
        if "bf16" in precisions:
            ours, plain = results[f"{recipe}, as configured"], results[f"{recipe}, plain eager bf16"]
            print(f"{recipe} recipe as configured ({ours['precision']}): {plain['seconds'] / ours['seconds']:.2f}x the "
                  "plain eager bf16 step's iterations per second", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="pix2pix_ngf", help="bundle folder name under bundles/")
    parser.add_argument("--shape", type=int, nargs=3, default=(256, 256, 180))
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of the network (the best is kept)")
    parser.add_argument("--folder", type=int, default=4, help="volumes in the end-to-end folder run")
    parser.add_argument("--no-end-to-end", dest="end_to_end", action="store_false", help="network figures only")
    parser.add_argument("--work", default=None, help="folder for the generated volumes (default: <tmp>/sct-bench)")
    parser.add_argument("--canonical", default=None, help="checkout of junyanz/pytorch-CycleGAN-and-pix2pix to time")
    parser.add_argument("--skip-training", action="store_true", help="inference figures only")
    parser.add_argument("--batch", type=int, default=None, help="training batch (default: the bundle's batch_size)")
    parser.add_argument("--iterations", type=int, default=8, help="training iterations (best after the 1st)")
    parser.add_argument("--sweep-shape", type=int, nargs=3, default=(128, 128, 96))
    parser.add_argument("--training-only", action="store_true", help="training step figures only")
    parser.add_argument("--emulated-bf16", action="store_true", help="time bf16 on a CPU that emulates it")
    parser.add_argument("--ensemble-shape", type=int, nargs=3, default=(256, 256, 32), help="ensemble table's volume")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: one sweep setting (JSON)
    parser.add_argument("--one-training", default=None, help=argparse.SUPPRESS)  # internal: one training step (JSON)
    args = parser.parse_args()
    configs = ROOT / "bundles" / args.bundle / "configs"
    if args.one_training is not None:
        print(json.dumps(bench_training(configs, args.batch, args.iterations, json.loads(args.one_training))))
        return
    if args.one is not None:
        seconds = bench_inference(configs, tuple(args.shape), args.repeats, json.loads(args.one))
        print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_rss_mb()}))
        return
    print(f"torch {torch.__version__}, device cpu: {machine_line()}")
    print(f"bundle {args.bundle}")
    if args.training_only:
        training_report(args.bundle, args)
        return
    inference_report(args.bundle, configs, args)
    if "model_inferer" in ConfigParser.load_config_file(str(configs / "inference.json")):
        ensemble_report(configs, tuple(args.ensemble_shape), args.repeats)
    if not args.skip_training:
        training_report(args.bundle, args)
    inference = ConfigParser.load_config_file(str(configs / "inference.json"))
    if "sw_overlap" in inference:  # a sliding-window bundle (swin_pix2pix_3d)
        sliding_window_sweep(args.bundle, configs, tuple(args.sweep_shape))


if __name__ == "__main__":
    main()
