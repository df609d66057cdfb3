"""A killed run that resumes ends exactly where an uninterrupted one does: same epoch count, and bit-identical generator
weights and generator weight average, where the bundle keeps one (the checkpoint holds networks, optimizers, LR
schedules, the trainer's own state such as CycleGAN's image pools, and every random generator, the transforms' and
samplers' too)."""

from __future__ import annotations

import pytest
import torch
from conftest import BUNDLES, bundle_data, train_workflow
from ignite.engine import Events


class Killed(Exception):
    """Stands for a kill -9 right after a checkpoint was written."""


def train(bundle: str, datalist, work, kill_after: int | None = None) -> tuple[dict, dict]:
    workflow = train_workflow(bundle, datalist, work, epochs=2)
    if kill_after is not None:
        trainer = workflow.parser.get_parsed_content("train#trainer")

        def kill(engine):
            raise Killed()

        # attached after the bundle's handlers, so the checkpoint of this epoch is already written
        trainer.add_event_handler(Events.EPOCH_COMPLETED(once=kill_after), kill)
        with pytest.raises(RuntimeError) as raised:  # MONAI's config expressions wrap what they raise
            workflow.run()
        assert isinstance(raised.value.__cause__, Killed)
        return {}, {}
    workflow.run()
    workflow.finalize()
    state = torch.load(work / "models" / "checkpoint_last.pt", map_location="cpu", weights_only=True)
    networks = {f"{name}.{k}": v for name in ("generator", "generator_average") for k, v in state.get(name, {}).items()}
    return networks, state["trainer"]


@pytest.mark.parametrize("bundle", BUNDLES)
def test_resumed_run_equals_uninterrupted_run(bundle, request, tmp_path):
    datalist = request.getfixturevalue(bundle_data(bundle).fixture)
    straight, straight_trainer = train(bundle, datalist, tmp_path / "straight")
    train(bundle, datalist, tmp_path / "resumed", kill_after=1)
    resumed, resumed_trainer = train(bundle, datalist, tmp_path / "resumed")
    assert resumed_trainer["iteration"] == straight_trainer["iteration"] == 2 * straight_trainer["epoch_length"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), f"{bundle}: {key} differs after resuming"
