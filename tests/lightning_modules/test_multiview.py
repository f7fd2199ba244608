"""MultiviewLifting: labeled MPJPE + metric loss on synchronized views, fit, test with retrieval, round trip."""

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from components.networks.multiview import MultiviewLifter
from components.networks.temporal_conv import TemporalConvLifter
from datamodules.human36m import Human36mDataModule
from lightning_modules.callbacks import ProtocolReport, RetrievalReport
from lightning_modules.multiview import MultiviewLifting


def lifter(**options) -> MultiviewLifter:
    return MultiviewLifter(filter_widths=(3, 3), channels=32, embedding_dim=16, head_channels=32, **options)


def multiview_data(**options) -> Human36mDataModule:
    options = dict(train_subjects=["S1"], subset=0.3, unlabeled_subjects=["S1", "S5"]) | options
    data = Human36mDataModule(synthetic_size="tiny", batch_size=64, receptive_field=9, **options)
    data.setup("fit")
    return data


def test_the_metric_loss_trains_the_encoder_only_and_the_pose_loss_reaches_the_head():
    data = multiview_data()
    model = MultiviewLifting(lifter(), metric_weight=1.0)
    pair = next(iter(data.train_dataloader(MultiviewLifting(lifter()).training_streams)))[0]
    assert set(pair) == {"labeled", "multiview"} and pair["multiview"].poses_3d is None
    _, embeddings = model.lifter.forward_with_embedding(pair["multiview"].keypoints_2d, strided=True)
    model.metric(embeddings, pair["multiview"]).backward()
    grads = {name: p.grad for name, p in model.lifter.named_parameters()}
    assert grads["trunk.expand_conv.weight"].abs().sum() > 0 and grads["embedding.weight"].abs().sum() > 0
    assert all(grads[name] is None for name in grads if name.startswith("head."))
    model.zero_grad()
    loss = model.training_step(pair, 0)
    loss.backward()
    assert model.lifter.head[0].weight.grad.abs().sum() > 0


def test_positive_views_share_an_instant_in_the_batch():
    data = multiview_data()
    views = next(iter(data.train_dataloader(("labeled", "multiview"))))[0]["multiview"]
    instants = torch.stack([views.recording, views.start], dim=1).reshape(-1, 4, 2)  # 4 cameras per instant
    assert (instants == instants[:, :1]).all()
    assert len(views.sequence.reshape(-1, 4).unique(dim=0)) > 1


def test_fit_test_with_retrieval_table_and_checkpoint_round_trip(tmp_path):
    data = multiview_data()
    model = MultiviewLifting(lifter(), metric_loss="infonce", tau=10, retrieval_stride=5)
    trainer = pl.Trainer(
        default_root_dir=tmp_path, max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[ModelCheckpoint(monitor="val/p1_mm"), RetrievalReport(), ProtocolReport()],
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    assert {"train/loss_metric", "train/loss_pose_mm", "val/p1_mm"} <= set(trainer.callback_metrics)
    trainer.test(model, datamodule=data)
    protocols, retrieval = model.last_tables["test"]
    assert retrieval.name == "test_retrieval"
    assert [row[0] for row in retrieval.rows] == ["embedding", "2D keypoints", "3D lifted (this model)"]
    assert all(0 <= value <= 100 for _, values in retrieval.rows for value in values)
    assert [path.name for path in tmp_path.rglob("*test_retrieval.csv")] == ["test_retrieval.csv"]
    restored = MultiviewLifting.load_from_checkpoint(trainer.checkpoint_callback.best_model_path, weights_only=False)
    assert isinstance(restored.lifter, MultiviewLifter) and restored.metric_loss == "infonce" and restored.tau == 10


def test_clear_errors():
    with pytest.raises(TypeError, match="forward_with_embedding"):
        MultiviewLifting(TemporalConvLifter(filter_widths=(3,), channels=8))
    with pytest.raises(ValueError, match="metric_loss"):
        MultiviewLifting(lifter(), metric_loss="lifted")
    data = multiview_data()
    with pytest.raises(TypeError, match="needs labeled and multi-view batches"):
        MultiviewLifting(lifter()).training_step(next(iter(data.train_dataloader(("labeled", "unlabeled"))))[0], 0)
