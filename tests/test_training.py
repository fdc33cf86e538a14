"""The generic training loop: learning, best-epoch selection, exact resume after a kill, DDP."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hsi_core.training import adam, fit, load_weights, step

REPO = Path(__file__).resolve().parents[1]


def _problem(n=40):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 5, generator=g)
    y = x @ torch.randn(5, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
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


def _weights_equal(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_loss_falls_and_best_is_kept(tmp_path):
    data = _problem()
    result = fit(_model(), data, loss_fn=_loss, epochs=6, run_dir=tmp_path, batch_size=8, lr=1e-2,
                 val_fn=_val(data), progress=False, meta={"init": "random"})
    assert result.completed and len(result.history) == 6
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    best = min(h["val_loss"] for h in result.history)
    assert result.history[result.best_epoch - 1]["val_loss"] == best and result.best_path.is_file()
    reloaded = _model()
    info = load_weights(reloaded, result.best_path)
    assert info["epoch"] == result.best_epoch and info["meta"] == {"init": "random"}
    assert json.loads((tmp_path / "history.json").read_text()) == result.history


def test_dataloader_val_loader_and_factories(tmp_path):
    """The loader form of the API: batch size from the DataLoader, mean loss on ``val_loader`` as
    ``val_loss`` when no ``val_fn`` is given, the step decay applied once per epoch."""
    data = _problem(60)
    train, val = torch.utils.data.Subset(data, range(40)), torch.utils.data.Subset(data, range(40, 60))
    result = fit(_model(), DataLoader(train, batch_size=10), loss_fn=_loss, epochs=4, run_dir=tmp_path,
                 optimizer_factory=adam(1e-2), scheduler_factory=step(2, 0.5),
                 val_loader=DataLoader(val, batch_size=10), progress=False)
    assert [h["lr"] for h in result.history] == pytest.approx([1e-2, 5e-3, 5e-3, 2.5e-3])
    assert all("val_loss" in h for h in result.history)
    assert result.history[-1]["val_loss"] < result.history[0]["val_loss"]


@pytest.mark.parametrize("interrupt", ["max_steps", "exception"])
def test_killed_mid_epoch_and_resumed_ends_identical(tmp_path, interrupt):
    """A run stopped in the middle of epoch 2 (by ``max_steps``, or by an error raised inside a step
    after the last step checkpoint) and started again from its ``last.pt`` by a fresh model ends with
    bit-identical weights and history (train and validation losses) to an uninterrupted run."""
    data = _problem()
    kwargs = dict(epochs=3, batch_size=8, lr=1e-2, val_fn=_val(data), progress=False, lr_step=1, lr_gamma=0.5,
                  checkpoint_every_steps=2)
    straight = _model()
    full = fit(straight, data, loss_fn=_loss, run_dir=tmp_path / "a", **kwargs)
    assert full.completed
    interrupted = _model()
    if interrupt == "max_steps":  # 5 steps per epoch: stopped after step 2 of epoch 2
        partial = fit(interrupted, data, loss_fn=_loss, run_dir=tmp_path / "b", max_steps=7, **kwargs)
        assert not partial.completed
    else:
        calls = {"n": 0}

        def crashing_loss(model, batch, device):
            calls["n"] += 1
            if calls["n"] == 9:  # epoch 2, step 4: the last checkpoint is at step 2 of epoch 2
                raise RuntimeError("simulated kill")
            return _loss(model, batch, device)

        with pytest.raises(RuntimeError, match="simulated kill"):
            fit(interrupted, data, loss_fn=crashing_loss, run_dir=tmp_path / "b", **kwargs)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert (state["epoch"], state["step"]) == (1, 2)
    assert not _weights_equal(interrupted, straight)
    resumed_model = _model()  # a fresh process rebuilds the model from scratch
    resumed = fit(resumed_model, data, loss_fn=_loss, run_dir=tmp_path / "b", **kwargs)
    assert resumed.completed
    assert _weights_equal(straight, resumed_model)
    assert full.history == resumed.history
    assert full.best_epoch == resumed.best_epoch


def test_workers_persistent_loader_same_run_and_exact_resume(tmp_path):
    """Two persistent DataLoader workers serve every epoch (one loader) and change nothing: a run with
    workers, killed mid-epoch 2 and resumed, ends bit-identical to a straight run without workers."""
    data = _problem()
    kwargs = dict(epochs=3, batch_size=8, lr=1e-2, val_fn=_val(data), progress=False, checkpoint_every_steps=2)
    straight = _model()
    full = fit(straight, data, loss_fn=_loss, run_dir=tmp_path / "a", **kwargs)
    killed = _model()
    assert not fit(killed, data, loss_fn=_loss, run_dir=tmp_path / "b", max_steps=7, num_workers=2, **kwargs).completed
    resumed_model = _model()
    resumed = fit(resumed_model, data, loss_fn=_loss, run_dir=tmp_path / "b", num_workers=2, **kwargs)
    assert resumed.completed and _weights_equal(straight, resumed_model)
    assert full.history == resumed.history


def test_finished_checkpoint_drops_optimizer_and_summary_states_sizes(tmp_path):
    """``keep_optimizer=False``: the finished ``last.pt`` holds the weights but no optimiser state
    (``best.pt`` never does); ``summary.json`` states both files' sizes; the run cannot be extended,
    but calling it again with the same epochs reloads the finished weights."""
    data = _problem()
    model = _model()
    fit(model, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, val_fn=_val(data), progress=False,
        keep_optimizer=False)
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    best = torch.load(tmp_path / "best.pt", weights_only=False)
    assert "optimizer" not in last and "optimizer" not in best and last["epoch"] == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["checkpoint_bytes"] == {name: (tmp_path / name).stat().st_size for name in ("best.pt", "last.pt")}
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["best.pt", "last.pt"]
    again = _model()
    assert fit(again, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False).completed
    assert _weights_equal(model, again)
    with pytest.raises(ValueError, match="without its optimiser state"):
        fit(_model(), data, loss_fn=_loss, epochs=3, run_dir=tmp_path, progress=False)
    kept = tmp_path / "kept"
    fit(_model(), data, loss_fn=_loss, epochs=1, run_dir=kept, progress=False)
    assert "optimizer" in torch.load(kept / "last.pt", weights_only=False)  # the default keeps it


def test_speedups_default_on_cuda_only():
    """bf16 autocast and channels-last: on by default on CUDA, off on the CPU, and a switch sets them."""
    from hsi_core.training import loader_options, resolve_speedups

    assert resolve_speedups("cuda", None, None) == (True, True)
    assert resolve_speedups("cuda", False, None) == (False, True)
    assert resolve_speedups("cuda", None, False) == (True, False)
    assert resolve_speedups("cpu", None, None) == (False, False)
    assert resolve_speedups("cpu", True, True) == (True, True)      # asked for explicitly: kept, not ignored
    assert loader_options("cuda", 4) == {"num_workers": 4, "pin_memory": True, "persistent_workers": True,
                                         "prefetch_factor": 4}
    assert loader_options("cpu", 0) == {"num_workers": 0, "pin_memory": False}


@pytest.mark.parametrize("device", ["cpu", "cuda"])
@pytest.mark.parametrize("amp", [None, True, False])
def test_training_and_prediction_share_one_precision_policy(device, amp):
    """The training loop and prediction decide bf16 autocast the same way on every device (they once
    disagreed on the CPU: predict honoured amp=True, fit ignored it). Catches either caller keeping a
    rule of its own; only the device type is read, so no GPU is needed."""
    from hsi_core import predict, training

    assert training.resolve_speedups(device, amp, None)[0] == predict.use_amp(torch.device(device), amp)
    # prediction's single knob: channels-last follows the policy's device default unless amp=False
    assert predict.inference_speedups(device, amp)[1] == (device == "cuda" and amp is not False)


def test_fit_runs_bfloat16_on_the_cpu_when_asked(tmp_path):
    """``fit(amp=True)`` on the CPU trains under bf16 autocast and says so in its summary, as prediction
    does. Catches a loop that drops the explicit request on the CPU (summary amp_bf16 False)."""
    import json

    seen = []
    model = _model()
    data = [(torch.rand(5), torch.rand(1)) for _ in range(4)]

    def loss_fn(net, batch, dev):
        seen.append(torch.is_autocast_enabled("cpu"))
        x, y = batch
        return ((net(x.to(dev)).float() - y.to(dev)) ** 2).mean()

    fit(model, data, loss_fn=loss_fn, epochs=1, batch_size=2, run_dir=tmp_path, progress=False, amp=True)
    assert seen and all(seen)
    assert json.loads((tmp_path / "summary.json").read_text())["amp_bf16"] is True


def test_a_finished_run_is_not_trained_again(tmp_path):
    data = _problem()
    model = _model()
    fit(model, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False)
    again = _model()
    result = fit(again, data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False)
    assert result.completed and len(result.history) == 2
    assert _weights_equal(model, again)


def test_same_seed_same_run_other_seed_other_run(tmp_path):
    data = _problem()
    a, b, c = _model(), _model(), _model()
    fit(a, data, loss_fn=_loss, epochs=2, run_dir=tmp_path / "a", seed=3, progress=False)
    fit(b, data, loss_fn=_loss, epochs=2, run_dir=tmp_path / "b", seed=3, progress=False)
    fit(c, data, loss_fn=_loss, epochs=2, run_dir=tmp_path / "c", seed=4, progress=False)
    assert _weights_equal(a, b) and not _weights_equal(a, c)


def test_bad_arguments_raise(tmp_path):
    data = _problem()
    with pytest.raises(ValueError, match="empty"):
        fit(_model(), TensorDataset(torch.zeros(0, 5), torch.zeros(0, 1)), loss_fn=_loss, epochs=1, run_dir=tmp_path)
    with pytest.raises(ValueError, match="'min' or 'max'"):
        fit(_model(), data, loss_fn=_loss, epochs=1, run_dir=tmp_path, select_best=("val_loss", "up"))
    with pytest.raises(FloatingPointError, match="non-finite"):
        fit(_model(), data, loss_fn=lambda m, b, d: _loss(m, b, d) * float("nan"), epochs=1,
            run_dir=tmp_path / "nan", progress=False)
    with pytest.raises(KeyError, match="val_auc"):
        fit(_model(), data, loss_fn=_loss, epochs=1, run_dir=tmp_path / "k", val_fn=_val(data),
            select_best=("val_auc", "max"), progress=False)
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_weights(_model(), tmp_path / "nowhere.pt")


DDP_SCRIPT = """
import os, sys, torch
from torch import nn
from torch.utils.data import TensorDataset
sys.path.insert(0, {repo!r})
from hsi_core.training import fit
torch.manual_seed(0)
x = torch.randn(48, 5); y = x.sum(1, keepdim=True)
torch.manual_seed(1)
model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1))
loss = lambda m, b, d: nn.functional.mse_loss(m(b[0]), b[1])
result = fit(model, TensorDataset(x, y), loss_fn=loss, epochs=3, run_dir={run_dir!r}, batch_size=6, lr=1e-2,
             progress=False)
