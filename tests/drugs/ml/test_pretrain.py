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


def test_a_further_stage_starts_from_the_prior_and_continues_its_stream(tmp_path, moses_train):
    import pytest

    smiles = moses_train[:300]
    lines: list[str] = []
    first = pretrain(smiles, out=tmp_path / "one.pt", config=TINY, minutes=0)
    assert first.provenance["chunk"] == 1 and first.provenance["steps"] == 4

    # No step: the weights are the prior's, as stored (float16 weights read back).
    still = pretrain(
        smiles,
        out=tmp_path / "same.pt",
        config=PretrainConfig(**{**TINY.to_dict(), "steps": 0}),
        init=GanArtifact.load(tmp_path / "one.pt"),
    )
    stored = GanArtifact.load(tmp_path / "one.pt").generator_state
    for name, value in still.generator_state.items():
        assert torch.equal(value, stored[name].float()), name

    second_config = PretrainConfig(**{**TINY.to_dict(), "steps": 8, "lr": 1e-3})
    second = pretrain(
        smiles,
        out=tmp_path / "two.pt",
        config=second_config,
        init=GanArtifact.load(tmp_path / "one.pt"),
        log=lines.append,
    )
    # The stream goes on where the first stage stopped: chunk 1 + 8 steps of 4 per chunk.
    assert second.provenance["chunk"] == 3
    assert second.provenance["molecules_seen"] == first.provenance["molecules_seen"] + 8 * 16
    stages = second.provenance["stages"]
    assert [s["steps"] for s in stages] == [4, 8]
    assert stages[1]["pretrain_config"]["lr"] == 1e-3 and "hardware" in stages[1]
    assert any(line.startswith("stage 2: from a prior of 64 molecules") for line in lines)
    assert second.training_seconds >= first.training_seconds

    wider = PretrainConfig(**{**TINY.to_dict(), "hidden_dim": 48})
    with pytest.raises(ValueError, match="another shape"):
        pretrain(
            smiles, out=tmp_path / "w.pt", config=wider, init=GanArtifact.load(tmp_path / "one.pt")
        )
