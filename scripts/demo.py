"""``make demo``: the whole pix2pix_ngf pipeline on the built-in procedural head data, in minutes on a CPU.

1. makes the demo data (``python -m custom demo-data``) and a subject-split datalist (``python -m custom datalist``);
2. checks it (``python -m custom check``);
3. trains pix2pix_ngf briefly (``python -m monai.bundle run training`` with ``configs/demo.json``: a small network);
4. runs inference and evaluation on the test case (``configs/inference.json`` + ``configs/evaluate.json``);
5. prints the metrics table and where the sCTs, figures and training samples are.

Everything goes under ``--out`` (default ``demo/``); the bundle folder is not written to.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "bundles" / "pix2pix_ngf"


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="demo", help="output folder (relative to the repository)")
    parser.add_argument("--epochs", type=int, default=300, help="training epochs (2 iterations of 8 slices each)")
    parser.add_argument("--cases", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = (ROOT / args.out).resolve()
    data, datalist, work = out / "data", out / "datalist.json", out / "pix2pix_ngf"
    configs = BUNDLE / "configs"
    start = time.time()

    run("-m", "custom", "demo-data", "--out", str(data), "--cases", str(args.cases), "--seed", str(args.seed))
    run(
        "-m",
        "custom",
        "datalist",
        "--root",
        str(data),
        "--layout",
        "synthrad2023",
        "--out",
        str(datalist),
        "--val-fraction",
        "0.2",
        "--test-fraction",
        "0.2",
        "--seed",
        str(args.seed),
    )
    run("-m", "custom", "check", "--datalist", str(datalist))

    common = ["--bundle_root", str(BUNDLE), "--datalist", str(datalist)]
    # demo.json holds the small network (shared with inference); the rest is a short, fast training schedule
    train = [
        "-m",
        "monai.bundle",
        "run",
        "training",
        "--config_file",
        str([str(configs / "train.json"), str(configs / "demo.json")]),
        "--meta_file",
        str(configs / "metadata.json"),
        "--logging_file",
        str(configs / "logging.conf"),
        *common,
        "--ckpt_dir",
        str(work / "models"),
        "--output_dir",
        str(work / "runs"),
        "--resume",
        "False",
        "--discriminator_def#channels",
        "16",
        "--samples_per_volume",
        "4",
        "--batch_size",
        "2",
        "--num_workers",
        "0",
        "--learning_rate",
        "0.001",
        "--epochs",
        str(args.epochs),
        "--val_interval",
        "25",
    ]
    run(*train)
    run(
        "-m",
        "monai.bundle",
        "run",
        "inference",
        "--config_file",
        str([str(configs / f) for f in ("inference.json", "demo.json", "evaluate.json")]),
        "--meta_file",
        str(configs / "metadata.json"),
        "--logging_file",
        str(configs / "logging.conf"),
        *common,
        "--ckpt_path",
        str(work / "models" / "model.pt"),
        "--output_dir",
        str(work / "eval"),
    )

    summary = json.loads((work / "eval" / "summary.json").read_text())
    from custom.handlers.evaluation import format_summary

    print("\n=== pix2pix_ngf demo: test-set metrics (SynthRAD protocols, inside the body mask) ===")
    print(format_summary(summary["metrics"]))
    print(f"\nsynthetic CTs (int16 HU, on the MR grid): {sorted(str(p) for p in (work / 'eval').glob('*_sct.nii.gz'))}")
    print(f"per-case metrics:   {work / 'eval' / 'metrics.csv'}")
    print(f"summary:            {work / 'eval' / 'summary.json'}")
    print(f"figures:            {work / 'eval' / 'figures'}")
    print(f"training samples:   {work / 'runs' / 'samples'}")
    print(f"model:              {work / 'models' / 'model.pt'}")
    print(f"TensorBoard logs:   {work / 'runs'}")
    print(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
