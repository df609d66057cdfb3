"""Image history pool: the discriminator sees earlier synthetic images too, not only the generator's latest ones.

Reference: A. Shrivastava et al., "Learning from Simulated and Unsupervised Images through Adversarial Training", CVPR
2017, sec. 2.3 (history of refined images); J.-Y. Zhu et al., "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017, sec. 4 (a pool of 50 images).

For each image of a batch, in order: while the pool holds fewer than ``size`` images, the image is stored and returned;
once it is full, with probability ``p`` a uniformly chosen stored image is returned and the new image takes its place,
otherwise the new image is returned and the pool is unchanged. ``size = 0`` returns the batch as it is.
"""

from __future__ import annotations

import torch

__all__ = ["ImagePool"]


class ImagePool:
    """History of generated images for a discriminator (see the module docstring).

    Args:
        size: number of images kept, >= 0 (CycleGAN: 50).
        p: probability of returning (and replacing) a stored image once the pool is full, in [0, 1].
        generator: random generator of the choices (default: torch's global one, seeded by
            ``monai.utils.set_determinism``).

    Its images are part of the trainer's ``state_dict`` (``custom.engines.CycleGanTrainer``), so a resumed run
    continues with the same pool.
    """

    def __init__(self, size: int = 50, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"ImagePool: size must be an integer >= 0, got {size!r}.")
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"ImagePool: p must be in [0, 1], got {p!r}.")
        self.size, self.p, self.generator = size, float(p), generator
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    def state_dict(self) -> dict:
        """The stored images, one stacked tensor (empty pool: a 0-length tensor)."""
        return {"images": torch.stack(self.images) if self.images else torch.empty(0)}

    def load_state_dict(self, state: dict) -> None:
        images = state["images"]
        if len(images) > self.size:
            raise ValueError(f"ImagePool: the saved pool holds {len(images)} images, more than its size {self.size}.")
        self.images = [image.clone() for image in images]

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch of the same shape as ``images`` (detached): new and stored images, updating the pool."""
        images = images.detach()
        if self.size == 0:
            return images
        if self.images and images.shape[1:] != self.images[0].shape:
            raise ValueError(
                f"ImagePool: images of shape {tuple(images.shape[1:])} cannot join a pool of "
                f"{tuple(self.images[0].shape)} images (patches of one size per pool)."
            )
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < self.p:
                k = int(torch.randint(len(self.images), (), generator=self.generator))
                out.append(self.images[k])
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)
