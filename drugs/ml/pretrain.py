"""Maximum-likelihood pre-training of the SMILES generator on a large set (the full MOSES train).

A CharRNN-style prior (Segler et al., ACS Cent. Sci. 2018; the MOSES CharRNN baseline): the same
GRU generator the design runs use (`gan.Generator`), trained with teacher forcing on every
molecule of the set, so a design run fine-tunes a model that already writes valid SMILES.

Reproducible: the molecule order is a function of (seed, epoch) only, the learning-rate schedule
a function of the step only, so the same command on the same hardware and thread count gives the
same weights, and a run stopped by its wall-clock budget resumes (`resume=True`) exactly where
its last checkpoint left it. Batches are length-bucketed (molecules of similar length share a
batch, so little compute goes to padding). A checkpoint (model, optimiser, position) is written
every `checkpoint_minutes`, with the generator exported as a `GanArtifact` at the same time, so
the newest usable artifact is always on disk. Runs on CUDA when `device` names it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from drugs.ml import gan


@dataclass
class PretrainConfig:
    """What the run does; every field goes into the artifact's provenance."""

    hidden_dim: int = 384
    layers: int = 2
    embed_dim: int = 64
    # Well under one epoch on CPU, so there is nothing to regularise yet: dropout only slows it.
    dropout: float = 0.0
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 500
    steps: int = 20_000  # the schedule's length (cosine decay to 5 % of lr); a run may stop early
    max_length: int = 100  # tokens including the end token
    seed: int = 0
    bucket_batches: int = 64  # batches drawn together and sorted by length
    checkpoint_minutes: float = 5.0
    log_every: int = 100  # steps
    eval_samples: int = 500  # sampled at every checkpoint for validity / uniqueness / novelty
    eval_molecules: int = 2000  # held-out molecules for the validation loss
    export_half: bool = True  # the exported artifact stores float16 weights (half the size)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def hardware_line(device: str, threads: int) -> str:
    """One line naming where the run trained, for its log and README."""
    if device.startswith("cuda") and torch.cuda.is_available():
        where = torch.cuda.get_device_name(torch.device(device))
    else:
        where = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    where = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return (
        f"{where}; device {device}; torch {torch.__version__}; {threads} thread(s) of "
        f"{os.cpu_count()} CPU(s); Python {platform.python_version()}"
    )


def _lr_at(step: int, config: PretrainConfig) -> float:
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress)))


def _chunk_batches(
    vocab: gan.Vocab, smiles: Sequence[str], config: PretrainConfig, rng: np.random.Generator
) -> list[list[list[int]]]:
    """Encoded rows (BOS + tokens + EOS) in length-sorted batches, in a shuffled batch order."""
    rows = [
        [1, *e, 2] for e in (vocab.encode(s, config.max_length) for s in smiles) if e is not None
    ]
    rows.sort(key=len)
    batches = [rows[i : i + config.batch_size] for i in range(0, len(rows), config.batch_size)]
    order = rng.permutation(len(batches))
    return [batches[i] for i in order]


def _batch_loss(model: gan.Generator, rows: list[list[int]], device: str) -> torch.Tensor:
    batch = gan._pad(rows).to(device)
    logits, _ = model(batch[:, :-1])
    target = batch[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)


@dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    chunk: int = 0  # next chunk of the epoch
    molecules: int = 0
    tokens: int = 0
    seconds: float = 0.0  # training wall time over all sessions of the run
    checkpoints: int = 0


