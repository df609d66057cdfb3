"""Built-in demo data: a deterministic, procedural MR/CT head data set in the SynthRAD 2023 layout.

``make_demo_data(out)`` writes ``<out>/<ID>/{mr,ct,mask}.nii.gz`` (IDs ``1HD001``, ``1HD002``, ...) and a short
``README.txt``; ``python -m custom datalist`` then makes the datalist. The data are only meant to let every tool and
bundle run end to end in minutes on a CPU; they are not a benchmark.

Each case is drawn from a tissue label map built from signed distance functions in a head frame (millimetres,
x = left→right, y = posterior→anterior, z = inferior→superior, i.e. RAS):

* head = smooth union of a cranium ellipsoid and a lower face ellipsoid; skin, subcutaneous fat, soft tissue;
* skull = shell under the scalp with smoothly varying thickness, a fatty-marrow diploë core where it is thick, closed
  below by a skull base (lower posteriorly, with temporal fossae); frontal sinus in the frontal bone (most cases);
* brain = grey matter ribbon over white matter, CSF over the cortex, in sulci, in the interhemispheric fissure and in
  the lateral ventricles; deep grey nuclei;
* face = orbits (bony walls, orbital fat, vitreous eyes), nasal cavity, ethmoid cells, maxillary and sphenoid sinuses
  (air with thin bony walls), cervical vertebra with spinal canal and cord.

Shape, size, skull thickness, tissue values, head pose and the oblique scanner orientation vary with the seed and the
case index. Intensities, per tissue (per-case values drawn in these ranges):

=========== ============== ============= ===============================================
tissue      CT (HU)        MR (T1-like)  note
=========== ============== ============= ===============================================
air         -1000          0             outside and in sinuses: dark in MR
fat         -120..-80      780..900      bright in T1
skin/soft   30..60         260..460
cortical    700..1800      20..60        dark in MR: same as air, opposite in CT
diploë      250..500       450..600      fatty marrow: bright in T1, brighter than bone
CSF         5..15          60..110
grey matter 35..45         350..420
white m.    22..32         520..600      brighter than grey matter in T1
vitreous    5..15          50..90
=========== ============== ============= ===============================================

so the MR→CT map is not monotone (air and bone are both dark in MR; marrow is brighter than brain in MR but denser
than it in CT). Then a Gaussian partial-volume blur (σ 0.45 voxel); CT gets Gaussian noise (σ 5-10 HU) and is stored
as int16 HU; MR gets a smooth multiplicative bias field ``exp(b·f)`` (b 0.1-0.2, f a unit-variance smooth field) and
Rician noise ``|S + n1 + i·n2|`` with ``n1, n2 ~ N(0, σ²)`` (σ 8-15) and is stored as non-negative int16. The mask is
the head (body) outline, sinuses included, as uint8. MR, CT and mask of a case share one affine: anisotropic spacing
and an oblique direction (a 5-15° rotation about a random axis) with a non-zero origin; the anatomy is upright in
world (RAS) space up to a small pose tilt, so it looks tilted in voxel space.

Smooth random fields (skull thickness, cortical folding, texture, bias) are sums of random cosines
``sqrt(2/n) Σ cos(ω_k·q + φ_k)`` (random Fourier features, unit variance, wavelength set by |ω_k|): resolution
independent and cheap. Every random number comes from ``numpy.random.default_rng([seed, case_index])`` in a fixed
order and the NIfTI files are written by nibabel's deterministic gzip (no time stamp, no file name), so the same
arguments give byte-identical files (on one platform and numpy version: float rounding of ``cos`` may differ
elsewhere), and case ``k`` does not depend on how many cases are made.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from custom.errors import InputError
from custom.outputs import write_nifti, write_text

__all__ = ["make_demo_data", "synthesize_case", "DemoCase", "case_id", "TISSUES", "REFERENCE_FOV_MM"]

# Field of view (mm) of the default grid 96x96x48 at 2x2x3.5 mm; the anatomy is scaled by one isotropic factor so that
# the head fits any other grid the same way.
REFERENCE_FOV_MM = np.array([192.0, 192.0, 168.0])

# Tissue labels of the label map (``DemoCase.labels``).
AIR, SKIN, FAT, SOFT, BONE, MARROW, CSF, GM, WM, VITREOUS = range(10)
TISSUES = {
    "air": AIR,
    "skin": SKIN,
    "fat": FAT,
    "soft_tissue": SOFT,
    "bone": BONE,
    "marrow": MARROW,
    "csf": CSF,
    "grey_matter": GM,
    "white_matter": WM,
    "vitreous": VITREOUS,
}
# Per-case tissue values are drawn uniformly in these ranges: (CT HU low, high), (MR low, high).
_CT_RANGE = {
    AIR: (-1000, -1000),
    SKIN: (40, 60),
    FAT: (-120, -80),
    SOFT: (30, 50),
    BONE: (1100, 1450),  # mean cortical value; modulated in space and clipped to 700..1800
    MARROW: (250, 500),
    CSF: (5, 15),
    GM: (35, 45),
    WM: (22, 32),
    VITREOUS: (5, 15),
}
_MR_RANGE = {
    AIR: (0, 0),
    SKIN: (380, 460),
    FAT: (780, 900),
    SOFT: (260, 330),
    BONE: (20, 60),
    MARROW: (450, 600),
    CSF: (60, 110),
    GM: (350, 420),
    WM: (520, 600),
    VITREOUS: (50, 90),
}
_CASE_RE = re.compile(r"^1HD\d{3}$")
_CASE_FILES = ("mr.nii.gz", "ct.nii.gz", "mask.nii.gz")


def case_id(index: int) -> str:
    """Case folder name of the ``index``-th (0-based) demo case: ``1HD001``, ``1HD002``, ..."""
    return f"1HD{index + 1:03d}"


@dataclass
class DemoCase:
    """One synthetic case: ``mr`` (float32, ≥ 0), ``ct`` (float32 HU, integer valued), ``mask`` (uint8 head mask),
    ``labels`` (uint8 tissue labels, see ``TISSUES``, before blur and noise) and the shared 4x4 RAS ``affine``."""

    case: str
    mr: np.ndarray
    ct: np.ndarray
    mask: np.ndarray
    labels: np.ndarray
    affine: np.ndarray


# ----------------------------------------------------------------------------------------------------------- helpers
def _rotation(axis: np.ndarray, degrees: float) -> np.ndarray:
    """Rotation matrix about ``axis`` (Rodrigues' formula R = I + sinθ K + (1 - cosθ) K²)."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    t = np.deg2rad(degrees)
    return np.eye(3) + np.sin(t) * kx + (1 - np.cos(t)) * kx @ kx


def _random_axis(rng: np.random.Generator) -> np.ndarray:
    v = rng.normal(size=3)
    return v / np.linalg.norm(v)


class _Frame:
    """Head-frame coordinates (mm at reference scale) of every voxel, and helpers evaluated on them."""

    def __init__(self, x: np.ndarray, y: np.ndarray, z: np.ndarray):
        self.x, self.y, self.z = x, y, z

    def field(self, rng: np.random.Generator, wavelength: float, n: int = 16) -> np.ndarray:
        """Smooth random field of unit variance: ``sqrt(2/n) Σ cos(ω_k·q + φ_k)``, |ω_k| ≈ 2π / wavelength."""
        dirs = rng.normal(size=(n, 3))
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        omega = dirs * (2 * np.pi / (wavelength * rng.uniform(0.7, 1.4, size=(n, 1))))
        phase = rng.uniform(0, 2 * np.pi, size=n)
        out = np.zeros_like(self.x)
        for (wx, wy, wz), p in zip(omega.astype(np.float32), phase.astype(np.float32)):
            out += np.cos(wx * self.x + wy * self.y + wz * self.z + p)
        return out * np.float32(np.sqrt(2.0 / n))

    def ellipsoid_sdf(self, center: Sequence[float], axes: Sequence[float]) -> np.ndarray:
        """Approximate signed distance (mm, < 0 inside) to an axis-aligned ellipsoid: k0 (k0 - 1) / k1 with
        k0 = |q/a|, k1 = |q/a²| (exact on the axes, good near the surface)."""
        u = (self.x - center[0]) / axes[0]
        v = (self.y - center[1]) / axes[1]
        w = (self.z - center[2]) / axes[2]
        k0 = np.sqrt(u * u + v * v + w * w)
        k1 = np.sqrt((u / axes[0]) ** 2 + (v / axes[1]) ** 2 + (w / axes[2]) ** 2)
        return np.where(k1 > 1e-6, k0 * (k0 - 1) / np.maximum(k1, 1e-6), -min(axes)).astype(np.float32)

    def inside(self, center: Sequence[float], axes: Sequence[float]) -> np.ndarray:
        u = (self.x - center[0]) / axes[0]
        v = (self.y - center[1]) / axes[1]
        w = (self.z - center[2]) / axes[2]
        return u * u + v * v + w * w < 1


def _smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum of two signed distances (blend radius ``k`` mm)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def _surface_y(sdf, x: float, z: float, y_from: float, y_to: float) -> float:
    """Largest y in [y_from, y_to] where the 1D profile ``sdf(x, y, z)`` is inside (< 0); ``y_from`` if none."""
    ys = np.linspace(y_from, y_to, 512, dtype=np.float32)
    d = sdf(_Frame(np.full_like(ys, x), ys, np.full_like(ys, z)))
    inside = np.nonzero(d < 0)[0]
    return float(ys[inside[-1]]) if inside.size else float(y_from)


# -------------------------------------------------------------------------------------------------------- one case
def _numbers(name: str, value, kind: type) -> list:
    """Three numbers from a sequence or a string like ``"96,96,48"`` / ``"2x2x3.5"``; InputError otherwise."""
    items = [v for v in re.split(r"[,x\s]+", value.strip("()[] ")) if v] if isinstance(value, str) else value
    try:
        numbers = [float(v) for v in items]
    except (TypeError, ValueError):
        numbers = []
    if len(numbers) != 3 or not all(np.isfinite(numbers)) or (kind is int and any(v != int(v) for v in numbers)):
        what = "integers" if kind is int else "numbers"
        raise InputError(f"{name}={value!r}: expected three {what} (x, y, z)")
    return [kind(v) for v in numbers]


MAX_VOXELS = 256**3  # a demo does not need more; keeps the peak memory (about 20 float32 volumes) below ~1.5 GB


def _check_grid(shape: Sequence[int], spacing: Sequence[float]) -> tuple[tuple[int, int, int], np.ndarray]:
    shp = tuple(_numbers("shape", shape, int))
    if min(shp) < 8 or int(np.prod(shp)) > MAX_VOXELS:
        raise InputError(f"shape={shape!r}: expected at least 8 voxels per axis and at most {MAX_VOXELS} in all")
    spc = np.array(_numbers("spacing", spacing, float), dtype=np.float64)
    if spc.min() <= 0:
        raise InputError(f"spacing={spacing!r}: expected three positive voxel sizes in mm")
    return shp, spc


def synthesize_case(
    seed: int = 0,
    index: int = 0,
    shape: Sequence[int] = (96, 96, 48),
    spacing: Sequence[float] = (2.0, 2.0, 3.5),
) -> DemoCase:
    """Make the ``index``-th demo case of ``seed`` in memory (see the module docstring for the model).

    The result depends only on ``(seed, index, shape, spacing)``.
    """
    shape, spacing = _check_grid(shape, spacing)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed={seed!r}: expected a non-negative integer")
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or index < 0:
        raise InputError(f"index={index!r}: expected a non-negative integer")
    rng = np.random.default_rng([int(seed), int(index)])
    u = rng.uniform

    # --- scanner geometry: oblique direction, anisotropic spacing, non-zero origin.
    rot = _rotation(_random_axis(rng), u(5.0, 15.0) * rng.choice([-1.0, 1.0]))
    direction = rot * spacing[None, :]  # columns = voxel steps in world mm
    center_world = u(-30.0, 30.0, size=3)
    half = (np.array(shape, dtype=np.float64) - 1) / 2
    affine = np.eye(4)
    affine[:3, :3] = direction
    affine[:3, 3] = center_world - direction @ half

    # --- head frame: world -> small pose tilt -> centred, scaled to the reference field of view.
    fov = np.array(shape) * spacing
    scale = float(np.min(fov / REFERENCE_FOV_MM))
    pose = _rotation(_random_axis(rng), u(-4.0, 4.0))
    head_center = center_world + scale * u(-4.0, 4.0, size=3)
    # q = pose^T (affine @ idx - head_center) / scale, evaluated for every voxel index.
    m = (pose.T @ direction) / scale
    b = (pose.T @ (affine[:3, 3] - head_center)) / scale
    idx = [np.arange(n, dtype=np.float32) for n in shape]
    coords = []
    for r in range(3):
        coords.append(
            m[r, 0] * idx[0][:, None, None] + m[r, 1] * idx[1][None, :, None] + m[r, 2] * idx[2][None, None, :] + b[r]
        )
    f = _Frame(*(c.astype(np.float32) for c in coords))
    x, y, z = f.x, f.y, f.z

    # --- outer head: cranium ellipsoid smoothly joined to a lower, narrower, more anterior face ellipsoid.
    ax, ay, az = u(62, 70), u(78, 86), u(68, 76)
    zc = u(-10, -3)
    cranium = (0.0, 0.0, zc)
    face_c = (0.0, u(2, 10), zc - u(45, 55))
    face_a = (ax * u(0.8, 0.88), ay * u(0.84, 0.92), u(48, 56))

    def outer_sdf(fr: _Frame) -> np.ndarray:
        return _smooth_union(fr.ellipsoid_sdf(cranium, (ax, ay, az)), fr.ellipsoid_sdf(face_c, face_a), 15.0)

    d_out = outer_sdf(f)
    depth = -d_out
    skin_t, fat_t = u(1.5, 2.5), u(2.5, 5.0)
    labels = np.zeros(shape, dtype=np.uint8)
    labels[depth > 0] = SKIN
    labels[depth > skin_t] = FAT
    labels[depth > skin_t + fat_t] = SOFT

    # --- skull: shell of varying thickness under the scalp, closed by a skull base zb(x, y).
    scalp = skin_t + fat_t + u(0.5, 2.0)
    sk_axes = (ax - scalp, ay - scalp, az - scalp)
    sk_depth = -f.ellipsoid_sdf(cranium, sk_axes)
    thick = np.clip(u(5.0, 7.5) * (1 + 0.3 * f.field(rng, 120.0)), 3.0, 12.0)
    zb0, slope = zc - u(32, 40), u(0.25, 0.35)
    fossa_depth = u(8, 14)

    def base_z(xx: np.ndarray | float, yy: np.ndarray | float) -> np.ndarray | float:
        temporal = fossa_depth * np.exp(-(((np.abs(xx) - 0.55 * ax) / 18.0) ** 2) - ((yy - 5.0) / 28.0) ** 2)
        return zb0 + slope * yy - temporal

    zb = base_z(x, y)
    base_t = u(6.0, 9.0)
    above_floor = z > zb - base_t
    skull = (sk_depth >= 0) & (sk_depth < thick) & above_floor
    intracranial = (sk_depth >= thick) & (z > zb)
    base_slab = (sk_depth >= 0) & (z > zb - base_t) & (z <= zb)
    labels[skull | base_slab] = BONE
    diploe_skull = skull & (thick > 4.5) & (sk_depth > 0.3 * thick) & (sk_depth < 0.7 * thick)
    diploe_base = base_slab & (z > zb - 0.7 * base_t) & (z < zb - 0.3 * base_t) & (sk_depth > 3.0)
    labels[diploe_skull | diploe_base] = MARROW

    # --- brain: CSF over the cortex, grey-matter ribbon with folding, white matter, sulci, fissure, ventricles.
    labels[intracranial] = CSF
    brain_d = np.minimum(sk_depth - thick, z - zb) - u(1.5, 3.0)
    brain = intracranial & (brain_d > 0)
    fold = f.field(rng, 28.0)
    gm_t = u(3.0, 4.5) * (1 + 0.35 * fold)
    labels[brain] = WM
    labels[brain & (brain_d < gm_t)] = GM
    sulci = brain & (brain_d < u(7, 11)) & (np.abs(f.field(rng, 30.0)) < 0.12)
    labels[sulci] = CSF
    v_z = 0.5 * (zc + az - scalp + zb0) - 3 + u(-4, 4)  # ventricles: about mid-height of the cerebrum
    for sgn in (-1, 1):  # deep grey nuclei, then lateral ventricles
        labels[brain & f.inside((sgn * u(14, 19), u(-6, 2), v_z - u(6, 10)), (u(8, 11), u(12, 16), u(8, 11)))] = GM
    for sgn in (-1, 1):
        vent_a = (u(4, 7), u(22, 30), u(6, 10))
        labels[brain & f.inside((sgn * u(6, 9), u(-6, 2), v_z), vent_a)] = CSF
    labels[intracranial & (np.abs(x) < u(0.8, 1.6)) & (z > v_z + 8)] = CSF  # interhemispheric fissure

    # --- face: orbits and eyes, sinuses with thin bony walls, nasal cavity, ethmoid cells.
    y_front = 0.55 * ay
    z_eye = base_z(0.0, y_front) - u(15, 19)
    x_eye, r_eye = u(29, 34), u(11, 12.5)
    y_eye = _surface_y(outer_sdf, x_eye, z_eye, 0.0, 1.5 * ay) - r_eye - u(2.5, 4.5)
    for sgn in (-1, 1):
        oc = (sgn * x_eye, y_eye - 6.0, z_eye)
        r_orbit = r_eye + u(6, 8)
        below_roof = z < zb - 0.5 * base_t  # the skull base is the orbital roof
        labels[f.inside(oc, (r_orbit + 2.0,) * 3) & (y < y_eye) & below_roof] = BONE
        labels[f.inside(oc, (r_orbit,) * 3) & below_roof] = FAT
        labels[f.inside((sgn * x_eye, y_eye, z_eye), (r_eye,) * 3) & below_roof] = VITREOUS

    def air_cell(center: Sequence[float], axes: Sequence[float], wall: float) -> None:
        labels[f.inside(center, [a + wall for a in axes]) & (depth > skin_t + fat_t)] = BONE
        labels[f.inside(center, axes) & (depth > skin_t + fat_t)] = AIR

    wall = u(1.2, 2.0)
    for sgn in (-1, 1):  # maxillary sinuses
        air_cell((sgn * u(22, 26), y_eye - u(12, 18), z_eye - u(28, 34)), (u(10, 13), u(13, 17), u(13, 17)), wall)
    air_cell((0.0, y_eye - u(8, 14), z_eye - u(20, 26)), (u(5, 7), u(18, 24), u(16, 22)), wall)  # nasal cavity
    air_cell((0.0, y_eye - u(40, 48), z_eye - u(2, 8)), (u(9, 13), u(8, 11), u(8, 11)), wall)  # sphenoid sinus
    eth_c, eth_a = (0.0, y_eye - u(8, 12), z_eye + u(0, 4)), (u(9, 12), u(14, 18), u(8, 11))
    ethmoid = f.inside(eth_c, eth_a)
    labels[ethmoid] = BONE
    labels[ethmoid & (f.field(rng, 9.0) > 0.2)] = AIR
    if u() < 0.75:  # frontal sinus in the frontal bone, above the orbits
        z_fs = base_z(0.0, y_front) + u(10, 16)
        y_fs = _surface_y(lambda fr: fr.ellipsoid_sdf(cranium, sk_axes), 0.0, z_fs, 0.0, 1.5 * ay)
        air_cell((0.0, y_fs - u(4, 6), z_fs), (u(10, 15), u(3.5, 5), u(7, 10)), wall)

    # --- neck: cervical vertebra (cortical rim, marrow), spinal canal with cord, below the skull base.
    vy, v_r = u(-22, -12), u(10, 13)
    below = z < base_z(0.0, vy) - base_t - u(6, 10)
    vert = below & ((x / v_r) ** 2 + ((y - vy) / v_r) ** 2 < 1)
    labels[vert] = BONE
    labels[vert & ((x / (v_r - 2.5)) ** 2 + ((y - vy) / (v_r - 2.5)) ** 2 < 1)] = MARROW
    cy = vy - v_r - u(7, 9)
    labels[below & ((x / 8.0) ** 2 + ((y - cy) / 7.0) ** 2 < 1) & (depth > 0)] = CSF
    labels[below & ((x / 5.0) ** 2 + ((y - cy) / 4.5) ** 2 < 1) & (depth > 0)] = WM

    mask = (depth > 0).astype(np.uint8)
    labels[mask == 0] = AIR

    # --- intensities: per-case tissue values, texture, partial-volume blur, noise.
    ct_lut = np.array([u(*_CT_RANGE[t]) for t in range(len(TISSUES))], dtype=np.float32)
    mr_lut = np.array([u(*_MR_RANGE[t]) for t in range(len(TISSUES))], dtype=np.float32)
    ct = ct_lut[labels]
    mr = mr_lut[labels]
    is_bone = labels == BONE
    bone_hu = np.clip(ct_lut[BONE] * (1 + 0.2 * f.field(rng, 60.0)), 700.0, 1800.0)
    ct[is_bone] = bone_hu[is_bone]
    texture = f.field(rng, 12.0)
    soft = (labels != AIR) & ~is_bone
    ct[soft] += (u(2.0, 4.0) * texture)[soft]
    mr *= 1 + u(0.02, 0.05) * texture
    # partial-volume / point-spread blur of about one voxel FWHM (the labels are point-sampled at voxel centres)
    ct = ndimage.gaussian_filter(ct, sigma=0.45, mode="nearest")
    mr = ndimage.gaussian_filter(mr, sigma=0.45, mode="nearest")
    ct += rng.normal(0.0, u(5.0, 10.0), size=shape).astype(np.float32)
    ct = np.clip(np.rint(ct), -1024, 3071).astype(np.float32)
    bias = np.exp(u(0.1, 0.2) * f.field(rng, 400.0, n=6))
    mr *= bias
    noise = u(8.0, 15.0)
    n1 = rng.normal(0.0, noise, size=shape).astype(np.float32)
    n2 = rng.normal(0.0, noise, size=shape).astype(np.float32)
    mr = np.sqrt((mr + n1) ** 2 + n2**2)
    mr = np.clip(np.rint(mr), 0, 4000).astype(np.float32)
    return DemoCase(case_id(index), mr, ct, mask, labels, affine)


# ----------------------------------------------------------------------------------------------------- the data set
def _readme(cases: int, seed: int, shape: tuple[int, int, int], spacing: np.ndarray) -> str:
    spc = "x".join(f"{s:g}" for s in spacing)
    return f"""Synthetic MR/CT head demo data (made by `python -m custom demo-data`)

NOT PATIENT DATA. Procedural phantoms from custom/demo/heads.py, meant to run the tools and bundles end to end
(e.g. `make demo`), not to benchmark or validate anything.

Cases: {cases} ({case_id(0)}..{case_id(cases - 1)}), seed {seed}.
Grid: {shape[0]}x{shape[1]}x{shape[2]} voxels of {spc} mm, oblique orientation, one affine per case.
Layout as SynthRAD 2023 (Task 1): <ID>/mr.nii.gz, <ID>/ct.nii.gz, <ID>/mask.nii.gz, co-registered.

- ct.nii.gz: CT in Hounsfield units (int16): air -1000, fat ~-100, brain 20-45, CSF 5-15, cortical bone 700-1800.
- mr.nii.gz: T1-weighted-like MR (int16, >= 0, arbitrary units ~0-1000): air and bone dark, fat bright, white
  matter brighter than grey matter, CSF dark, smooth bias field, Rician noise.
- mask.nii.gz: head (body) mask (uint8, 1 inside the head, sinuses included).

The same arguments give identical files. Make a datalist with `python -m custom datalist`.
"""


def _check_int(name: str, value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InputError(f"{name}={value!r}: expected an integer between {low} and {high}")
    return int(value)


def _remove_stale_cases(out: Path, cases: int) -> None:
    """Remove demo cases beyond ``cases`` left by an earlier, larger run: only folders named like demo cases that
    hold nothing but demo files, and only in a folder that has the demo README."""
    if not (out / "README.txt").is_file():
        return
    for child in sorted(out.iterdir()):
        if not (child.is_dir() and _CASE_RE.match(child.name) and int(child.name[3:]) > cases):
            continue
        if {p.name for p in child.iterdir()} <= set(_CASE_FILES):
            shutil.rmtree(child)


def make_demo_data(
    out: str,
    cases: int = 6,
    seed: int = 0,
    shape: Sequence[int] = (96, 96, 48),
    spacing: Sequence[float] = (2.0, 2.0, 3.5),
) -> str:
    """Write the demo data set: ``<out>/<ID>/{mr,ct,mask}.nii.gz`` for IDs ``1HD001``... and ``<out>/README.txt``.

    Args:
        out: output folder (created if needed). Only the demo's own files are (over)written; demo case folders
            beyond ``cases`` left by an earlier run in the same folder are removed.
        cases: number of cases (1-999).
        seed: random seed (≥ 0); the same arguments give byte-identical files.
        shape: grid size (x, y, z) in voxels; the anatomy is scaled to fit the field of view.
        spacing: voxel size (x, y, z) in mm.

    Returns:
        The output folder.

    Raises:
        InputError: bad arguments, or ``out`` exists and is not a folder.
    """
    if out is None or str(out) == "":
        raise InputError("out: an output folder is required (--out DIR)")
    cases = _check_int("cases", cases, 1, 999)
    seed = _check_int("seed", seed, 0, 2**63 - 1)
    shp, spc = _check_grid(shape, spacing)
    out_dir = Path(out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out}: exists and is not a folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    _remove_stale_cases(out_dir, cases)
    for index in range(cases):
        case = synthesize_case(seed, index, shp, spc)
        folder = out_dir / case.case
        write_nifti(case.mr, case.affine, folder / "mr.nii.gz", np.int16)
        write_nifti(case.ct, case.affine, folder / "ct.nii.gz", np.int16)
        write_nifti(case.mask, case.affine, folder / "mask.nii.gz", np.uint8)
    write_text(_readme(cases, seed, shp, spc), out_dir / "README.txt")
    return str(out_dir)
