#!/usr/bin/env python
"""NGF-vs-baseline experiment of the ``pix2pix_ngf`` bundle on 2-D paired PNG slices (e.g. the AANLIB dev subset).

For every value of ``--lambda-ngf`` (0 = the no-NGF baseline, ``configs/train_baseline.json``) the script trains
the bundle with the SAME data split, seed, network, batch size and number of epochs, then runs the bundle's
inference + evaluation on the validation split (used to choose lambda) and on the test split (reported), and
writes a table of MAE, PSNR, SSIM, MS-SSIM and bone Dice (mean +- std over slices, 8-bit mode) to
``<work>/results.json`` and ``<work>/results.md``. Training and inference are the bundle's own commands
(``python -m monai.bundle run ...``) run as subprocesses; nothing is reimplemented here.

Usage (from the repository root)::

    .venv/bin/python scripts/experiment_ngf.py --epochs 20 --lambda-ngf 0 10 100 --jobs 3 --learning-rate 0.001 \
        --work /tmp/pix2pix_ngf_experiment_nru0

Layout of ``--work``: ``datalist.json``, ``settings.json``, and per variant ``ngf<lambda>/`` with ``train.log``,
``models/`` (``model.pt`` = best validation MAE), ``runs/`` (TensorBoard, sample grids), ``eval_validation/`` and
``eval_test/`` (``<case>_sct.png``, ``metrics.csv``, ``summary.json``, ``figures/``). Rerunning with the same settings
reuses finished steps (a killed training resumes from its checkpoint); other settings need another ``--work``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "bundles" / "pix2pix_ngf" / "configs"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "aanlib_brain_ct_mr_dev"
METRICS = [  # (column title, key in summary.json)
    ("MAE", "synthrad2023_mae"),
    ("PSNR (dB)", "synthrad2023_psnr"),
    ("SSIM", "synthrad2023_ssim"),
    ("MS-SSIM", "synthrad2025_ms_ssim"),
    ("bone Dice", "bone_dice"),
]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="paired2d dataset (MRI/, CT/, manifest.csv)")
    p.add_argument("--work", type=Path, default=Path("/tmp/pix2pix_ngf_experiment"), help="output folder")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lambda-ngf", type=float, nargs="+", default=[0.0, 1.0, 10.0], help="0 = baseline")
    p.add_argument("--channels", type=int, nargs="+", default=[32, 64, 128, 256], help="UNet channels")
    p.add_argument("--strides", type=int, nargs="+", default=[2, 2, 2], help="UNet strides (len(channels) - 1)")
    p.add_argument("--res-units", type=int, default=0, help="UNet num_res_units (bundle default 0)")
    p.add_argument("--d-channels", type=int, default=32, help="discriminator channels of its first layer")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument(
        "--learning-rate", type=float, default=2e-4, help="Adam lr of G and D (bundle default 2e-4, for long runs)"
    )
    p.add_argument("--seed", type=int, default=0, help="training seed (monai set_determinism), same for all runs")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the subject split")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--jobs", type=int, default=1, help="variants trained at the same time")
    p.add_argument("--threads", type=int, default=1, help="OMP/torch threads per subprocess")
    args = p.parse_args(argv)
    if not args.data.is_dir():
        p.exit(2, f"error: {args.data}: dataset folder not found (give --data DIR with MRI/, CT/ and manifest.csv)\n")
    if len(args.strides) != len(args.channels) - 1:
        p.exit(2, f"error: --strides needs {len(args.channels) - 1} values for {len(args.channels)} channels\n")
    if args.epochs < 1 or args.jobs < 1 or args.threads < 1 or args.batch_size < 1:
        p.exit(2, "error: --epochs, --jobs, --threads and --batch-size must be >= 1\n")
    if not (args.learning_rate > 0 and math.isfinite(args.learning_rate)):
        p.exit(2, f"error: --learning-rate must be finite and > 0, got {args.learning_rate}\n")
    if any(lam < 0 or not math.isfinite(lam) for lam in args.lambda_ngf):
        p.exit(2, f"error: --lambda-ngf values must be finite and >= 0, got {args.lambda_ngf}\n")
    args.lambda_ngf = sorted(set(args.lambda_ngf))
    return args


def variant_name(lam: float) -> str:
    return f"ngf{lam:g}"


def run(cmd: list[str], log: Path, threads: int) -> float:
    """Run ``cmd`` from the repository root, output appended to ``log``; return the wall time in seconds."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.time()
    with open(log, "a", encoding="utf-8") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        result = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise RuntimeError(f"command failed (exit {result.returncode}), see {log}: {' '.join(cmd)}")
    return time.time() - start


