"""SliceContextGenerator (2.5D): each output slice sees its neighbours; volumes and slabs agree; records accept it."""

from __future__ import annotations

import pytest
import torch

from custom.errors import InputError
from custom.model_record import check_model_record
from custom.networks import Generator, SliceContextGenerator


def small(context: int = 1, **kwargs) -> SliceContextGenerator:
    torch.manual_seed(0)
    args = dict(backbone="monai.networks.nets.BasicUNet", spatial_dims=2, in_channels=2 * context + 1, out_channels=1,
                features=[4, 4, 4, 4, 4, 4])  # fmt: skip
    return SliceContextGenerator(context=context, **{**args, **kwargs}).eval()


@pytest.mark.parametrize("context", [1, 2])
def test_each_volume_slice_is_the_network_of_its_slab(context):
    net = small(context, slices_per_batch=3)
    volume = torch.randn(2, 1, 32, 32, 5)
    with torch.no_grad():
        out = net(volume)
        assert out.shape == (2, 1, 32, 32, 5)
        for z in range(5):
            index = [min(max(z + k, 0), 4) for k in range(-context, context + 1)]  # ends repeated
            slab = volume[:, 0][..., index].permute(0, 3, 1, 2)  # (B, 2r + 1, H, W)
            torch.testing.assert_close(out[..., z], net(slab), rtol=1e-5, atol=1e-6)


def test_output_depends_on_the_neighbours():
    net = small(1)
    volume = torch.randn(1, 1, 32, 32, 4)
    changed = volume.clone()
    changed[..., 2] += 1.0  # slice 2 is a neighbour of slices 1 and 3, not of slice 0
    with torch.no_grad():
        a, b = net(volume), net(changed)
    assert torch.equal(a[..., 0], b[..., 0])
    assert not torch.allclose(a[..., 1], b[..., 1]) and not torch.allclose(a[..., 3], b[..., 3])


@pytest.mark.parametrize(
    "kwargs, message",
    [({"context": 0}, "context"), ({"in_channels": 1}, "in_channels must be 2"), ({"spatial_dims": 3}, "2D"),
     ({"slices_per_batch": 0}, "slices_per_batch")],
)  # fmt: skip
def test_arguments_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_wrong_inputs_name_the_expected_shapes():
    net = small(1)
    with pytest.raises(ValueError, match=r"expected 3 slices as channels"):
        net(torch.randn(1, 1, 16, 16))  # one slice alone: a 2D inferer was used
    with pytest.raises(ValueError, match=r"volumes \(B, 1, H, W, D\)"):
        net(torch.randn(1, 2, 16, 16, 4))


def test_definition_rebuilds_it_and_a_record_accepts_it(tmp_path):
    net = small(2)
    definition = net.definition()
    assert definition["_target_"] == "custom.networks.SliceContextGenerator" and definition["context"] == 2
    rebuilt = SliceContextGenerator(**{k: v for k, v in definition.items() if k != "_target_"})
    rebuilt.load_state_dict(net.state_dict(), strict=True)
    assert isinstance(rebuilt, Generator)
    check_model_record({"network_def": definition}, where="model.json")
    bad = {**definition, "backbone": "os.system"}  # a subclass's backbone is checked like the Generator's
    with pytest.raises(InputError, match="backbone"):
        check_model_record({"network_def": bad}, where="model.json")
