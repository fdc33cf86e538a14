"""The whole HSI experiment (``run_hsi_tables``: Algorithm 1's cache, the free-viewing cache, pretraining,
one held-out fold of finetuning, the model for Table 4, the summary) under ``torchrun`` with two CPU
processes (gloo), at tiny settings (64 px, one epoch each, generated stand-in CLIP weights, the whole
model trained as in the paper).

Each rank runs the experiment with its file writes, cache preparations, cache reads and trained models
recorded (``DISTRIBUTED_SCRIPT``); the test then checks one consistent run directory. Planted bugs
it catches (each checked to fail): ``prepare`` run on every rank (rank 1 prepares, or both ranks race
on the same shards and ``.partial`` folder); no barrier after ``prepare`` (rank 1 reads a cache that is
not there yet); the summary and ``hsi_finetuned.pt`` written by every rank; ``fit``'s checkpoints
written by every rank; no ``DistributedDataParallel`` (the ranks' weights drift apart); BatchNorm
statistics left as each rank's own batches made them (the ranks' models, validation losses and
scores differ from what rank 0 saved).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
TIMEOUT_S = 300  # the run takes about 1.5 min of CPU; a deadlock fails here instead of hanging

DISTRIBUTED_SCRIPT = """
import contextlib, hashlib, json, os, sys, time
from pathlib import Path
import torch
sys.path.insert(0, {repo!r})
torch.set_num_threads(1)
from hsi_core import evaluation, io, pseudo_labels
from hsi_core.experiments import hsi_tables

rank = int(os.environ["RANK"])
log_path = Path({log_dir!r}) / f"rank{{rank}}.jsonl"


def log(kind, **fields):
    with open(log_path, "a") as handle:
        handle.write(json.dumps({{"kind": kind, "rank": rank, "time": time.time(), **fields}}) + "\\n")


