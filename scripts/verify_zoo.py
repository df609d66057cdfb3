"""``make verify-zoo ZOO=/path/to/model-zoo``: the model zoo's own bundle check on each bundle, laid out as in the zoo.

For each bundle:

1. a trained model: ``<work>/<bundle>/models/model.pt`` if it is there (e.g. ``--work demo`` after ``make demo``),
   else a one-epoch demo training (``scripts/demo.py --epochs 1``) into ``<work>``;
2. ``scripts/package.py --model``: the zip, whose ``inference.json`` holds the model's settings, unzipped into
   ``<work>/zoo/models/<bundle>``, the zoo's layout, beside an empty ``models/model_info.json`` (no released versions);
3. the zoo's ``ci/verify_bundle.py -m full`` (directory and ``large_files.yml``, version, metadata against the schema,
   ``verify_net_in_out``, ``ckpt_export`` to TorchScript) run from a copy of the zoo's ``ci/`` folder, in a Python
   where ``custom`` cannot be imported from anywhere but the bundle folder (``verify_bundle.py`` puts the bundle on
   ``sys.path``, as MONAI Label does).

``ZOO`` is a model-zoo checkout or a bare git mirror of one (its ``ci/`` is extracted with ``git archive``); nothing of
it is copied into this repository. Offline: the metadata schema is the copy in ``schemas/`` (placed where
``verify_bundle.py`` looks before downloading, ``<bundle>/eval/schema.json``), and ``large_files.yml`` names weights
that are already in the bundle with their hash, so nothing is downloaded.

Bundles whose ``network_def`` ``torch.jit.script`` cannot compile are added to the copy's
``exclude_verify_torchscript_list``, as the zoo does for its own such bundles (e.g. ``swin_unetr_btcv_segmentation``);
their TorchScript is traced instead (see the bundle's docs and ``tests/test_bundles.py``).

Not part of ``make test``: it needs a model-zoo checkout, and trains a model per bundle. Exit status 1 when a bundle
fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from custom.bundles import bundle_names

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "schemas" / "meta_schema_20240725.json"
# SwinUNETR: keyword-only arguments that torch.jit.script cannot compile
NOT_SCRIPTABLE = {"swin_pix2pix_3d"}

# runs verify_bundle.py as `python ci/verify_bundle.py ...` would, once an installed copy of this repository's `custom`
# (an editable install) can no longer be found: only the bundle folder that verify_bundle.py puts on sys.path has it
LAUNCHER = """
import importlib.util, runpy, sys
sys.meta_path[:] = [f for f in sys.meta_path if not str(getattr(f, "__module__", "")).startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
assert importlib.util.find_spec("custom") is None, "custom is importable from outside the bundle"
sys.path.insert(0, "ci")
sys.argv = ["ci/verify_bundle.py", *sys.argv[1:]]
runpy.run_path("ci/verify_bundle.py", run_name="__main__")
"""


def zoo_ci(zoo: Path, into: Path) -> None:
    """Copy the zoo's ``ci/`` folder into ``into`` from a checkout or a bare git mirror."""
    if (zoo / "ci" / "verify_bundle.py").is_file():
        shutil.copytree(zoo / "ci", into / "ci")
        return
    archive = subprocess.run(["git", "--git-dir", str(zoo), "archive", "HEAD", "ci"], capture_output=True, check=True)
    with tempfile.TemporaryFile() as tar:
        tar.write(archive.stdout)
        tar.seek(0)
        subprocess.run(["tar", "-x", "-C", str(into)], stdin=tar, check=True)
    if not (into / "ci" / "verify_bundle.py").is_file():
        sys.exit(f"error: ZOO={zoo}: no ci/verify_bundle.py (not a model-zoo checkout or mirror)")


def trained_model(bundle: str, work: Path) -> Path:
    """The bundle's model under ``work``, trained for one demo epoch when there is none."""
    model = work / bundle / "models" / "model.pt"
    if not model.is_file():
        demo = [sys.executable, str(ROOT / "scripts" / "demo.py"), "--bundle", bundle, "--out", str(work)]
        subprocess.run([*demo, "--epochs", "1"], cwd=ROOT, check=True)
    return model


def zoo_layout(bundle: str, model: Path, zoo_root: Path) -> Path:
    """The packaged bundle unzipped into ``<zoo_root>/models/<bundle>`` with what the zoo's CI finds there."""
    dist = zoo_root / "dist"
    package = [sys.executable, str(ROOT / "scripts" / "package.py"), "--bundle", bundle, "--model", str(model)]
    subprocess.run([*package, "--out", str(dist)], cwd=ROOT, check=True)
    (archive,) = dist.glob(f"{bundle}_v*.zip")
    models = zoo_root / "models"
    shutil.rmtree(models / bundle, ignore_errors=True)
    with zipfile.ZipFile(archive) as z:
        z.extractall(models)
    (models / "model_info.json").write_text("{}\n")
    (models / bundle / "eval").mkdir(exist_ok=True)
    shutil.copy(SCHEMA, models / bundle / "eval" / "schema.json")
    return models / bundle


def exclude_from_torchscript(zoo_root: Path, bundles: set[str]) -> None:
    """Add ``bundles`` to the zoo copy's ``exclude_verify_torchscript_list`` (its ``ci/bundle_custom_data.py``)."""
    path = zoo_root / "ci" / "bundle_custom_data.py"
    path.write_text(path.read_text() + f"\nexclude_verify_torchscript_list += {sorted(bundles)!r}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--zoo", type=Path, required=True, help="model-zoo checkout or bare git mirror")
    parser.add_argument("--bundle", action="append", help="bundle under bundles/ (default: every one)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    bundles = args.bundle or bundle_names(ROOT / "bundles")
    work = (args.work or Path(tempfile.mkdtemp(prefix="verify_zoo_"))).resolve()
    zoo_root = work / "zoo"
    shutil.rmtree(zoo_root, ignore_errors=True)
    zoo_root.mkdir(parents=True)
    zoo_ci(args.zoo.resolve(), zoo_root)
    exclude_from_torchscript(zoo_root, NOT_SCRIPTABLE & set(bundles))

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    results = {}
    for bundle in bundles:
        zoo_layout(bundle, trained_model(bundle, work), zoo_root)
        print(f"\n=== ci/verify_bundle.py -b {bundle} -p models -m full ({zoo_root}) ===", flush=True)
        verify = [sys.executable, "-c", LAUNCHER, "-b", bundle, "-p", "models", "-m", "full"]
        results[bundle] = subprocess.run(verify, cwd=zoo_root, env=env).returncode
    print("\n=== model zoo verify_bundle.py, full mode ===")
    for bundle, code in results.items():
        note = " (TorchScript check excluded: not scriptable, listed as the zoo lists such bundles)"
        note *= bundle in NOT_SCRIPTABLE
        print(f"{bundle}: {'passed' if code == 0 else f'FAILED (exit {code})'}{note}")
    return int(any(results.values()))


if __name__ == "__main__":
    sys.exit(main())
