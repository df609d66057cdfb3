"""Built-in lung demo data: deterministic procedural chest CT slices with lung (+ nodule) masks (``lidc_mask2ct``).

``make_lung_demo_data(out)`` writes ``<out>/{train,test}/{with_nodules,clean}/<ID>_slice_<k>.png`` (8-bit CT) with
``<ID>_combined_mask_<k>.npy`` (lungs + nodules, with_nodules) or ``<ID>_lung_mask_<k>.npy`` (lungs, clean), and a
short ``README.txt``; ``python -m custom datalist --layout lidc_mask2ct`` then makes the datalist. The data let the
``mask2ct_lung`` bundle run end to end in minutes on a CPU; they are not a benchmark and not patient data.

Each slice is drawn in Hounsfield units on a grid of normalised coordinates ``u = (column - c) / n`` (patient right
on the image left, as radiologists view axial slices) and ``v = (row - c) / n`` (anterior up), then windowed to 8 bits
with the lung window ``[-1000, 400]`` HU: ``grey = clip(round((HU + 1000) · 255 / 1400), 0, 255)``.

============== ============ ===============================================================================
structure      HU           geometry
============== ============ ===============================================================================
air            -1000        outside the body, trachea and main bronchi
table          -300 / 150   curved carbon shell (bright skins, foam core) under the patient
body           30..50       ellipse (muscle); a subcutaneous fat ring (-110..-80) under the skin
ribs, sternum  600..900     small ellipses around the thoracic wall; spine: cortical ring, marrow, canal
mediastinum    35..50       between the lungs; heart from mid-chest down, aorta, trachea/bronchi above
lungs          -870..-830   two lobed ellipses growing from apex to base, heart notch, diaphragm dome below
vessels        20..50       tapering branches from each hilum and dots (vessels across the slice)
nodules        10..60       1-2 round, slightly lobulated, in with_nodules slices only
============== ============ ===============================================================================

plus a smooth parenchymal texture (±15 HU), a partial-volume blur (σ 0.6 pixel) and Gaussian noise (σ 8-18 HU). The
lung mask is the lungs' outline (vessels inside, heart and dome outside); the combined mask is lungs ∪ nodules. Most
nodules are juxtapleural (centred on the lung border, so half of them bulges out of the lung outline and shows in the
combined mask); the others lie inside the lung, where a binary union mask cannot show them.

Patients ``LUNGDEMO-0001``... have ``slices`` slices each, at increasing heights (apex to base), alternately clean
and with nodules; the last ``test_patients`` patients go to ``test/``. Every random number comes from
``numpy.random.default_rng([seed, patient(, slice)])`` in a fixed order, so the same arguments give the same files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from custom.errors import InputError
from custom.outputs import atomic_write, write_png, write_text

__all__ = ["LungSlice", "synthesize_lung_slice", "make_lung_demo_data", "patient_id", "LUNG_WINDOW"]

LUNG_WINDOW = (-1000.0, 400.0)  # HU shown as grey levels 0..255
_MAX_SEED = 2**63 - 1
_ID_RE = re.compile(r"^LUNGDEMO-\d{4}_(slice|combined_mask|lung_mask)_\d+\.(png|npy)$")
_GROUP_MASKS = {"with_nodules": "combined_mask", "clean": "lung_mask"}


def patient_id(index: int) -> str:
    """Patient id of the ``index``-th (0-based) demo patient: ``LUNGDEMO-0001``, ..."""
    return f"LUNGDEMO-{index + 1:04d}"


@dataclass
class LungSlice:
    """One synthetic slice, rows x columns: ``ct`` (uint8 grey levels), ``hu`` (float32 HU before windowing),
    ``lungs`` and ``nodules`` (uint8 0/1 masks) and ``combined`` (lungs ∪ nodules)."""

    ct: np.ndarray
    hu: np.ndarray
    lungs: np.ndarray
    nodules: np.ndarray

    @property
    def combined(self) -> np.ndarray:
        return np.maximum(self.lungs, self.nodules)


@dataclass
class _Patient:
    """Per-patient anatomy, in normalised units (fractions of the image size)."""

    body: tuple[float, float, float, float]  # centre u, v and half-axes of the body ellipse
    fat: float  # subcutaneous fat thickness
    lung_axes: tuple[float, float]  # lung half-axes at the base
    lung_gap: float  # half-width of the mediastinum
    lobes: np.ndarray  # (2, 3, 2): per lung, three cosine harmonics (amplitude, phase) of the outline
    hu: dict[str, float]  # tissue values
    noise: float


def _draw_patient(rng: np.random.Generator) -> _Patient:
    u = rng.uniform
    lobes = np.stack([u(0.0, 0.05, size=(2, 3)), u(0.0, 2 * np.pi, size=(2, 3))], axis=-1)
    hu = {
        "muscle": u(30, 50),
        "fat": u(-110, -80),
        "bone": u(600, 900),
        "marrow": u(180, 300),
        "lung": u(-870, -830),
        "vessel": u(20, 50),
        "nodule": u(10, 60),
        "heart": u(35, 50),
    }
    return _Patient(
        body=(u(-0.02, 0.02), u(0.0, 0.03), u(0.40, 0.45), u(0.28, 0.33)),
        fat=u(0.015, 0.035),
        lung_axes=(u(0.15, 0.18), u(0.21, 0.25)),
        lung_gap=u(0.045, 0.06),
        lobes=lobes,
        hu=hu,
        noise=u(8.0, 18.0),
    )


class _Canvas:
    """The HU image being drawn, its normalised coordinates and shape helpers."""

    def __init__(self, size: int, air: float = -1000.0) -> None:
        self.n = size
        rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
        centre = (size - 1) / 2
        self.u, self.v = (cols - centre) / size, (rows - centre) / size
        self.hu = np.full((size, size), air, dtype=np.float32)

    def ellipse(self, cu: float, cv: float, au: float, av: float) -> np.ndarray:
        """``((u - cu) / au)^2 + ((v - cv) / av)^2`` (< 1 inside)."""
        return ((self.u - cu) / au) ** 2 + ((self.v - cv) / av) ** 2

    def disk(self, cu: float, cv: float, r: float) -> np.ndarray:
        return self.ellipse(cu, cv, r, r) < 1

    def paint(self, where: np.ndarray, value: float | np.ndarray) -> None:
        self.hu = np.where(where, value, self.hu).astype(np.float32)

    def segment_distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Distance (normalised units) of every pixel to the segment ``a``-``b`` (points ``(u, v)``)."""
        d = b - a
        t = np.clip(((self.u - a[0]) * d[0] + (self.v - a[1]) * d[1]) / max(float(d @ d), 1e-12), 0.0, 1.0)
        return np.hypot(self.u - (a[0] + t * d[0]), self.v - (a[1] + t * d[1]))