rank = int(os.environ["RANK"])
torch.save({{"model": model.state_dict(), "history": result.history}}, {run_dir!r} + f"/rank{{rank}}.pt")
"""


def test_ddp_two_gloo_processes_end_identical(tmp_path):
    """torchrun with two CPU processes (gloo): both ranks end with the same weights, the loss falls,
    and rank 0 wrote the checkpoint (each rank saw half of every epoch: 4 steps of 6)."""
    script = tmp_path / "ddp_fit.py"
    script.write_text(textwrap.dedent(DDP_SCRIPT.format(repo=str(REPO), run_dir=str(tmp_path / "run"))))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script)], capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = torch.load(tmp_path / "run" / "rank0.pt")
    r1 = torch.load(tmp_path / "run" / "rank1.pt")
    for a, b in zip(r0["model"].values(), r1["model"].values()):
        assert torch.equal(a, b)
    assert r0["history"] == r1["history"]  # train loss averaged across ranks
    assert r0["history"][-1]["train_loss"] < r0["history"][0]["train_loss"]
    last = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert last["world_size"] == 2 and last["epoch"] == 3
    for a, b in zip(last["model"].values(), r0["model"].values()):
        assert torch.equal(a, b)


def test_resumable_state_every_k_epochs_resumes_identical_and_writes_less(tmp_path):
    """``resumable_every_epochs=2``: of 5 epochs only epochs 2, 4 and 5 write ``last.pt``/``best.pt``
    (bytes written a fraction of the every-epoch policy's); a run killed in epoch 4 resumes from epoch
    2's state, redoes epoch 3 and ends bit-identical (weights, history, best epoch, best.pt) to a run
    that checkpointed every epoch. Planted bugs caught (by the bytes written): last.pt written every
    epoch regardless of k; best.pt written at every improvement instead of with the resumable state."""
    data = _problem()
    common = dict(epochs=5, batch_size=8, lr=1e-2, val_fn=_val(data), progress=False, lr_step=2, lr_gamma=0.5)
    every = _model()
    a = fit(every, data, loss_fn=_loss, run_dir=tmp_path / "a", **common)
    calls = {"n": 0}

    def crashing_loss(model, batch, device):
        calls["n"] += 1
        if calls["n"] == 18:  # 5 steps per epoch: epoch 4, step 3
            raise RuntimeError("simulated kill")
        return _loss(model, batch, device)

    with pytest.raises(RuntimeError, match="simulated kill"):
        fit(_model(), data, loss_fn=crashing_loss, run_dir=tmp_path / "b", resumable_every_epochs=2, **common)
    state = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert (state["epoch"], state["step"]) == (2, 0) and "optimizer" in state
    resumed_model = _model()
    b = fit(resumed_model, data, loss_fn=_loss, run_dir=tmp_path / "b", resumable_every_epochs=2, **common)
    assert b.completed and _weights_equal(every, resumed_model)
    assert a.history == b.history and a.best_epoch == b.best_epoch
    best_a = torch.load(tmp_path / "a" / "best.pt", weights_only=False)
    best_b = torch.load(tmp_path / "b" / "best.pt", weights_only=False)
    assert best_a["epoch"] == best_b["epoch"]
    assert all(torch.equal(best_a["model"][k], best_b["model"][k]) for k in best_a["model"])
    sparse = fit(_model(), data, loss_fn=_loss, run_dir=tmp_path / "c", resumable_every_epochs=2, **common)
    last_size = (tmp_path / "c" / "last.pt").stat().st_size
    assert a.bytes_written >= 5 * last_size  # every epoch wrote last.pt
    best_size = (tmp_path / "c" / "best.pt").stat().st_size
    improved = sum(h["val_loss"] < min([g["val_loss"] for g in sparse.history[:i]], default=float("inf"))
                   for i, h in enumerate(sparse.history))
    assert improved > 3  # so writing best.pt at each improvement would show in the bytes
    assert sparse.bytes_written <= 3 * last_size + 3 * best_size
    assert sparse.bytes_written < a.bytes_written
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    assert summary["checkpoint_bytes_written"] == sparse.bytes_written


def test_stale_temporary_files_are_removed_on_resume(tmp_path):
    """A kill in the middle of a save leaves ``.last.pt.XXXX.tmp`` (``io.atomic_open``); the next
    ``fit`` in that folder removes it and leaves the real checkpoints. Planted bug caught: not
    cleaning up (the temporary file stays)."""
    data = _problem()
    fit(_model(), data, loss_fn=_loss, epochs=1, run_dir=tmp_path, progress=False)
    stale = tmp_path / ".last.pt.abc123.tmp"
    stale.write_bytes(b"half a checkpoint")
    fit(_model(), data, loss_fn=_loss, epochs=2, run_dir=tmp_path, progress=False)
    assert not stale.exists() and (tmp_path / "last.pt").is_file()


def test_reduction_tensor_lives_on_the_backends_device(monkeypatch):
    """NCCL rejects CPU tensors: the loss reduction is built on the rank's CUDA device under NCCL and on
    the CPU under gloo. The collective is intercepted (no GPU needed) and records the tensor's device.
    Planted bug caught: the reduction tensor built on the CPU whatever the device."""
    import torch.distributed as dist

    from hsi_core import training

    seen = []

    class Stop(Exception):
        pass

    def fake_all_reduce(tensor, *args, **kwargs):
        seen.append(tensor.device)
        raise Stop

    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    assert training.reduction_device("cuda:1") == torch.device("cuda", 1)
    assert training.reduction_device("cpu") == torch.device("cpu")
    # "meta" stands in for a device that is not the CPU (it has no data, as a CUDA tensor here would not)
    monkeypatch.setattr(training, "reduction_device", lambda device: torch.device("meta"))
    with pytest.raises(Stop):
        training._mean_across_ranks([1.0, 2.0], 2, "cuda:0")
    assert seen == [torch.device("meta")]
    monkeypatch.undo()
    monkeypatch.setattr(dist, "all_reduce", fake_all_reduce)
    with pytest.raises(Stop):
        training._mean_across_ranks([1.0], 2, "cpu")
    assert seen[-1] == torch.device("cpu")
