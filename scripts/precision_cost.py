"""What inference in bf16 (or another ``--precision``) costs against fp32, on a trained model: per case, inside the
body mask, the mean, 99th percentile and maximum |ΔHU| between the two sCTs, and each one's MAE against the real CT.

    python scripts/precision_cost.py --bundle swin_pix2pix_3d --ckpt demo/swin_pix2pix_3d/models/model.pt \\
        --data demo/data --cases 1HD005 1HD006

Figures, not assertions (tests check a bound: tests/test_bundles.py).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from custom.inference import run_bundle_inference

ROOT = Path(__file__).resolve().parents[1]


def _volume(path: Path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj, dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="pix2pix_ngf")
    parser.add_argument("--ckpt", required=True, help="trained model.pt (its model.json beside it)")
    parser.add_argument("--data", required=True, help="folder of <case>/{mr,ct,mask}.nii.gz (e.g. demo/data)")
    parser.add_argument("--cases", nargs="+", required=True)
    parser.add_argument("--precision", default="bf16", help="compared with fp32")
    args = parser.parse_args()
    print(f"bundle {args.bundle}, model {args.ckpt}: {args.precision} vs fp32, inside the body mask")
    print("| case | mean abs dHU | p99 abs dHU | max abs dHU | MAE fp32 | MAE " + args.precision + " |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for case in args.cases:
            folder = Path(args.data) / case
            sct = {}
            for precision in ("fp32", args.precision):
                (written,) = run_bundle_inference(
                    ROOT / "bundles" / args.bundle,
                    ckpt=args.ckpt,
                    dataset_dir=str(folder / "mr.nii.gz"),
                    mask_file=str(folder / "mask.nii.gz"),
                    output_dir=str(Path(work) / precision),
                    precision=precision,
                )
                sct[precision] = _volume(Path(written))
            body = _volume(folder / "mask.nii.gz") > 0
            ct = _volume(folder / "ct.nii.gz")
            diff = np.abs(sct[args.precision] - sct["fp32"])[body]
            maes = [np.abs(sct[p] - ct)[body].mean() for p in ("fp32", args.precision)]
            print(
                f"| {case} | {diff.mean():.2f} | {np.percentile(diff, 99):.0f} | {diff.max():.0f} | {maes[0]:.2f} | "
                f"{maes[1]:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
