"""``make package [BUNDLE=...]``: one self-contained zip per bundle, laid out as the MONAI bundle specification says.

``dist/<bundle>_v<version>.zip`` unzips into one folder, ``<bundle>/``, holding:

- ``configs/``, ``docs/``, ``LICENSE`` and ``models/README.md`` of the bundle; each config whole: the blocks it takes
  from the repository's shared base (``bundles/_base/configs``, with MONAI's ``%file#id`` macros) are copied in
  (:func:`custom.bundles.flat_config`), so the zip needs no base and every tool reads complete configs;
- ``custom/``: this repository's Python package (its ``.py`` files), the bundle's own code. Run from inside the bundle
  folder (the model zoo's way: ``python -m monai.bundle run --config_file configs/inference.json``), by MONAI Label and
  by the model zoo's checks (both put the bundle folder on ``sys.path``), the configs import it from there: no
  checkout of this repository and no extra package is needed, only the packages of ``configs/metadata.json``;
- ``models/model.pt`` and ``models/model.json`` when ``--model`` names a trained model (its ``model.json`` beside it);
  the settings that record holds (``network_def``, patch size, intensity windows; checked as data, see
  :mod:`custom.model_record`) are also written into the zipped ``configs/inference.json`` and ``configs/train.json``,
  so that every tool reading only the configs (``monai.bundle run``, ``ckpt_export``, MONAI Label, the model zoo's
  checks and its ``train.json`` + ``evaluate.json`` evaluation) builds the network the weights were trained for;
- ``large_files.yml``: where the zoo fetches the weights from (a URL to fill in when publishing) and their SHA-256, so
  that the zoo's tools accept the weights in the zip and can fetch them when the zip is published without them.

The zip is reproducible: entries sorted, fixed time stamps; it is written to a temporary file and renamed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path

from custom.bundles import bundle_names, flat_config
from custom.errors import InputError
from custom.model_record import read_model_record

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_PARTS = ("configs", "docs", "LICENSE", "models/README.md")
WEIGHTS_URL = "https://REPLACE-WITH-THE-RELEASE-URL/{bundle}_v{version}/model.pt"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(bundle: str, version: str, model: Path | None) -> dict[str, bytes]:
    """``{path inside the zip: content}`` of one bundle."""
    folder = ROOT / "bundles" / bundle
    files: dict[str, bytes] = {}
    for part in BUNDLE_PARTS:
        source = folder / part
        paths = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
        for path in paths:
            if "__pycache__" not in path.parts and path.is_file():
                name = f"{bundle}/{path.relative_to(folder).as_posix()}"
                # a config whole, the base's blocks copied in (macros resolved): the zip stands on its own
                files[name] = _json(flat_config(path)) if path.suffix == ".json" else path.read_bytes()
    for path in sorted((ROOT / "custom").rglob("*.py")):
        if "__pycache__" not in path.parts:
            files[f"{bundle}/custom/{path.relative_to(ROOT / 'custom').as_posix()}"] = path.read_bytes()
    entry = {"path": "models/model.pt", "url": WEIGHTS_URL.format(bundle=bundle, version=version)}
    if model is not None:
        record = model.with_suffix(".json")
        if not model.is_file() or not record.is_file():
            sys.exit(f"error: --model {model}: needs the model file and its {record.name} beside it")
        try:
            settings = read_model_record(model)  # data, checked: only plain settings reach the zipped configs
        except InputError as e:
            sys.exit(f"error: {e}")
        files[f"{bundle}/models/model.pt"] = model.read_bytes()
        files[f"{bundle}/models/model.json"] = record.read_bytes()
        for config in (f"{bundle}/configs/inference.json", f"{bundle}/configs/train.json"):
            files[config] = with_model_settings(files[config], settings)
        entry.update({"hash_val": sha256(model), "hash_type": "sha256"})
    else:
        entry.update({"hash_val": "", "hash_type": ""})
    lines = ["large_files:", *(f'  {"-" if i == 0 else " "} {k}: "{v}"' for i, (k, v) in enumerate(entry.items()))]
    files[f"{bundle}/large_files.yml"] = ("\n".join(lines) + "\n").encode()
    return files


def _json(config: dict) -> bytes:
    return (json.dumps(config, indent=4, ensure_ascii=False) + "\n").encode()


def with_model_settings(config_file: bytes, settings: dict) -> bytes:
    """A JSON config with the model's recorded settings (the checked ``config`` of its ``model.json``: top-level
    ids of the schema in :mod:`custom.model_record`, plain values) in place of the config's own."""
    config = json.loads(config_file)
    config.update(settings)
    return _json(config)


def write_zip(files: dict[str, bytes], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".zip", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(files):
                info = zipfile.ZipInfo(name, date_time=ZIP_TIME)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, files[name])
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", action="append", help="bundle folder name under bundles/ (default: every one)")
    parser.add_argument("--model", type=Path, default=None, help="a trained model.pt to ship (one --bundle only)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder")
    args = parser.parse_args(argv)
    bundles = args.bundle or bundle_names(ROOT / "bundles")
    if args.model is not None and len(bundles) != 1:
        parser.error("--model needs exactly one --bundle")
    for bundle in bundles:
        if not (ROOT / "bundles" / bundle / "configs" / "metadata.json").is_file():
            parser.error(f"--bundle {bundle}: no bundles/{bundle}/configs/metadata.json")
        version = json.loads((ROOT / "bundles" / bundle / "configs" / "metadata.json").read_text())["version"]
        out = args.out / f"{bundle}_v{version}.zip"
        files = bundle_files(bundle, version, args.model)
        write_zip(files, out)
        print(f"{out}: {len(files)} files, {out.stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
