import math

import lightning.pytorch as pl
import pytest
import torch

from components.geometry import flip_horizontal
from components.losses import scaled_pose_loss, velocity_loss
from components.networks.dstformer import DSTformer
from components.networks.temporal_conv import TemporalConvLifter
from components.skeleton import H36M_17
from datamodules.human36m import Human36mDataModule
from lightning_modules.supervised import SupervisedLifting


def tiny_data(**options) -> Human36mDataModule:
    return Human36mDataModule(synthetic_size="tiny", batch_size=256, **options)


def small_lifter(**options) -> TemporalConvLifter:
    return TemporalConvLifter(filter_widths=(3, 3), channels=32, **options)


def trainer(tmp_path, **options) -> pl.Trainer:
    defaults = dict(
        default_root_dir=tmp_path, accelerator="cpu", max_epochs=2, logger=False, enable_progress_bar=False,
        enable_model_summary=False, enable_checkpointing=False,
    )  # fmt: skip
    return pl.Trainer(**(defaults | options))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 2-epoch fit of a small lifter with a trajectory model on the tiny synthetic set, then a test run."""
    folder = tmp_path_factory.mktemp("fit")
    model = SupervisedLifting(small_lifter(), trajectory_model=small_lifter(num_joints_out=1))
    data = tiny_data(receptive_field=model.receptive_field)
    run = trainer(folder)
    untrained = run.test(model, datamodule=data, verbose=False)[0]
    run.fit(model, datamodule=data)
    trained = run.test(model, datamodule=data, verbose=False)[0]
    return model, data, untrained, trained


def test_training_lowers_every_protocol(fitted):
    model, data, untrained, trained = fitted
    for key in ("test/p1_mm", "test/p2_mm", "test/p3_mm", "test/traj_mm"):
        assert trained[key] < untrained[key], key
    assert set(trained) == {"test/p1_mm", "test/p2_mm", "test/p3_mm", "test/mpjve_mm", "test/traj_mm"}


def test_every_test_frame_is_evaluated_once(fitted):
    model, data, *_ = fitted
    frames = sum(len(s) for s in data.sequences["test"])
    metrics = model.metrics["test"].overall
    # The table was reset after reporting; re-run the shared evaluation over the test loader.
    for index, batch in enumerate(data.test_dataloader()):
        model.test_step(batch, index)
    assert int(metrics["P1"].count.sum()) == frames
    assert int(metrics["MPJVE"].count.sum()) == frames - len(data.sequences["test"])
    for metric in metrics.values():
        metric.reset()


def test_result_table_is_action_wise(fitted):
    model, data, _, trained = fitted
    table = model.last_tables["test"][0]
    labels = [label for label, _ in table.rows]
    assert labels[:-1] == list(data.action_groups) and labels[-1] == "average"
    p1 = [values[0] for _, values in table.rows]
    assert p1[-1] == pytest.approx(sum(p1[:-1]) / len(p1[:-1]))
    assert p1[-1] == pytest.approx(trained["test/p1_mm"], rel=1e-5)


def test_clips_batched_per_step_score_like_one_clip_per_step(tmp_path):
    # 27-frame clips of a DSTformer, one per step or 16 of a length per step: the same frames, the same tables
    torch.manual_seed(0)
    model = SupervisedLifting(DSTformer(in_features=2, dim_feat=16, dim_rep=16, depth=1, num_heads=4, maxlen=27))
    tables, steps = [], []
    for eval_batch_size in (1, 16):
        data = tiny_data(eval_chunk_length=27, eval_batch_size=eval_batch_size, val_fraction=0)
        trainer(tmp_path).test(model, datamodule=data, verbose=False)
        tables.append(model.last_tables["test"][0].rows)
        steps.append(len(data.test_dataloader()))
    frames = sum(len(s) for s in data.sequences["test"])
    assert steps[0] >= frames / 27 and steps[1] < steps[0] / 4
    (labels, one), (batched_labels, batched) = ([list(t) for t in zip(*rows, strict=True)] for rows in tables)
    assert labels == batched_labels
    torch.testing.assert_close(torch.tensor(batched), torch.tensor(one), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize(
    "lifter",
    [small_lifter, lambda: DSTformer(in_features=2, dim_feat=16, dim_rep=16, depth=1, num_heads=4, maxlen=20)],
    ids=["temporal_conv", "dstformer"],
)
def test_flip_averaged_prediction_is_mirror_equivariant(lifter):
    torch.manual_seed(0)
    model = SupervisedLifting(lifter()).eval()
    x = torch.randn(2, 20, 17, 2)
    with torch.no_grad():
        direct = model.lift(flip_horizontal(x, H36M_17), flip=True)
        mirrored = flip_horizontal(model.lift(x, flip=True), H36M_17)
    assert torch.allclose(direct, mirrored, atol=1e-6)


def test_bn_momentum_decays_from_start_to_end(tmp_path):
    model = SupervisedLifting(small_lifter(), bn_momentum=(0.1, 0.001))
    seen = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, module, *args):
            seen.append(module.lifter.expand_bn.momentum)

    data = tiny_data(receptive_field=model.receptive_field)
    trainer(tmp_path, max_epochs=1, callbacks=[Record()], limit_val_batches=0).fit(model, datamodule=data)
    steps = len(seen)
    assert seen[0] == pytest.approx(0.1)
    assert seen[-1] == pytest.approx(0.1 * math.exp((steps - 1) / steps * math.log(0.01)))
    assert all(a > b for a, b in zip(seen, seen[1:], strict=False))


def test_training_uses_the_strided_twin():
    model = SupervisedLifting(small_lifter())
    data = tiny_data(receptive_field=model.receptive_field)
    data.setup("fit")
    batch = next(iter(data.train_dataloader()))
    calls = []
    model.lifter.register_forward_hook(lambda module, args, kwargs, out: calls.append(kwargs), with_kwargs=True)
    with pytest.warns(UserWarning, match="not registered on the model yet"):  # self.log without a Trainer
        model.training_step(batch, 0)
    assert calls == [{"strided": True}]


def test_bad_schedule_is_rejected():
    with pytest.raises(ValueError, match="bn_schedule must be 'step' or 'epoch', got 'batch'"):
        SupervisedLifting(small_lifter(), bn_schedule="batch")


def test_sequence_recipe_terms_and_optimizer():
    torch.manual_seed(0)
    lifter = DSTformer(in_features=2, dim_feat=16, dim_rep=16, depth=1, num_heads=4, maxlen=8)
    model = SupervisedLifting(lifter, velocity_weight=20.0, scale_weight=0.5, weight_decay=0.01, amsgrad=False)
    target = torch.randn(2, 8, 17, 3)
    pred = 0.5 * target + 0.01 * torch.randn(2, 8, 17, 3)
    losses = model.labeled_losses(pred, target)
    assert losses.keys() == {"pose", "velocity", "scaled"}
    assert torch.allclose(losses["velocity"], 20 * velocity_loss(pred, target))
    assert torch.allclose(losses["scaled"], 0.5 * scaled_pose_loss(pred, target))
    assert losses["scaled"] < 0.5 * losses["pose"]  # the prediction is half the size: the scaled term forgives that
    optimizer = model.configure_optimizers()["optimizer"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == 0.01
    assert not optimizer.defaults["amsgrad"]
    plain = SupervisedLifting(small_lifter()).configure_optimizers()["optimizer"]
    assert type(plain) is torch.optim.Adam and plain.defaults["amsgrad"]
    with pytest.raises(ValueError, match="scale_weight must be >= 0, got -1"):
        SupervisedLifting(small_lifter(), scale_weight=-1)
