"""The prior's pre-training: a budgeted, checkpointed, resumable and reproducible run."""

from __future__ import annotations

import torch

from drugs.ml.gan import GanArtifact
from drugs.ml.pretrain import PretrainConfig, pretrain

# Small enough for a second on one thread: 4 steps per chunk of 64 molecules.
TINY = PretrainConfig(
    hidden_dim=32,
    layers=1,
    embed_dim=8,
    batch_size=16,
    bucket_batches=4,
    steps=12,
    warmup_steps=2,
    checkpoint_minutes=1e9,
    log_every=4,
    eval_samples=20,
    eval_molecules=50,
    max_length=60,
)


def test_a_budgeted_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tmp_path, moses_train):
    smiles, held_out = moses_train[:300], moses_train[300:400]
    lines: list[str] = []

    whole = pretrain(smiles, out=tmp_path / "whole.pt", config=TINY, held_out=held_out)
    assert whole.stopped_reason == "completed" and whole.provenance["steps"] == 12

    # A zero budget stops after the first chunk (4 steps), with a checkpoint to resume from.
    cut = pretrain(
        smiles, out=tmp_path / "cut.pt", config=TINY, minutes=0, held_out=held_out, log=lines.append
    )
    assert cut.stopped_reason == "time_budget" and cut.provenance["steps"] == 4
    assert (tmp_path / "cut.pt.ckpt").is_file()
    resumed = pretrain(
        smiles,
        out=tmp_path / "cut.pt",
        config=TINY,
        resume=True,
        held_out=held_out,
        log=lines.append,
    )
    assert resumed.provenance["steps"] == 12 and resumed.stopped_reason == "completed"
    for name, value in whole.generator_state.items():
        assert torch.equal(value, resumed.generator_state[name]), name

    # The training log: hardware, loss and throughput, validity of samples per checkpoint.
    text = "\n".join(lines)
    assert "hardware: " in text and "tokens/s" in text and "resumed from" in text
    assert "checkpoint 2: step 12" in text and " valid " in text and "val_loss" in text

    # The exported artifact is the product's generator format (float16 weights, loaded back).
    loaded = GanArtifact.load(tmp_path / "cut.pt")
    assert loaded.provenance["pretrain_config"]["hidden_dim"] == 32
    assert (
        next(
            iter(torch.load(tmp_path / "cut.pt", weights_only=True)["generator_state"].values())
        ).dtype
        == torch.float16
    )
    assert len(loaded.sample(5, seed=1)) == 5
    assert [h.phase for h in loaded.history] == ["pretrain", "pretrain"]


def test_resume_refuses_other_settings(tmp_path, moses_train):
    import pytest

    pretrain(moses_train[:100], out=tmp_path / "p.pt", config=TINY, minutes=0)
    changed = PretrainConfig(**{**TINY.to_dict(), "lr": 1e-4})
    with pytest.raises(ValueError, match="other settings"):
        pretrain(moses_train[:100], out=tmp_path / "p.pt", config=changed, resume=True)
    with pytest.raises(FileNotFoundError):
        pretrain(moses_train[:100], out=tmp_path / "q.pt", config=TINY, resume=True)
