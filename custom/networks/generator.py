"""A generator whose definition is plain data: an image-to-image network named by its class, then an output activation.

    G(x) = act(backbone(x)),   backbone = <class>(**kwargs),   act e.g. tanh (CT in [-1, 1])

Why not ``Sequential(network_def, Tanh)``: the weights saved by training must load *strictly* into the bundle's
``network_def`` (MONAI Label, the model zoo's checks and ``ckpt_export network_def`` build ``network_def`` and load
``model.pt`` into it), so the output activation belongs inside it. And because the backbone is given by name and
keyword arguments, :meth:`Generator.definition` returns a JSON-able config that rebuilds the same network: training
writes it beside the weights, and ``python -m custom infer --ckpt model.pt`` needs no config to rebuild the model.
"""

from __future__ import annotations

from typing import Any

import torch
from monai.networks.layers.factories import Act
from monai.utils import optional_import

__all__ = ["Generator"]


def _locate(name: str) -> type[torch.nn.Module]:
    """A class from a dotted path (``monai.networks.nets.UNet``) or a name in ``monai.networks.nets``."""
    path = name if "." in name else f"monai.networks.nets.{name}"
    module, _, attr = path.rpartition(".")
    cls, found = optional_import(module, name=attr)
    if not found or not isinstance(cls, type) or not issubclass(cls, torch.nn.Module):
        raise ValueError(
            f"Generator: backbone {name!r} is not a torch.nn.Module class (e.g. 'monai.networks.nets.UNet')"
        )
    return cls


class Generator(torch.nn.Module):
    """``act(backbone(x))`` with the backbone built from its class name and keyword arguments.

    Args:
        backbone: class of the network, a dotted path or a name in ``monai.networks.nets`` (``"UNet"``,
            ``"BasicUNet"``, ``"AttentionUnet"``, ``"SwinUNETR"``, ...).
        output_act: MONAI activation name (``"tanh"``, ``"sigmoid"``, ...) or None for no activation.
        kwargs: the backbone's arguments, e.g. ``spatial_dims=2, in_channels=1, out_channels=1, channels=[...]``.

    Example (bundle config)::

        "network_def": {"_target_": "custom.networks.Generator", "backbone": "monai.networks.nets.UNet",
                        "output_act": "tanh", "spatial_dims": 2, "in_channels": 1, "out_channels": 1,
                        "channels": [64, 128, 256, 512, 512], "strides": [2, 2, 2, 2], "num_res_units": 0}
    """

    def __init__(self, backbone: str = "monai.networks.nets.UNet", output_act: str | None = "tanh", **kwargs: Any):
        super().__init__()
        self._definition = {"backbone": str(backbone), "output_act": output_act, **kwargs}
        self.backbone = _locate(str(backbone))(**kwargs)
        self.act = torch.nn.Identity() if output_act is None else Act[str(output_act).upper()]()

    def definition(self) -> dict[str, Any]:
        """The bundle-config definition of this network (``_target_`` and arguments), JSON-able."""
        return {"_target_": "custom.networks.Generator", **_json_able(self._definition)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.backbone(x))


def _json_able(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_able(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_able(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"Generator: argument value {value!r} cannot be saved with the model; use plain JSON values.")