def _lungs(c: _Canvas, p: _Patient, z: float, heart: np.ndarray, dome: np.ndarray) -> np.ndarray:
    """The two lung outlines at height ``z`` (0 apex .. 1 base): lobed ellipses beside the mediastinum."""
    grow = 0.45 + 0.55 * np.sqrt(z)
    au, av = p.lung_axes[0] * grow, p.lung_axes[1] * grow
    bu, bv, _, bh = p.body
    lungs = np.zeros(c.u.shape, dtype=bool)
    for side, sign in enumerate((-1.0, 1.0)):  # patient right (image left), then patient left
        cu = bu + sign * (p.lung_gap + au)
        cv = bv - 0.02 + 0.1 * bh * (1 - z)
        angle = np.arctan2(c.v - cv, c.u - cu)
        radius = 1.0 + sum(a * np.cos((k + 2) * angle + ph) for k, (a, ph) in enumerate(p.lobes[side]))
        lungs |= np.sqrt(c.ellipse(cu, cv, au, av)) < radius
    return lungs & (np.abs(c.u - bu) > p.lung_gap) & ~heart & ~dome


def _vessels(c: _Canvas, rng: np.random.Generator, lungs: np.ndarray, p: _Patient) -> np.ndarray:
    """Vessel density in [0, 1]: tapering polylines from each hilum and round dots, inside the lungs."""
    px = 1.0 / c.n  # one pixel in normalised units
    density = np.zeros(c.u.shape, dtype=np.float32)
    bu, bv = p.body[:2]
    for sign in (-1.0, 1.0):
        hilum = np.array([bu + sign * (p.lung_gap + 0.02), bv])
        for _ in range(int(rng.integers(4, 7))):
            point, width = hilum.copy(), rng.uniform(0.5, 0.9) * px
            heading = rng.uniform(-0.9, 0.9) + (0.0 if sign > 0 else np.pi)
            for _ in range(int(rng.integers(2, 5))):
                heading += rng.normal(0.0, 0.35)
                step = rng.uniform(0.025, 0.05) * np.array([np.cos(heading), np.sin(heading)])
                distance = c.segment_distance(point, point + step)
                density = np.maximum(density, np.clip(1.0 + (width - distance) / px, 0.0, 1.0))
                point, width = point + step, width * 0.7
        us, vs = np.nonzero(lungs)
        for k in rng.choice(len(us), size=min(len(us), int(rng.integers(8, 16))), replace=False):
            radius = rng.uniform(0.2, 0.7) * px
            distance = np.hypot(c.u - c.u[us[k], vs[k]], c.v - c.v[us[k], vs[k]])
            density = np.maximum(density, np.clip(1.0 + (radius - distance) / px, 0.0, 1.0))
    return density * lungs