def network_flags(args: argparse.Namespace) -> list[str]:
    return [
        "--network_def#channels", json.dumps(args.channels),
        "--network_def#strides", json.dumps(args.strides),
        "--network_def#num_res_units", str(args.res_units),
    ]  # fmt: skip


def train_and_evaluate(args: argparse.Namespace, lam: float, datalist: Path) -> dict:
    """Train one variant (unless already finished), then infer + evaluate validation and test splits."""
    out = args.work / variant_name(lam)
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    configs = [BUNDLE / "train.json", BUNDLE / "train_png2d.json"]
    if lam == 0:
        configs.append(BUNDLE / "train_baseline.json")  # the shipped baseline config (lambda_ngf = 0)
    done = out / "models" / "finished"
    result = {"variant": variant_name(lam), "lambda_ngf": lam}
    if not done.exists():
        seconds = run(
            [py, "-m", "monai.bundle", "run", "training", "--config_file", json.dumps([str(c) for c in configs]),
             "--bundle_root", str(out), "--ckpt_dir", str(out / "models"), "--output_dir", str(out / "runs"),
             "--datalist", str(datalist), "--epochs", str(args.epochs), "--val_interval", "1", "--num_workers", "0",
             "--seed", str(args.seed), "--batch_size", str(args.batch_size), "--lambda_ngf", str(lam),
             "--learning_rate", str(args.learning_rate),
             "--discriminator_def#channels", str(args.d_channels)] + network_flags(args),
            out / "train.log", args.threads,
        )  # fmt: skip
        done.write_text(f"{seconds:.1f}\n")
    result["train_seconds"] = float(done.read_text())
    result["val_mae_curve"] = [
        float(v) for v in re.findall(r"Metrics -- val_mae: ([0-9.eE+-]+)", read(out / "train.log"))
    ]
    for split in ("validation", "test"):
        eval_dir = out / f"eval_{split}"
        if not (eval_dir / "summary.json").exists():
            run(
                [py, "-m", "monai.bundle", "run", "--config_file",
                 json.dumps([str(BUNDLE / n) for n in ("inference.json", "inference_png2d.json", "evaluate.json")]),
                 "--bundle_root", str(out), "--datalist", str(datalist), "--split", split,
                 "--output_dir", str(eval_dir), "--ckpt_path", str(out / "models" / "model.pt")] + network_flags(args),
                out / f"eval_{split}.log", args.threads,
            )  # fmt: skip
        result[split] = json.loads((eval_dir / "summary.json").read_text())["metrics"]
    return result


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""


def make_datalist(args: argparse.Namespace) -> tuple[Path, dict]:
    datalist = args.work / "datalist.json"
    if not datalist.exists():
        run(
            [sys.executable, "-m", "custom", "datalist", "--root", str(args.data), "--layout", "paired2d",
             "--out", str(datalist), "--val-fraction", str(args.val_fraction), "--test-fraction",
             str(args.test_fraction), "--seed", str(args.split_seed)],
            args.work / "datalist.log", args.threads,
        )  # fmt: skip
    data = json.loads(datalist.read_text())
    split = {
        name: sorted({str(i["subject"]) for i in data[name]}, key=int_or_str)
        for name in ("training", "validation", "test")
    }
    counts = {name: len(data[name]) for name in split}
    if not counts["validation"] or not counts["test"]:
        sys.exit(f"error: {datalist}: empty validation or test split ({counts}); raise the fractions")
    return datalist, {"subjects": split, "slices": counts}


def int_or_str(text: str):
    return (0, int(text), "") if text.isdigit() else (1, 0, text)


def per_slice(work: Path, variant: str, split: str, key: str) -> dict[str, float]:
    """``case -> metric`` from a variant's ``eval_<split>/metrics.csv``."""
    with open(work / variant / f"eval_{split}" / "metrics.csv", newline="", encoding="utf-8") as f:
        return {row["case"]: float(row[key]) for row in csv.DictReader(f) if row.get(key) not in (None, "")}