def checksum(module, parameters_only=False):
    # every tensor of the state dict (or the parameters), bit for bit, keys without a wrapper's "model." prefix
    digest = hashlib.sha1()
    state = dict(module.named_parameters()) if parameters_only else module.state_dict()
    for key, value in sorted(state.items()):
        digest.update(key.removeprefix("model.").encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fingerprint(folder):
    folder = Path(folder)
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


original_open = io.atomic_open


@contextlib.contextmanager
def recorded_open(path, *args, **kwargs):
    log("write", path=str(Path(path).resolve()))
    with original_open(path, *args, **kwargs) as handle:
        yield handle


io.atomic_open = evaluation.atomic_open = recorded_open

original_prepare = pseudo_labels.prepare


def recorded_prepare(fixations_json, image_dir, instances_json, cache_dir, **kwargs):
    log("prepare_start", what="algorithm1", cache=str(Path(cache_dir).resolve()))
    out = original_prepare(fixations_json, image_dir, instances_json, cache_dir, **kwargs)
    log("prepare_end", what="algorithm1", cache=str(Path(cache_dir).resolve()))
    return out


pseudo_labels.prepare = recorded_prepare
original_free = hsi_tables.prepare_free_viewing


def recorded_free(source, cache_dir, **kwargs):
    log("prepare_start", what="free_viewing", cache=str(Path(cache_dir).resolve()))
    out = original_free(source, cache_dir, **kwargs)
    log("prepare_end", what="free_viewing", cache=str(Path(cache_dir).resolve()))
    return out


hsi_tables.prepare_free_viewing = recorded_free


def recorded_reader(cls, name):
    original = cls.__init__

    def init(self, cache_dir, *args, **kwargs):
        log("read", what=name, cache=str(Path(cache_dir).resolve()), files=fingerprint(cache_dir))
        original(self, cache_dir, *args, **kwargs)

    cls.__init__ = init


recorded_reader(pseudo_labels.PseudoLabelCache, "algorithm1")
recorded_reader(hsi_tables.FreeViewingCache, "free_viewing")
original_fit = hsi_tables.fit


def recorded_fit(model, *args, run_dir, **kwargs):
    result = original_fit(model, *args, run_dir=run_dir, **kwargs)
    log("trained", run_dir=str(Path(run_dir).resolve()), checksum=checksum(model),
        parameters=checksum(model, parameters_only=True),
        history=result.history, best_epoch=result.best_epoch)
    return result


hsi_tables.fit = recorded_fit
exp = hsi_tables.run_hsi_tables({demo!r}, clip_weights={weights!r}, image_size=64, hidden=16, pretrain_epochs=1,
                                finetune_epochs=1, batch_size=4, folds=[0], salicon_limit=4, hsb_limit=16,
                                t_a=0.01, table3_random=("decoder",), run_dir={run_dir!r}, progress=False)
tables = hsi_tables.tables_1_3(exp, random="decoder")
log("done", run_dir=str(exp.run_dir.resolve()),
    tables={{name: frame.xs("ours", axis=1, level=1)[list(hsi_tables.TABLE_COLUMNS)].to_numpy().tolist()
             for name, frame in tables.items()}})
"""


def _checksum(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for key, value in sorted(state.items()):
        digest.update(key.removeprefix("model.").encode())
        digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _run_two_ranks(script: Path, cwd: Path) -> None:
    """``torchrun --standalone --nproc_per_node 2 script`` (a free port of its own), killed with its
    whole process group after ``TIMEOUT_S`` (a deadlock fails with the ranks' output, never hangs)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=cwd, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"two-rank run_hsi_tables did not finish in {TIMEOUT_S} s (a deadlock?):\n{err[-4000:]}")
    assert proc.returncode == 0, f"two-rank run_hsi_tables failed (rc {proc.returncode}):\n{err[-6000:]}"


def _events(log_dir: Path, rank: int) -> list[dict]:
    path = log_dir / f"rank{rank}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def test_two_gloo_ranks_leave_one_consistent_run_directory(tmp_path: Path) -> None:
    from hsi_core.demo import ensure_demo
    from hsi_core.models.hsi import build_clip_rn50, load_hsi

    demo = ensure_demo()
    torch.manual_seed(0)
    weights = tmp_path / "RN50-generated.pt"
    torch.save(build_clip_rn50(None).state_dict(), weights)
    log_dir, run_dir = tmp_path / "log", tmp_path / "runs"
    log_dir.mkdir()
    script = tmp_path / "hsi_tables_two_ranks.py"
    script.write_text(textwrap.dedent(DISTRIBUTED_SCRIPT.format(repo=str(REPO), log_dir=str(log_dir), demo=str(demo),
                                                                weights=str(weights), run_dir=str(run_dir))))
    _run_two_ranks(script, tmp_path)
    r0, r1 = _events(log_dir, 0), _events(log_dir, 1)
    assert r0 and r0[-1]["kind"] == "done" and r1 and r1[-1]["kind"] == "done"

    # Algorithm 1 (train, val) and the free-viewing maps (train, val) prepared once, by rank 0 only
    starts = [e for e in r0 + r1 if e["kind"] == "prepare_start"]
    assert {e["rank"] for e in starts} == {0}, [(e["rank"], e["what"]) for e in starts]
    assert Counter(e["what"] for e in starts) == {"algorithm1": 2, "free_viewing": 2}
    prepared_by_0 = max(e["time"] for e in r0 if e["kind"] == "prepare_end")
    # ... while rank 1 waited: its first read comes after rank 0 finished, and both read the same caches
    reads = {rank: [e for e in events if e["kind"] == "read"] for rank, events in ((0, r0), (1, r1))}
    assert min(e["time"] for e in reads[1]) >= prepared_by_0
    as_read = {rank: sorted((e["what"], e["cache"], json.dumps(e["files"])) for e in found)
               for rank, found in reads.items()}
    assert len(as_read[0]) == 4 and as_read[0] == as_read[1]
    assert {e["cache"] for e in starts} == {e["cache"] for e in reads[0]}

    # every file written once, by rank 0; no temporary file or unfinished cache left behind
    assert not [e["path"] for e in r1 if e["kind"] == "write"]
    writes = Counter(e["path"] for e in r0 if e["kind"] == "write")
    assert writes and max(writes.values()) == 1, [p for p, n in writes.items() if n > 1]
    final_dir = Path(r0[-1]["run_dir"])
    assert r1[-1]["run_dir"] == str(final_dir)
    for name in ("summary.json", "hsi_finetuned.pt", "pretrain_HSI/best.pt", "pretrain_HSI/last.pt",
                 "HSI_w._finetuning/fold0/last.pt", "HSI_finetuned_on_all_HSB/last.pt"):
        assert writes[str(final_dir / name)] == 1, name
    leftovers = [p for p in run_dir.rglob("*") if p.name.startswith(".") or p.name.endswith((".tmp", ".partial"))]
    assert not leftovers, leftovers
    summary = json.loads((final_dir / "summary.json").read_text())
    assert summary["settings"]["world_size"] == 2

    # both ranks end every training run with the same model (weights and BatchNorm statistics), the
    # one rank 0 saved, and report the same histories and tables
    trained = {rank: {e["run_dir"]: e for e in events if e["kind"] == "trained"} for rank, events in ((0, r0), (1, r1))}
    assert len(trained[0]) == 6 and sorted(trained[0]) == sorted(trained[1])
    for folder, record in trained[0].items():
        other = trained[1][folder]
        assert record["parameters"] == other["parameters"], f"the ranks' weights differ after {folder}"
        assert record["checksum"] == other["checksum"], f"the ranks' models differ after {folder}"
        assert record["history"] == other["history"] and record["best_epoch"] == other["best_epoch"], folder
    saved = torch.load(final_dir / "HSI_finetuned_on_all_HSB" / "last.pt", map_location="cpu", weights_only=False)
    assert _checksum(saved["model"]) == trained[1][str(final_dir / "HSI_finetuned_on_all_HSB")]["checksum"]
    assert _checksum(load_hsi(final_dir / "hsi_finetuned.pt").state_dict()) == _checksum(saved["model"])
    assert r0[-1]["tables"] == r1[-1]["tables"]
    # about 1.8 GB of checkpoints and stand-in weights: not kept once the run checked out (a failure keeps them)
    import shutil

    shutil.rmtree(run_dir)
    weights.unlink()
