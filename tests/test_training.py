import torch
from torch import nn
from torch.utils.data import TensorDataset

from hsi_core.training import fit


def _problem():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(40, 1, generator=g)
    return TensorDataset(x, y)


def _model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(5, 8), nn.Dropout(0.2), nn.ReLU(), nn.Linear(8, 1))


def _loss(model, batch, device):
    x, y = (t.to(device) for t in batch)
    return nn.functional.mse_loss(model(x), y)


def _val(data):
    def val(model, device):
        x, y = data.tensors
        return {"val_loss": float(nn.functional.mse_loss(model(x), y))}
    return val


def test_loss_falls_and_best_is_kept(tmp_path):
    data = _problem()
    result = fit(_model(), data, loss_fn=_loss, epochs=6, run_dir=tmp_path, batch_size=8, lr=1e-2,
                 val_fn=_val(data), progress=False)
    assert result.completed and len(result.history) == 6
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    best = min(h["val_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] == best and result.best_path.is_file()


def test_killed_mid_epoch_and_resumed_ends_identical(tmp_path):
    data = _problem()
    kwargs = dict(loss_fn=_loss, epochs=3, batch_size=8, lr=1e-2, val_fn=_val(data), progress=False, lr_step=1, lr_gamma=0.5)
    straight = _model()
    full = fit(straight, data, run_dir=tmp_path / "a", **kwargs)
    interrupted = _model()
    partial = fit(interrupted, data, run_dir=tmp_path / "b", max_steps=7, **kwargs)  # 5 steps per epoch: killed in epoch 2
    assert not partial.completed
    resumed_model = _model()  # a fresh process would rebuild the model from scratch
    resumed = fit(resumed_model, data, run_dir=tmp_path / "b", **kwargs)
    assert resumed.completed
    for a, b in zip(straight.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)
    assert [h["val_loss"] for h in full.history] == [h["val_loss"] for h in resumed.history]


def test_a_finished_run_is_not_trained_again(tmp_path):
    data = _problem()
    model = _model()
    fit(model, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False)
    before = [p.clone() for p in model.parameters()]
    again = _model()
    result = fit(again, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False)
    assert result.completed
    for a, b in zip(before, again.parameters()):
        assert torch.equal(a, b)
