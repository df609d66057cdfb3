"""``make demo [BUNDLE=pix2pix_ngf]``: a bundle's whole pipeline on built-in procedural data, in minutes on a CPU.

1. makes the demo data and a subject-split datalist (``python -m custom datalist``): the procedural head volumes
   (``python -m custom demo-data``, layout synthrad2023) unless the bundle's ``configs/demo.json`` has a ``"demo"``
   entry choosing other data (see ``DEMO_DEFAULTS``; e.g. mask2ct_lung: ``demo-lung-data``, layout lidc_mask2ct);
2. checks it (``python -m custom check``);
3. trains the bundle briefly (``python -m monai.bundle run training`` with the bundle's ``configs/demo.json``: a small
   network and a short schedule);
4. runs inference and evaluation on the test case with the trained model (``python -m custom infer`` with
   ``configs/evaluate.json``: the model's own ``model.json`` gives its network, no config needed);
5. for volumes in HU, evaluates the test sCTs dosimetrically (``python -m custom dose-eval``: a photon and a proton
   plan made on the CT, recomputed on the sCT; dose differences, D98 / D50 / D2, gamma, proton range differences);
6. prints the metrics table and where the sCTs, figures, dose reports and training samples are.

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

# the "demo" entry of a bundle's configs/demo.json (inert in the training config it is merged into), key by key:
DEMO_DEFAULTS = {
    "data": None,  # the `python -m custom` command making the data, --out and --seed added (None: demo-data --cases)
    "data_dir": "data",  # where under --out the data go
    "datalist": "datalist.json",  # the datalist file under --out
    "layout": "synthrad2023",
    "split": ["--val_fraction", "0.2", "--test_fraction", "0.2"],  # `python -m custom datalist` split arguments
    "metrics": "SynthRAD protocols, inside the body mask",  # what the printed metrics are
    "outputs": "int16 HU, on the MR grid",  # what the predictions are
    "dose": True,  # dose-eval on the test sCTs (volumes in HU only)
}


def run(*args: str) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run([sys.executable, *args], cwd=ROOT, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="pix2pix_ngf", help="bundle folder name under bundles/")
    parser.add_argument("--out", default="demo", help="output folder (relative to the repository)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the bundle's demo.json)")
    parser.add_argument("--cases", type=int, default=6, help="cases of the head demo data (demo-data)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    bundle = ROOT / "bundles" / args.bundle
    configs = bundle / "configs"
    if not (configs / "demo.json").is_file():
        sys.exit(f"error: {configs / 'demo.json'}: not found (is {args.bundle!r} a bundle with a demo?)")
    demo = {**DEMO_DEFAULTS, **json.loads((configs / "demo.json").read_text()).get("demo", {})}
    demo["data"] = demo["data"] or ["demo-data", "--cases", str(args.cases)]
    out = (ROOT / args.out).resolve()
    data, datalist, work = out / demo["data_dir"], out / demo["datalist"], out / args.bundle
    start = time.time()

    run("-m", "custom", *demo["data"], "--out", str(data), "--seed", str(args.seed))
    split = [*demo["split"], "--seed", str(args.seed)]
    run("-m", "custom", "datalist", "--root", str(data), "--layout", demo["layout"], "--out", str(datalist), *split)
    run("-m", "custom", "check", "--datalist", str(datalist))

    train = [
        *("-m", "monai.bundle", "run", "training"),
        *("--config_file", str([str(configs / "train.json"), str(configs / "demo.json")])),
        *("--meta_file", str(configs / "metadata.json"), "--logging_file", str(configs / "logging.conf")),
        *("--bundle_root", str(bundle), "--datalist", str(datalist), "--resume", "False"),
        *("--ckpt_dir", str(work / "models"), "--output_dir", str(work / "runs")),
    ]
    run(*train, *(["--epochs", str(args.epochs)] if args.epochs else []))
    model = work / "models" / "model.pt"
    evaluate = ["--config", str(configs / "evaluate.json"), "--datalist", str(datalist), "--output", str(work / "eval")]
    run("-m", "custom", "infer", "--bundle", str(bundle), "--ckpt", str(model), *evaluate)

    if demo["dose"]:
        dose = ["--datalist", str(datalist), "--pred_dir", str(work / "eval"), "--split", "test"]
        run("-m", "custom", "dose-eval", *dose, "--out", str(work / "dose"))

    from custom.metrics import format_summary

    summary = json.loads((work / "eval" / "summary.json").read_text())
    print(f"\n=== {args.bundle} demo: test-set metrics ({demo['metrics']}) ===")
    print(format_summary(summary["metrics"]))
    print(f"\nsynthetic CTs ({demo['outputs']}): {sorted(str(p) for p in (work / 'eval').glob('*_sct.*'))}")
    print(f"per-case metrics:   {work / 'eval' / 'metrics.csv'}")
    print(f"summary:            {work / 'eval' / 'summary.json'}")
    print(f"figures:            {work / 'eval' / 'figures'}")
    if demo["dose"]:
        print(f"dose evaluation:    {work / 'dose'} (dose_eval.json; per case the doses, WEPL maps and figures)")
    print(f"training samples:   {work / 'runs' / 'samples'}")
    print(f"model:              {model} (+ {model.with_suffix('.json').name}: its network and settings)")
    print(f"TensorBoard logs:   {work / 'runs'}")
    print(f"done in {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
