"""``make test-label``: a bundle served by a real MONAI Label server answers as ``python -m custom infer`` does.

1. a trained demo model and its test MR (``scripts/demo.py --epochs 1`` into ``--work`` unless it is there);
2. the packaged bundle (``scripts/package.py --model``) unzipped into a copy of MONAI Label's ``monaibundle`` sample
   app, as a local model (``<app>/model/<bundle>``), and the MR alone in a studies folder;
3. ``monailabel start_server`` of the MONAI Label venv on 127.0.0.1 with ``--conf models <bundle> --conf zoo_source
   github --conf sam2 false`` (local bundle, no download) and ``--conf skip_trainers true`` (serving only);
4. ``POST /infer/<bundle>?image=<id>&output=image`` over HTTP; the answer must be int16, on the MR's grid (shape and
   affine) and equal to ``python -m custom infer`` of the same model and MR (max |ΔHU| ≤ 1: both hand the config's
   inferer the plain network, and it prepares it the same way; see ``compare``);
5. the same request with the case's body mask sent along (``params={"mask": <path>}``, which MONAI Label merges into
   the data its bundle task loads): MONAI Label's bundle task hands the inferer the image alone
   (``BasicInferTask.run_inferer``), so the answer is the whole-volume sCT, and inside the mask it must equal
   ``custom infer --mask`` (which runs only the sliding windows that touch the mask, see
   :class:`custom.inferers.CropToMaskInferer`) up to the same rounding.

The server is stopped whatever happens. Not part of ``make test``: it needs the MONAI Label venv (``make test-label``
makes it: monailabel 0.8.5, numpy < 2, pydicom < 3, torch and torchvision), and starting the server takes minutes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from verify_zoo import ROOT, trained_model  # noqa: E402

READY_TIMEOUT_S = 900
INFER_TIMEOUT_S = 900


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def label_app(label_python: Path, bundle: str, model: Path, mr: Path, root: Path) -> tuple[Path, Path, str]:
    """(app folder, studies folder, image id): the sample ``monaibundle`` app with the packaged bundle as its model."""
    sample = Path(os.path.abspath(label_python)).parent.parent / "monailabel" / "sample-apps" / "monaibundle"
    if not sample.is_dir():
        sys.exit(f"error: {sample}: no monaibundle sample app in the MONAI Label venv")
    shutil.rmtree(root, ignore_errors=True)
    app, studies, dist = root / "app", root / "studies", root / "dist"
    shutil.copytree(sample, app, ignore=shutil.ignore_patterns("__pycache__"))
    package = [sys.executable, str(ROOT / "scripts" / "package.py"), "--bundle", bundle, "--model", str(model)]
    subprocess.run([*package, "--out", str(dist)], cwd=ROOT, check=True)
    (archive,) = dist.glob(f"{bundle}_v*.zip")
    with zipfile.ZipFile(archive) as z:
        z.extractall(app / "model")
    image_id = mr.parent.name if mr.name.startswith("mr.") else mr.name.split(".")[0]
    studies.mkdir()
    shutil.copy(mr, studies / f"{image_id}.nii.gz")
    return app, studies, image_id


def post(url: str, params: dict, out: Path) -> tuple[Path, int]:
    """``POST url`` with MONAI Label's form field ``params`` (JSON); the answer is written to ``out``."""
    body = urllib.parse.urlencode({"params": json.dumps(params)}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(request, timeout=INFER_TIMEOUT_S) as response:
        out.write_bytes(response.read())
        return out, response.status


def wait_ready(url: str, server: subprocess.Popen) -> None:
    """Wait until ``GET url`` answers 200, or fail when the server exits or the time is up."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(3)
    raise RuntimeError(f"no answer from {url} within {READY_TIMEOUT_S} s")


def stop(server: subprocess.Popen) -> None:
    """Stop the server's process group: SIGTERM, then SIGKILL after 30 s."""
    if server.poll() is not None:
        return
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def compare(served: Path, reference: Path, mr: Path, mask: Path | None = None) -> dict:
    """Check the served sCT against ``custom infer``'s on the MR grid (inside ``mask`` if given: outside it the
    masked reference is air); return what was measured."""
    sct, ref, image = nib.load(served), nib.load(reference), nib.load(mr)
    measured = {
        "served dtype": str(sct.get_data_dtype()),
        "served shape": list(sct.shape),
        "MR shape": list(image.shape),
        "max |affine difference|": float(np.abs(sct.affine - image.affine).max()),
    }
    assert sct.get_data_dtype() == np.int16, measured
    assert sct.shape == image.shape, measured
    assert np.allclose(sct.affine, image.affine, atol=1e-3), measured
    difference = np.abs(np.asarray(sct.dataobj, dtype=np.int32) - np.asarray(ref.dataobj, dtype=np.int32))
    if mask is not None:
        difference = difference[np.asarray(nib.load(mask).dataobj) > 0]
    measured.update(
        {
            "max |HU difference| vs custom infer": int(difference.max()),
            "mean |HU difference|": float(difference.mean()),
            "voxels more than 1 HU apart": int((difference > 1).sum()),
            "voxels compared": int(difference.size) if mask is None else f"{difference.size} (inside the mask)",
        }
    )
    # MONAI Label hands the config's inferer network_def with the weights, custom infer its network (network_def on the
    # device): the inferer prepares either the same way, so the sCTs agree to the voxel (swin_pix2pix_3d with flips +
    # bone_half: 0 HU apart; when MONAI Label ran the plain network, up to 932 HU). 1 HU leaves room for the rounding
    # to int16 only: a bone rule's jump would exceed it.
    assert difference.max() <= 1, measured
    return measured


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label-python", type=Path, required=True, help="python of the MONAI Label venv")
    parser.add_argument("--bundle", default="pix2pix_ngf", help="a bundle of NIfTI volumes (not mask2ct_lung)")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a new temporary one)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    work = (args.work or Path(tempfile.mkdtemp(prefix="test_label_"))).resolve()
    model = trained_model(args.bundle, work)
    datalist = json.loads((work / "datalist.json").read_text())  # the demo's, of the NIfTI (head) bundles
    mr = Path(datalist["test"][0]["image"])
    mask = Path(datalist["test"][0]["mask"])  # the demo's cases have body masks
    root = work / "label"
    app, studies, image_id = label_app(args.label_python, args.bundle, model, mr, root)

    reference_dir = root / "custom_infer"
    infer = [sys.executable, "-m", "custom", "infer", "--bundle", str(app / "model" / args.bundle)]
    subprocess.run([*infer, "--ckpt", str(model), "--input", str(mr), "--output", str(reference_dir)], check=True)
    (reference,) = reference_dir.glob("*_sct.nii.gz")
    masked_dir = root / "custom_infer_mask"
    subprocess.run([*infer, "--ckpt", str(model), "--input", str(mr), "--mask", str(mask), "--output", str(masked_dir)],
                   check=True)  # fmt: skip
    (masked_reference,) = masked_dir.glob("*_sct.nii.gz")

    port = free_port()
    # what the `monailabel` command runs, without the folder above its venv that it adds to PYTHONPATH (the repository
    # when the venv is in it): the server finds `custom` only in the bundle, which MONAI Label puts on sys.path
    label_python = os.path.abspath(args.label_python)
    command = [label_python, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies)]
    command += ["--conf", "models", args.bundle, "--conf", "zoo_source", "github", "--conf", "sam2", "false"]
    command += ["--conf", "skip_trainers", "true", "--host", "127.0.0.1", "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    log = open(root / "server.log", "w")
    print("+", " ".join(command), flush=True)
    prepared = time.monotonic()
    server = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_ready(f"http://127.0.0.1:{port}/info/", server)
        ready = time.monotonic()
        url = f"http://127.0.0.1:{port}/infer/{args.bundle}?image={image_id}&output=image"
        served, status = post(url, {}, root / "served_sct.nii.gz")
        answered = time.monotonic()
        served_mask, _ = post(url, {"mask": str(mask)}, root / "served_with_mask_sct.nii.gz")
    except Exception:
        print((root / "server.log").read_text()[-6000:], file=sys.stderr)
        raise
    finally:
        stop(server)
        log.close()
    measured = compare(served, reference, mr)
    print(f"\n=== make test-label: {args.bundle} served by MONAI Label ===")
    print(f"POST {url} -> HTTP {status}, {served.stat().st_size} bytes")
    for key, value in measured.items():
        print(f"{key}: {value}")
    print(f"\n--- with the body mask sent ({mask}) vs custom infer --mask, inside the mask ---")
    for key, value in compare(served_mask, masked_reference, mr, mask).items():
        print(f"{key}: {value}")
    print("--- without a mask (whole volume) vs custom infer --mask, inside the mask ---")
    for key, value in compare(served, masked_reference, mr, mask).items():
        print(f"{key}: {value}")
    print(
        f"time: preparing (model, package, custom infer) {prepared - start:.0f} s, server start "
        f"{ready - prepared:.0f} s, request {answered - ready:.1f} s, all {time.monotonic() - start:.0f} s"
    )
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