def paired_differences(work: Path, results: list[dict], split: str = "test") -> list[dict]:
    """Per-slice paired difference of every variant to the baseline (lambda 0): mean, std, slices better.

    The same slices are scored for every variant, so the paired std is the relevant spread for a comparison; it says
    nothing about the run-to-run (seed) variation of training, which only repeated runs can measure.
    """
    base = next((r for r in results if r["lambda_ngf"] == 0), None)
    if base is None:
        return []
    rows = []
    for r in results:
        if r is base:
            continue
        row = {"variant": r["variant"], "lambda_ngf": r["lambda_ngf"]}
        for _, key in METRICS:
            a, b = per_slice(work, r["variant"], split, key), per_slice(work, base["variant"], split, key)
            diffs = [a[c] - b[c] for c in a if c in b and math.isfinite(a[c]) and math.isfinite(b[c])]
            if not diffs:
                continue
            mean = sum(diffs) / len(diffs)
            std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / max(1, len(diffs) - 1))
            better = sum(d < 0 for d in diffs) if key.endswith("mae") else sum(d > 0 for d in diffs)
            row[key] = {"mean": mean, "std": std, "n": len(diffs), "better": better}
        rows.append(row)
    return rows


def cell(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None:
        return "-"
    return f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def markdown(results: list[dict], split_info: dict, settings: dict, chosen: str, paired: list[dict]) -> str:
    lines = [
        "# pix2pix_ngf: NGF vs baseline",
        "",
        f"Settings: `{json.dumps(settings)}`",
        "",
        "Split (subjects): "
        + "; ".join(
            f"{k}: {', '.join(v)} ({split_info['slices'][k]} slices)" for k, v in split_info["subjects"].items()
        ),
        "",
        "Validation (used to choose lambda_NGF; model.pt = epoch of best validation MAE):",
        "",
        "| variant | λ_NGF | best epoch | val MAE | val PSNR (dB) | val SSIM | train min |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        curve = r["val_mae_curve"]
        best = 1 + min(range(len(curve)), key=curve.__getitem__) if curve else "-"
        v = r["validation"]
        lines.append(
            f"| {r['variant']} | {r['lambda_ngf']:g} | {best} | {cell(v['synthrad2023_mae'])} | "
            f"{cell(v['synthrad2023_psnr'])} | {cell(v['synthrad2023_ssim'])} | {r['train_seconds'] / 60:.1f} |"
        )
    lines += ["", "Test (mean ± std over test slices, 8-bit units):", ""]
    lines.append("| variant | λ_NGF | " + " | ".join(title for title, _ in METRICS) + " |")
    lines.append("|---|---|" + "---|" * len(METRICS))
    for r in results:
        lines.append(
            f"| {r['variant']} | {r['lambda_ngf']:g} | " + " | ".join(cell(r["test"].get(k)) for _, k in METRICS) + " |"
        )
    if paired:
        lines += [
            "",
            "Test, paired per-slice difference to the baseline (variant - baseline; mean ± std; "
            "slices where the variant is better / n):",
            "",
        ]
        lines.append("| variant | " + " | ".join(title for title, _ in METRICS) + " |")
        lines.append("|---|" + "---|" * len(METRICS))
        for row in paired:
            cells = [
                f"{row[k]['mean']:+.4f} ± {row[k]['std']:.4f} ({row[k]['better']}/{row[k]['n']})" if k in row else "-"
                for _, k in METRICS
            ]
            lines.append(f"| {row['variant']} | " + " | ".join(cells) + " |")
    lines += ["", f"Chosen by validation MAE: **{chosen}**", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    settings = {
        "data": str(args.data.resolve()), "epochs": args.epochs, "channels": args.channels, "strides": args.strides,
        "res_units": args.res_units, "d_channels": args.d_channels, "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "seed": args.seed, "split_seed": args.split_seed,
        "val_fraction": args.val_fraction, "test_fraction": args.test_fraction,
    }  # fmt: skip
    saved = args.work / "settings.json"
    if saved.exists() and json.loads(saved.read_text()) != settings:
        sys.exit(f"error: {args.work} holds an experiment with other settings ({saved}); use another --work")
    saved.write_text(json.dumps(settings, indent=2) + "\n")
    datalist, split_info = make_datalist(args)
    print(f"split by subject: {split_info}", flush=True)
    start = time.time()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [pool.submit(train_and_evaluate, args, lam, datalist) for lam in args.lambda_ngf]
        results = [f.result() for f in futures]
    chosen = min(results, key=lambda r: r["validation"]["synthrad2023_mae"]["mean"])["variant"]
    paired = paired_differences(args.work, results)
    report = {"settings": settings, "split": split_info, "wall_seconds": time.time() - start, "chosen": chosen,
              "results": results, "paired_test_differences_to_baseline": paired}  # fmt: skip
    (args.work / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(results, split_info, settings, chosen, paired)
    (args.work / "results.md").write_text(text)
    print(text)
    print(
        f"wall time of this invocation {report['wall_seconds'] / 60:.1f} min; "
        f"results in {args.work}/results.md and results.json"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