def _stage_from(
    init: gan.GanArtifact,
    model: gan.Generator,
    vocab: gan.Vocab,
    config: PretrainConfig,
    device: str,
) -> tuple[_Position, list[gan.EpochStats], list[dict[str, Any]]]:
    """Load `init`'s weights into `model`; the position, history and stages it continues."""
    if init.vocab.tokens != vocab.tokens:
        raise ValueError("the initial prior was trained on another vocabulary (another data set)")
    shape = {k: getattr(init.config, k) for k in ("embed_dim", "hidden_dim", "layers")}
    wanted = {"embed_dim": config.embed_dim, "hidden_dim": config.hidden_dim}
    wanted["layers"] = config.layers
    if shape != wanted:
        raise ValueError(f"the initial prior has another shape: {shape}, not {wanted}")
    model.load_state_dict({k: v.float() for k, v in init.generator_state.items()})
    model.to(device)
    before = dict(init.provenance)
    earlier = before.get("pretrain_config") or {}
    first = {"steps": before.get("steps"), "pretrain_config": earlier}
    first["hardware"] = before.get("hardware")
    stages = list(before.get("stages") or [first])
    pos = _Position(
        molecules=int(before.get("molecules_seen", 0)),
        tokens=int(before.get("tokens_seen", 0)),
        seconds=float(init.training_seconds),
    )
    same_stream = all(
        earlier.get(k) == getattr(config, k) for k in ("seed", "batch_size", "bucket_batches")
    )
    if same_stream:
        # Stages stop only at chunk boundaries, so the next chunk is exact (a prior written
        # before stages were recorded names no chunk: it stopped within its first epoch).
        chunk_size = config.bucket_batches * config.batch_size
        pos.epoch = int(before.get("epoch", 0))
        pos.chunk = int(before.get("chunk", pos.molecules // chunk_size))
    return pos, list(init.history), stages


def pretrain(
    smiles: Sequence[str],
    *,
    out: str | Path,
    config: PretrainConfig,
    minutes: float | None = None,
    device: str = "cpu",
    threads: int | None = None,
    resume: bool = False,
    init: gan.GanArtifact | None = None,
    held_out: Sequence[str] = (),
    log: Callable[[str], None] = print,
    source: str = "",
) -> gan.GanArtifact:
    """Train (or resume) a prior on `smiles`; writes `out` and `out`.ckpt; returns the artifact.

    Stops after `config.steps` steps or `minutes` of wall time, whichever comes first, always
    with a final checkpoint. `held_out` molecules give the validation loss. `init`, a prior
    this function wrote, starts a further stage from its weights (a new optimiser and a new
    schedule of `config.steps`); with the same seed and batching it continues the stage
    before's stream of molecules where it stopped, so no molecule is seen twice early.
    """
    out = Path(out)
    ckpt_path = out.with_name(out.name + ".ckpt")
    if threads is not None and not device.startswith("cuda"):
        torch.set_num_threads(threads)
    started = time.monotonic()
    hardware = hardware_line(device, torch.get_num_threads())

    vocab = gan.Vocab.from_smiles(smiles)
    gan_config = gan.GanConfig(
        embed_dim=config.embed_dim,
        hidden_dim=config.hidden_dim,
        layers=config.layers,
        dropout=config.dropout,
        max_length=config.max_length,
        seed=config.seed,
    )
    torch.manual_seed(config.seed)
    model = gan.Generator(len(vocab), gan_config).to(device)
    decay = [p for n, p in model.named_parameters() if p.dim() > 1 and "embed" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() > 1 and "embed" not in n)]
    optimiser = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    pos = _Position()
    history: list[gan.EpochStats] = []
    stages: list[dict[str, Any]] = []
    chunk_size = config.bucket_batches * config.batch_size
    if init is not None:
        pos, history, stages = _stage_from(init, model, vocab, config, device)
        log(
            f"stage {len(stages) + 1}: from a prior of {pos.molecules} molecules "
            f"({init.provenance.get('steps')} steps), continuing at epoch {pos.epoch}, "
            f"chunk {pos.chunk}"
        )
    if resume:
        if not ckpt_path.is_file():
            raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist")
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state["vocab"] != vocab.tokens:
            raise ValueError("the checkpoint was trained on another vocabulary (another data set)")
        if state["config"] != config.to_dict():
            raise ValueError(
                "the checkpoint was trained with other settings: "
                + json.dumps(
                    {
                        k: (v, config.to_dict().get(k))
                        for k, v in state["config"].items()
                        if config.to_dict().get(k) != v
                    }
                )
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        pos = _Position(**state["position"])
        history = [gan.EpochStats(**h) for h in state["history"]]
        stages = state.get("stages", [])
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed from {ckpt_path} at step {pos.step} (epoch {pos.epoch}, chunk {pos.chunk})")

    canonical_train = frozenset(smiles)
    held_rows = [
        [1, *e, 2]
        for e in (vocab.encode(s, config.max_length) for s in held_out[: config.eval_molecules])
        if e is not None
    ]
    n_chunks = math.ceil(len(smiles) / chunk_size)
    log(f"hardware: {hardware}")
    log(
        f"data: {len(smiles)} molecules ({source or 'given list'}), vocabulary {len(vocab)} "
        f"tokens; model GRU {config.layers}x{config.hidden_dim}, "
        f"{sum(p.numel() for p in model.parameters())} parameters; schedule {config.steps} steps"
    )

    def evaluate() -> gan.EpochStats:
        t0 = time.monotonic()
        model.eval()
        val_loss = None
        if held_rows:
            with torch.no_grad():
                losses = [
                    _batch_loss(model, held_rows[i : i + 500], device).item()
                    for i in range(0, len(held_rows), 500)
                ]
            val_loss = float(np.mean(losses))
        rng = torch.Generator(device=device)
        rng.manual_seed(config.seed + pos.step)
        ids = gan._sample_ids(model, config.eval_samples, config.max_length, 1.0, device, rng)
        sampled = [vocab.decode(r) for r in ids.tolist()]
        validity, uniqueness, novelty, valid = gan._sample_stats(sampled, canonical_train)
        model.train()
        stats = gan.EpochStats(
            phase="pretrain",
            epoch=pos.checkpoints,
            g_loss=round(val_loss if val_loss is not None else float("nan"), 5),
            d_loss=None,
            validity=round(validity, 4),
            uniqueness=round(uniqueness, 4),
            novelty=round(novelty, 4),
            mean_reward=None,
            samples=valid[:8] if valid else sampled[:8],
            collapse_warning=False,
            seconds=round(pos.seconds, 1),
        )
        log(
            f"checkpoint {pos.checkpoints}: step {pos.step} molecules {pos.molecules} "
            f"val_loss {val_loss if val_loss is None else round(val_loss, 4)} "
            f"valid {validity:.4f} unique {uniqueness:.4f} novel {novelty:.4f} "
            f"(eval {time.monotonic() - t0:.1f} s, trained {pos.seconds / 60:.1f} min)"
        )
        return stats

    def artifact(stopped: str) -> gan.GanArtifact:
        return gan.GanArtifact(
            vocab=vocab,
            config=gan_config,
            generator_state={k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            history=list(history),
            stopped_reason=stopped,
            training_seconds=round(pos.seconds, 1),
            train_size=len(smiles),
            provenance={
                "kind": "pretrained prior",
                "source": source,
                "pretrain_config": config.to_dict(),
                "steps": pos.step,
                "stages": [
                    *stages,
                    {"steps": pos.step, "pretrain_config": config.to_dict(), "hardware": hardware},
                ],
                "epoch": pos.epoch,
                "chunk": pos.chunk,
                "epochs": round(pos.molecules / max(len(smiles), 1), 4),
                "molecules_seen": pos.molecules,
                "tokens_seen": pos.tokens,
                "hardware": hardware,
            },
        )

    def checkpoint(stopped: str) -> gan.GanArtifact:
        pos.checkpoints += 1
        history.append(evaluate())
        tmp = ckpt_path.with_name(ckpt_path.name + ".tmp")
        torch.save(
            {
                "vocab": vocab.tokens,
                "config": config.to_dict(),
                "model": model.state_dict(),
                "optimiser": optimiser.state_dict(),
                "position": asdict(pos),
                "history": [h.to_dict() for h in history],
                "stages": stages,
                "torch_rng": torch.get_rng_state(),
            },
            tmp,
        )
        os.replace(tmp, ckpt_path)
        result = artifact(stopped)
        tmp_out = out.with_name(out.name + ".tmp")
        result.save(tmp_out, half=config.export_half)
        os.replace(tmp_out, out)
        return result

    budget = None if minutes is None else minutes * 60.0
    session_start = time.monotonic()
    last_checkpoint = time.monotonic()
    window_tokens, window_start, window_losses = 0, time.monotonic(), []
    stopped = "completed"
    checkpointed_at = -1
    model.train()
    while pos.step < config.steps:
        order = np.random.default_rng([config.seed, pos.epoch]).permutation(len(smiles))
        while pos.chunk < n_chunks and pos.step < config.steps:
            picks = order[pos.chunk * chunk_size : (pos.chunk + 1) * chunk_size]
            rng = np.random.default_rng([config.seed, pos.epoch, pos.chunk])
            step_start = time.monotonic()
            for rows in _chunk_batches(vocab, [smiles[i] for i in picks], config, rng):
                if pos.step >= config.steps:
                    break
                for group in optimiser.param_groups:
                    group["lr"] = _lr_at(pos.step, config)
                loss = _batch_loss(model, rows, device)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimiser.step()
                pos.step += 1
                pos.molecules += len(rows)
                n_tokens = sum(len(r) - 1 for r in rows)
                pos.tokens += n_tokens
                window_tokens += n_tokens
                window_losses.append(loss.item())
                if pos.step % config.log_every == 0:
                    now = time.monotonic()
                    log(
                        f"step {pos.step} epoch {pos.molecules / len(smiles):.3f} "
                        f"loss {np.mean(window_losses):.4f} lr {_lr_at(pos.step, config):.2e} "
                        f"{window_tokens / (now - window_start):.0f} tokens/s"
                    )
                    window_tokens, window_start, window_losses = 0, now, []
            # The position advances a whole chunk at a time, so a resume never repeats or
            # skips a molecule (a chunk cut by `steps` ends the run anyway).
            pos.chunk += 1
            pos.seconds += time.monotonic() - step_start
            elapsed = time.monotonic() - session_start
            if budget is not None and elapsed >= budget and pos.step < config.steps:
                stopped = "time_budget"
                break
            if time.monotonic() - last_checkpoint >= config.checkpoint_minutes * 60:
                checkpoint("in_progress")
                checkpointed_at = pos.step
                last_checkpoint = time.monotonic()
                window_tokens, window_start = 0, time.monotonic()
        if stopped != "completed":
            break
        if pos.chunk >= n_chunks:
            pos.epoch += 1
            pos.chunk = 0
    result = checkpoint(stopped) if pos.step != checkpointed_at else artifact(stopped)
    if pos.step == checkpointed_at:
        result.history = list(history)
    log(
        f"done: {stopped}, step {pos.step}, {pos.molecules} molecules "
        f"({pos.molecules / len(smiles):.3f} epochs), training {pos.seconds / 60:.1f} min, "
        f"wall {(time.monotonic() - started) / 60:.1f} min this session"
    )
    return result