def _nodules(c: _Canvas, rng: np.random.Generator, lungs: np.ndarray) -> np.ndarray:
    """1-2 nodules (0/1 mask): mostly juxtapleural (centred on the lung border), else inside the lung."""
    px = 1.0 / c.n
    border = lungs & ~ndimage.binary_erosion(lungs)
    interior = ndimage.binary_erosion(lungs, iterations=max(2, c.n // 16))
    nodules = np.zeros(c.u.shape, dtype=bool)
    for _ in range(int(rng.integers(1, 3))):
        where = border if (rng.uniform() < 0.7 or not interior.any()) else interior
        rows, cols = np.nonzero(where)
        k = int(rng.integers(len(rows)))
        cu, cv = c.u[rows[k], cols[k]], c.v[rows[k], cols[k]]
        radius = rng.uniform(1.5, 4.0) * px * c.n / 64  # 1.5-4 pixels at 64, 3-8 at 128
        angle = np.arctan2(c.v - cv, c.u - cu)
        lobulation = 1.0 + 0.15 * np.cos(3 * angle + rng.uniform(0, 2 * np.pi))
        nodules |= np.hypot(c.u - cu, c.v - cv) < radius * lobulation
    return nodules


def synthesize_lung_slice(
    seed: int = 0, patient: int = 0, index: int = 0, slices: int = 6, size: int = 128, nodules: bool = False
) -> LungSlice:
    """The ``index``-th of ``slices`` demo slices of a patient (see the module docstring), ``size`` x ``size``.

    The result depends only on the arguments.
    """
    _integers(seed=(seed, 0, _MAX_SEED), patient=(patient, 0, 998), slices=(slices, 1, 200), size=(size, 32, 512))
    _integers(index=(index, 0, slices - 1))
    p = _draw_patient(np.random.default_rng([int(seed), int(patient)]))
    rng = np.random.default_rng([int(seed), int(patient), int(index)])
    z = float(np.clip(0.15 + 0.7 * (index + 0.5) / slices + rng.uniform(-0.04, 0.04), 0.0, 1.0))
    c = _Canvas(int(size))
    bu, bv, bw, bh = p.body
    hu = p.hu

    # table: a curved shell under the body (bright skins, foam core)
    table_v = bv + bh + 0.03 + 0.15 * c.u**2
    c.paint((c.v > table_v) & (c.v < table_v + 0.035) & (np.abs(c.u) < 0.46), -300.0)
    c.paint((np.abs(c.v - table_v) < 0.006) & (np.abs(c.u) < 0.46), 150.0)

    # body: fat ring under the skin, muscle inside; sternum, ribs, spine
    body = c.ellipse(bu, bv, bw, bh)
    c.paint(body < 1, hu["fat"])
    c.paint(c.ellipse(bu, bv, bw - p.fat, bh - p.fat) < 1, hu["muscle"])
    wall = c.ellipse(bu, bv, bw - p.fat - 0.035, bh - p.fat - 0.035)
    c.paint(c.ellipse(bu, bv - bh + p.fat + 0.03, 0.03, 0.012) < 1, hu["bone"])
    for angle in rng.uniform(0.25, np.pi - 0.25, size=int(rng.integers(5, 8))) * rng.choice([-1, 1], size=1):
        for side in (-1.0, 1.0):
            ru = bu + side * np.cos(angle) * (bw - p.fat - 0.02)
            rv = bv + np.sin(angle) * (bh - p.fat - 0.02)
            c.paint(c.ellipse(ru, rv, 0.018, 0.011) < 1, hu["bone"])
    spine_v = bv + bh - p.fat - 0.09
    c.paint(c.disk(bu, spine_v, 0.055), hu["bone"])
    c.paint(c.disk(bu, spine_v, 0.042), hu["marrow"])
    c.paint(c.disk(bu, spine_v + 0.07, 0.022), 10.0)  # spinal canal

    # mediastinum: heart from mid-chest down, aorta, trachea or main bronchi above the heart
    heart_size = float(np.clip((z - 0.35) / 0.4, 0.0, 1.0))
    heart = c.ellipse(bu + 0.05, bv - 0.04, 0.02 + 0.11 * heart_size, 0.02 + 0.10 * heart_size) < 1
    heart &= heart_size > 0
    c.paint(heart, hu["heart"])
    c.paint(c.disk(bu + 0.045, spine_v - 0.06, 0.028), hu["heart"])  # descending aorta
    dome = c.ellipse(bu - 0.12, bv + 0.02, 0.16 * max(0.0, z - 0.7) / 0.3 + 1e-3, 0.2 * max(0.0, z - 0.7) / 0.3 + 1e-3)
    dome = (dome < 1) & (z > 0.7)
    lungs = _lungs(c, p, z, heart, dome) & (wall < 1)
    texture = ndimage.gaussian_filter(rng.normal(0.0, 1.0, c.u.shape), sigma=max(1.0, c.n / 40))
    texture *= 15.0 / max(float(texture.std()), 1e-6)
    c.paint(lungs, hu["lung"] + texture)
    if z < 0.45:
        c.paint(c.disk(bu, bv - 0.03, 0.028), -1000.0)  # trachea
    elif z < 0.6:
        for side in (-1.0, 1.0):
            c.paint(c.disk(bu + side * 0.045, bv - 0.02, 0.018), -1000.0)  # main bronchi
    c.paint(dome, hu["muscle"] + 15.0)  # liver dome

    vessels = _vessels(c, rng, lungs, p)
    c.hu = c.hu + vessels * (hu["vessel"] - c.hu)
    nodule_mask = _nodules(c, rng, lungs) if nodules else np.zeros(c.u.shape, dtype=bool)
    c.paint(nodule_mask, hu["nodule"] + 10.0 * rng.normal(size=c.u.shape).astype(np.float32))

    image = ndimage.gaussian_filter(c.hu, sigma=0.6) + rng.normal(0.0, p.noise, c.u.shape)
    low, high = LUNG_WINDOW
    grey = np.clip(np.rint((image - low) * 255.0 / (high - low)), 0, 255).astype(np.uint8)
    return LungSlice(grey, image.astype(np.float32), lungs.astype(np.uint8), nodule_mask.astype(np.uint8))


def _readme(patients: int, slices: int, test_patients: int, seed: int, size: int) -> str:
    return f"""Synthetic chest CT slices with lung masks (made by `python -m custom demo-lung-data`)

NOT PATIENT DATA. Procedural phantoms from custom/demo/lungs.py, meant to run the mask2ct_lung bundle end to
end (e.g. `make demo BUNDLE=mask2ct_lung`), not to benchmark or validate anything.

Patients: {patients} ({patient_id(0)}..{patient_id(patients - 1)}), {slices} slices each, seed {seed}; the last
{test_patients} in test/. Slices: {size} x {size}, 8-bit, lung window [-1000, 400] HU.
Layout lidc_mask2ct: <split>/<group>/<ID>_slice_<k>.png with <ID>_combined_mask_<k>.npy (with_nodules: lungs and
nodules) or <ID>_lung_mask_<k>.npy (clean: lungs), masks uint8 0/1, rows x columns like the PNG.

The same arguments give identical files. Make a datalist with `python -m custom datalist --layout lidc_mask2ct`.
"""


def _integers(**limits: tuple[object, int, int]) -> None:
    """Check ``name=(value, low, high)``: an integer in ``[low, high]``, else one InputError naming it."""
    for name, (value, low, high) in limits.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise InputError(f"{name}={value!r}: expected an integer between {low} and {high}")


def _output_folder(out: str | None) -> Path:
    """``out``, created if needed; InputError when none is given or it is a file."""
    if not out:
        raise InputError("out: an output folder is required (--out DIR)")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _remove_stale(out: Path) -> None:
    """Remove the demo files of an earlier run (demo names only, in a folder with the demo README)."""
    if not (out / "README.txt").is_file():
        return
    for group_dir in (out / s / g for s in ("train", "test") for g in _GROUP_MASKS):
        if group_dir.is_dir():
            for path in group_dir.iterdir():
                if path.is_file() and _ID_RE.match(path.name):
                    path.unlink()


def make_lung_demo_data(
    out: str,
    patients: int = 8,
    slices: int = 6,
    test_patients: int = 2,
    seed: int = 0,
    size: int = 128,
) -> str:
    """Write the lung demo data set in the ``lidc_mask2ct`` layout (see the module docstring).

    Args:
        out: output folder (created). Demo files of an earlier run in it are replaced.
        patients: number of patients (2-999).
        slices: slices per patient (1-200), alternately clean and with nodules.
        test_patients: patients in ``test/`` (the last ones; 0 to ``patients - 1``).
        seed: random seed (≥ 0); the same arguments give identical files.
        size: slice size in pixels (32-512).

    Returns:
        The output folder.

    Raises:
        InputError: bad arguments, or ``out`` exists and is not a folder.
    """
    _integers(patients=(patients, 2, 999), slices=(slices, 1, 200), seed=(seed, 0, _MAX_SEED), size=(size, 32, 512))
    _integers(test_patients=(test_patients, 0, patients - 1))
    out_dir = _output_folder(out)
    _remove_stale(out_dir)
    for patient in range(patients):
        split = "test" if patient >= patients - test_patients else "train"
        for index in range(slices):
            group = "with_nodules" if (patient + index) % 2 else "clean"
            cut = synthesize_lung_slice(seed, patient, index, slices, size, nodules=group == "with_nodules")
            folder = out_dir / split / group
            k = 30 + 10 * index  # the slice number in its (imaginary) scan
            write_png(cut.ct, folder / f"{patient_id(patient)}_slice_{k}.png", pixel_layout=True)
            mask = cut.combined if group == "with_nodules" else cut.lungs
            with atomic_write(folder / f"{patient_id(patient)}_{_GROUP_MASKS[group]}_{k}.npy") as tmp:
                np.save(tmp, mask.astype(np.uint8))
    write_text(_readme(patients, slices, test_patients, seed, size), out_dir / "README.txt")
    return str(out_dir)
