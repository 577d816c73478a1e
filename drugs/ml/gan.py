"""A SMILES GAN, ORGAN-style: a GRU generator pre-trained by maximum likelihood, then trained
against a CNN discriminator with policy gradients (REINFORCE with a moving-average baseline).

Guimaraes et al., "Objective-Reinforced Generative Adversarial Networks (ORGAN) for Sequence
Generation Models", arXiv:1705.10843 (2017); Yu et al., SeqGAN, AAAI 2017. The reward of a
generated molecule is a weighted sum of realism (the discriminator's probability that it is real)
and the property rewards the researcher sets (QED, synthetic accessibility, Lipinski, PAINS,
predicted activity); invalid strings get 0, and a molecule repeated within a batch shares its
reward among the copies (ORGAN's diversity penalty). Rewards are per sequence, not per token with
Monte Carlo roll-outs as in SeqGAN, which is cheaper on CPU; a maximum-likelihood term on real
molecules is kept in the adversarial phase so the generator does not drift into a few
high-reward strings.
Mode collapse is watched through the uniqueness of each epoch's samples.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from drugs.ml import chem
from drugs.ml.goal import weighted_terms
from drugs.ml.metrics import uniqueness_collapse

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
# Bracket atoms, two-letter halogens and two-digit ring closures are single tokens, so the
# generator never has to learn to close a bracket it opened.
_TOKEN_RE = re.compile(r"(\[[^\[\]]{1,12}\]|Br|Cl|%\d\d|[A-Za-z]|\d|[()=#\-+\\/:~@?>*$.])")
ARTIFACT_FORMAT = 1


def tokenize(smiles: str) -> list[str] | None:
    """SMILES tokens, or None when the string has characters outside the SMILES alphabet."""
    tokens = _TOKEN_RE.findall(smiles)
    return tokens if "".join(tokens) == smiles else None


@dataclass
class Vocab:
    """Token alphabet with the training set's token frequencies and length distribution."""

    tokens: list[str]
    counts: list[int] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)  # token lengths of up to 10k molecules

    @classmethod
    def from_smiles(cls, smiles: Sequence[str]) -> Vocab:
        counter: Counter[str] = Counter()
        lengths: list[int] = []
        for s in smiles:
            toks = tokenize(s)
            if toks:
                counter.update(toks)
                if len(lengths) < 10_000:
                    lengths.append(len(toks))
        ordered = sorted(counter)
        return cls([PAD, BOS, EOS, *ordered], [0, 0, 0, *(counter[t] for t in ordered)], lengths)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, smiles: str, max_length: int) -> list[int] | None:
        toks = tokenize(smiles)
        if toks is None or len(toks) + 1 > max_length or any(t not in self.index for t in toks):
            return None
        return [self.index[t] for t in toks]

    def decode(self, ids: Sequence[int]) -> str:
        out: list[str] = []
        for i in ids:
            if i == 2:  # EOS
                break
            if i > 2:
                out.append(self.tokens[i])
        return "".join(out)

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "counts": self.counts, "lengths": self.lengths}


@dataclass
class GanConfig:
    """Hyper-parameters; the defaults train in a few minutes on 2 CPU threads on 10k molecules."""

    pretrain_epochs: int = 6
    adversarial_epochs: int = 4
    # Small batches: on 10k molecules more updates per epoch matter more than smoother ones
    # (batch 32 reached ~54 % validity after 4 epochs where 128 reached ~11 %).
    batch_size: int = 32
    pg_batch_size: int = 64  # sampled molecules per policy-gradient step
    embed_dim: int = 64
    hidden_dim: int = 256
    layers: int = 2
    dropout: float = 0.1
    lr: float = 2e-3  # maximum-likelihood pre-training
    adversarial_lr: float = 1e-4  # generator, policy-gradient phase
    discriminator_lr: float = 2e-4
    max_length: int = 100  # tokens, including the end token
    seed: int = 0
    # Reward weights (the reward is their weighted mean, in [0, 1]).
    w_realism: float = 1.0
    w_qed: float = 0.0
    w_sa: float = 0.0
    w_lipinski: float = 0.0
    w_pains: float = 0.0
    w_activity: float = 0.0
    temperature: float = 1.0
    samples_per_epoch: int = 512  # sampled after each epoch for validity / uniqueness / novelty
    pg_steps_per_epoch: int = 20
    discriminator_steps_per_epoch: int = 10
    discriminator_pretrain_steps: int = 50
    mle_weight: float = 0.5  # maximum-likelihood term kept in the adversarial phase
    max_train_molecules: int = 200_000
    stop_on_collapse: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def reward_weights(self) -> dict[str, float]:
        return {
            "realism": self.w_realism,
            "qed": self.w_qed,
            "sa": self.w_sa,
            "lipinski": self.w_lipinski,
            "pains": self.w_pains,
            "activity": self.w_activity,
        }


@dataclass
class EpochStats:
    """One epoch of training as the app shows it live."""

    phase: str  # 'pretrain' | 'adversarial'
    epoch: int  # 1-based within the phase
    g_loss: float
    d_loss: float | None
    validity: float
    uniqueness: float  # distinct valid / valid
    novelty: float  # distinct valid not in the training set / distinct valid
    mean_reward: float | None
    samples: list[str]
    collapse_warning: bool
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Generator(nn.Module):
    def __init__(self, vocab_size: int, config: GanConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, config.embed_dim, padding_idx=0)
        self.rnn = nn.GRU(
            config.embed_dim,
            config.hidden_dim,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.head = nn.Linear(config.hidden_dim, vocab_size)

    def forward(
        self, x: torch.Tensor, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.rnn(self.embed(x), h)
        return self.head(out), h


class Discriminator(nn.Module):
    """CNN over token embeddings (SeqGAN / ORGAN): several widths, max-pool, highway, logit."""

    def __init__(self, vocab_size: int, embed_dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        widths = (2, 3, 4, 5, 6, 8, 10)
        channels = (64, 64, 64, 64, 64, 32, 32)
        self.convs = nn.ModuleList(
            nn.Conv1d(embed_dim, c, w, padding=w // 2) for w, c in zip(widths, channels)
        )
        total = sum(channels)
        self.highway = nn.Linear(total, total)
        self.gate = nn.Linear(total, total)
        self.dropout = nn.Dropout(0.25)
        self.out = nn.Linear(total, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.embed(x).transpose(1, 2)
        mask = (x != 0).unsqueeze(1)
        pooled = [
            F.relu(conv(e))[..., : x.shape[1]].masked_fill(~mask, 0).amax(dim=2)
            for conv in self.convs
        ]
        h = torch.cat(pooled, dim=1)
        g = torch.sigmoid(self.gate(h))
        h = g * F.relu(self.highway(h)) + (1 - g) * h
        return self.out(self.dropout(h)).squeeze(1)


def _pad(seqs: Sequence[Sequence[int]], length: int | None = None) -> torch.Tensor:
    length = length or max(len(s) for s in seqs)
    out = torch.zeros(len(seqs), length, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s[:length], dtype=torch.long)
    return out


def _sample_ids(
    model: Generator,
    n: int,
    max_length: int,
    temperature: float,
    device: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(n, max_length) token ids, each row ending with EOS then padding (or cut at max_length)."""
    model.eval()
    x = torch.full((n, 1), 1, dtype=torch.long, device=device)  # BOS
    h = None
    out = torch.zeros(n, max_length, dtype=torch.long, device=device)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    with torch.no_grad():
        for t in range(max_length):
            logits, h = model(x, h)
            probs = F.softmax(logits[:, -1] / max(temperature, 1e-3), dim=-1)
            probs[:, :2] = 0  # never PAD or BOS
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            nxt = torch.where(done, torch.zeros_like(nxt), nxt)
            out[:, t] = nxt
            done |= nxt == 2
            if bool(done.all()):
                break
            x = nxt.unsqueeze(1)
    return out


def _sequence_log_probs(model: Generator, ids: torch.Tensor) -> torch.Tensor:
    """Sum of log-probabilities of each sampled sequence (up to and including EOS)."""
    model.train()
    inputs = torch.cat([torch.ones_like(ids[:, :1]), ids[:, :-1]], dim=1)
    logits, _ = model(inputs)
    logp = F.log_softmax(logits, dim=-1).gather(2, ids.unsqueeze(2)).squeeze(2)
    return (logp * (ids != 0).float()).sum(1)


def _mle_loss(model: Generator, batch: torch.Tensor) -> torch.Tensor:
    """Teacher-forced cross-entropy on (BOS + tokens + EOS) rows."""
    model.train()
    logits, _ = model(batch[:, :-1])
    target = batch[:, 1:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), ignore_index=0)


def _rows(vocab: Vocab, encoded: Sequence[Sequence[int]]) -> list[list[int]]:
    return [[1, *e, 2] for e in encoded]


class RewardModel:
    """Weighted property rewards of generated SMILES (realism is added by the trainer)."""

    def __init__(
        self,
        config: GanConfig,
        activity_fn: Callable[[list[str]], np.ndarray] | None,
    ) -> None:
        self.weights = config.reward_weights()
        if self.weights["activity"] > 0 and activity_fn is None:
            raise ValueError("w_activity > 0 needs an activity model (activity_fn)")
        self.activity_fn = activity_fn
        self.total = sum(w for w in self.weights.values() if w > 0)
        if self.total <= 0:
            raise ValueError("at least one reward weight must be positive")

    def __call__(self, smiles: list[str], realism: np.ndarray) -> np.ndarray:
        mols = [chem.mol_from_smiles(s) if s else None for s in smiles]
        valid = np.array([m is not None and m.GetNumAtoms() > 0 for m in mols])
        # The objective terms are goal.weighted_terms, which the run page's goal-directed
        # comparison scores molecules with too.
        reward = self.weights["realism"] * np.asarray(realism, dtype=float)
        reward = reward + weighted_terms(smiles, mols, self.weights, self.activity_fn)
        reward = np.where(valid, reward / self.total, 0.0)
        # ORGAN's diversity penalty: copies of one molecule share its reward.
        canon = [chem.canonical_smiles(s) if v else None for s, v in zip(smiles, valid)]
        counts = Counter(c for c in canon if c)
        return np.array([r / counts[c] if c else 0.0 for r, c in zip(reward, canon)])


@dataclass
class GanArtifact:
    """A trained generator: enough to sample from it again, plus its training record."""

    vocab: Vocab
    config: GanConfig
    generator_state: dict[str, torch.Tensor]
    history: list[EpochStats] = field(default_factory=list)
    stopped_reason: str = "completed"  # 'completed' | 'mode_collapse' | 'cancelled'
    training_seconds: float = 0.0
    train_size: int = 0
    # How it was made when not by `train_gan` (e.g. the pre-trained prior: data, steps, hardware).
    provenance: dict[str, Any] = field(default_factory=dict)

    def _model(self, device: str = "cpu") -> Generator:
        model = Generator(len(self.vocab), self.config)
        model.load_state_dict(self.generator_state)  # float16 weights are cast on load
        return model.to(device).eval()

    def sample(
        self,
        n: int,
        *,
        temperature: float = 1.0,
        seed: int | None = None,
        batch_size: int = 512,
        device: str = "cpu",
    ) -> list[str]:
        """n raw generated strings (valid or not), in generation order."""
        model = self._model(device)
        rng = torch.Generator(device=device)
        if seed is not None:
            rng.manual_seed(seed)
        else:
            rng.seed()
        out: list[str] = []
        while len(out) < n:
            k = min(batch_size, n - len(out))
            ids = _sample_ids(model, k, self.config.max_length, temperature, device, rng)
            out.extend(self.vocab.decode(row) for row in ids.tolist())
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "vocab": self.vocab.to_dict(),
            "config": self.config.to_dict(),
            "generator_state": {k: v.detach().cpu() for k, v in self.generator_state.items()},
            "history": [h.to_dict() for h in self.history],
            "stopped_reason": self.stopped_reason,
            "training_seconds": self.training_seconds,
            "train_size": self.train_size,
            "provenance": self.provenance,
        }

    def save(self, path: str | Path, *, half: bool = False) -> None:
        """Write the artifact; `half` stores float16 weights (loaded back as float32)."""
        data = self.to_dict()
        if half:
            data["generator_state"] = {
                k: v.half() if v.is_floating_point() else v
                for k, v in data["generator_state"].items()
            }
        torch.save(data, Path(path))

    @classmethod
    def load(cls, path: str | Path) -> GanArtifact:
        """Load a saved generator; weights_only, so a tampered file cannot run code."""
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        if data.get("format") != ARTIFACT_FORMAT:
            raise ValueError(f"unsupported GAN artifact format {data.get('format')!r}")
        vocab = data["vocab"]
        return cls(
            vocab=Vocab(vocab["tokens"], vocab["counts"], vocab["lengths"]),
            config=GanConfig.from_dict(data["config"]),
            generator_state=data["generator_state"],
            history=[EpochStats(**h) for h in data["history"]],
            stopped_reason=data["stopped_reason"],
            training_seconds=data["training_seconds"],
            train_size=data["train_size"],
            provenance=data.get("provenance", {}),
        )


def _sample_stats(
    smiles: list[str], train_set: frozenset[str]
) -> tuple[float, float, float, list[str]]:
    canon = [chem.canonical_smiles(s) for s in smiles]
    valid = [c for c in canon if c]
    distinct = set(valid)
    validity = len(valid) / max(len(smiles), 1)
    uniqueness = len(distinct) / len(valid) if valid else 0.0
    novelty = len(distinct - train_set) / len(distinct) if distinct else 0.0
    return validity, uniqueness, novelty, valid


def train_gan(
    config: GanConfig,
    smiles: list[str],
    *,
    on_epoch: Callable[[EpochStats], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    activity_fn: Callable[[list[str]], np.ndarray] | None = None,
    device: str = "cpu",
    on_pretrained: Callable[[GanArtifact], None] | None = None,
    init: GanArtifact | None = None,
) -> GanArtifact:
    """Pre-train the generator by maximum likelihood, then train it adversarially.

    With ``init`` (fine-tuning) the generator starts from that trained generator, keeping its
    vocabulary and architecture: the maximum-likelihood phase then adapts it to ``smiles`` (a
    focused set, e.g. known actives) and the adversarial phase optimises the new objectives.
    Training molecules with a token outside that vocabulary are skipped.

    `smiles` are the training molecules (invalid or over-long ones are skipped; at most
    `config.max_train_molecules` are used). `on_epoch` receives each epoch's stats (an exception
    there stops training); `should_stop` is polled between steps and ends training early with
    `stopped_reason='cancelled'`. With `stop_on_collapse`, the adversarial phase stops when the
    samples' uniqueness collapses (see `metrics.uniqueness_collapse`). `on_pretrained`
    receives a snapshot of the generator after maximum-likelihood pre-training.
    """
    started = time.monotonic()
    if init is not None:
        # The network's shape is the trained one's; the rest of the settings are this run's.
        config = replace(
            config,
            embed_dim=init.config.embed_dim,
            hidden_dim=init.config.hidden_dim,
            layers=init.config.layers,
            max_length=init.config.max_length,
        )
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sample_rng = torch.Generator(device=device)
    sample_rng.manual_seed(config.seed)

    canonical = [c for c in (chem.canonical_smiles(s) for s in smiles) if c]
    canonical = list(dict.fromkeys(canonical))
    if len(canonical) > config.max_train_molecules:
        picks = rng.choice(len(canonical), config.max_train_molecules, replace=False)
        canonical = [canonical[i] for i in sorted(picks)]
    vocab = init.vocab if init is not None else Vocab.from_smiles(canonical)
    encoded = [e for e in (vocab.encode(s, config.max_length) for s in canonical) if e]
    if len(encoded) < 10:
        raise ValueError(
            f"only {len(encoded)} usable training molecules (valid, at most "
            f"{config.max_length - 1} tokens); at least 10 are needed"
        )
    train_set = frozenset(canonical)
    rows = _rows(vocab, encoded)
    reward_model = RewardModel(config, activity_fn)

    generator = Generator(len(vocab), config)
    if init is not None:
        generator.load_state_dict(init.generator_state)
    generator = generator.to(device)
    history: list[EpochStats] = []
    uniqueness_history: list[float] = []
    stopped = "completed"

    def cancelled() -> bool:
        return should_stop is not None and should_stop()

    def batches() -> list[torch.Tensor]:
        order = rng.permutation(len(rows))
        return [
            _pad([rows[i] for i in order[j : j + config.batch_size]]).to(device)
            for j in range(0, len(order), config.batch_size)
        ]

    def sample_smiles(n: int) -> tuple[torch.Tensor, list[str]]:
        ids = _sample_ids(generator, n, config.max_length, config.temperature, device, sample_rng)
        return ids, [vocab.decode(r) for r in ids.tolist()]

    def finish_epoch(
        phase: str, epoch: int, g_loss: float, d_loss: float | None, reward: float | None, t0: float
    ) -> EpochStats:
        _, sampled = sample_smiles(config.samples_per_epoch)
        validity, uniqueness, novelty, valid = _sample_stats(sampled, train_set)
        uniqueness_history.append(uniqueness)
        stats = EpochStats(
            phase=phase,
            epoch=epoch,
            g_loss=round(g_loss, 5),
            d_loss=None if d_loss is None else round(d_loss, 5),
            validity=round(validity, 4),
            uniqueness=round(uniqueness, 4),
            novelty=round(novelty, 4),
            mean_reward=None if reward is None else round(reward, 5),
            samples=valid[:8] if valid else sampled[:8],
            collapse_warning=uniqueness_collapse(uniqueness_history),
            seconds=round(time.monotonic() - t0, 2),
        )
        history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
        return stats

    # Phase 1: maximum likelihood with teacher forcing.
    optimiser = torch.optim.Adam(generator.parameters(), lr=config.lr)
    # OneCycleLR divides by its warm-up length (10 % of the steps): with fewer than 20 steps
    # (a small uploaded set) that is zero. Unused steps at the end of a schedule are harmless.
    steps = max(config.pretrain_epochs * math.ceil(len(rows) / config.batch_size), 20)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=config.lr, total_steps=steps, pct_start=0.1
    )
    for epoch in range(1, config.pretrain_epochs + 1):
        t0 = time.monotonic()
        losses = []
        for batch in batches():
            if cancelled():
                stopped = "cancelled"
                break
            loss = _mle_loss(generator, batch)
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        if stopped != "completed":
            break
        finish_epoch("pretrain", epoch, float(np.mean(losses)), None, None, t0)

    def snapshot() -> GanArtifact:
        return GanArtifact(
            vocab=vocab,
            config=config,
            generator_state={
                k: v.detach().cpu().clone() for k, v in generator.state_dict().items()
            },
            history=list(history),
            stopped_reason=stopped,
            training_seconds=round(time.monotonic() - started, 2),
            train_size=len(rows),
        )

    if on_pretrained is not None and stopped == "completed":
        on_pretrained(snapshot())

    # Phase 2: adversarial, policy gradient against the discriminator.
    if stopped == "completed" and config.adversarial_epochs > 0:
        discriminator = Discriminator(len(vocab)).to(device)
        d_optimiser = torch.optim.Adam(discriminator.parameters(), lr=config.discriminator_lr)
        g_optimiser = torch.optim.Adam(generator.parameters(), lr=config.adversarial_lr)
        real_cycle = iter(())
        baseline: float | None = None

        def real_batch() -> torch.Tensor:
            nonlocal real_cycle
            try:
                return next(real_cycle)
            except StopIteration:
                real_cycle = iter(batches())
                return next(real_cycle)

        def train_discriminator(n_steps: int) -> float:
            losses = []
            discriminator.train()
            for _ in range(n_steps):
                real = real_batch()[:, 1:]  # drop BOS: the discriminator sees tokens + EOS
                fake, _ = sample_smiles(real.shape[0])
                length = max(real.shape[1], fake.shape[1])
                x = torch.cat(
                    [
                        F.pad(real, (0, length - real.shape[1])),
                        F.pad(fake, (0, length - fake.shape[1])),
                    ]
                )
                y = torch.cat([torch.ones(real.shape[0]), torch.zeros(fake.shape[0])]).to(device)
                loss = F.binary_cross_entropy_with_logits(discriminator(x), y)
                d_optimiser.zero_grad()
                loss.backward()
                d_optimiser.step()
                losses.append(loss.item())
            return float(np.mean(losses)) if losses else float("nan")

        train_discriminator(config.discriminator_pretrain_steps)
        for epoch in range(1, config.adversarial_epochs + 1):
            t0 = time.monotonic()
            g_losses, rewards = [], []
            for _ in range(config.pg_steps_per_epoch):
                if cancelled():
                    stopped = "cancelled"
                    break
                ids, sampled = sample_smiles(config.pg_batch_size)
                discriminator.eval()
                with torch.no_grad():
                    realism = torch.sigmoid(discriminator(ids)).cpu().numpy()
                reward = reward_model(sampled, realism)
                mean_reward = float(reward.mean())
                baseline = mean_reward if baseline is None else 0.9 * baseline + 0.1 * mean_reward
                advantage = torch.as_tensor(reward - baseline, dtype=torch.float32, device=device)
                log_probs = _sequence_log_probs(generator, ids)
                pg_loss = -(advantage * log_probs).mean()
                mle = _mle_loss(generator, real_batch())
                loss = pg_loss + config.mle_weight * mle
                g_optimiser.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(generator.parameters(), 1.0)
                g_optimiser.step()
                g_losses.append(loss.item())
                rewards.append(mean_reward)
            if stopped != "completed":
                break
            d_loss = train_discriminator(config.discriminator_steps_per_epoch)
            stats = finish_epoch(
                "adversarial", epoch, float(np.mean(g_losses)), d_loss, float(np.mean(rewards)), t0
            )
            if stats.collapse_warning and config.stop_on_collapse:
                stopped = "mode_collapse"
                break

    return snapshot()


def random_character_baseline(
    vocab_or_smiles: Vocab | Sequence[str], n: int, seed: int = 0
) -> list[str]:
    """Strings of tokens drawn independently with the training set's token frequencies and
    lengths: the floor a learned generator's validity is compared with."""
    vocab = (
        vocab_or_smiles
        if isinstance(vocab_or_smiles, Vocab)
        else Vocab.from_smiles(list(vocab_or_smiles))
    )
    rng = np.random.default_rng(seed)
    tokens = vocab.tokens[3:]
    counts = np.asarray(vocab.counts[3:], dtype=float)
    if not tokens:
        raise ValueError("empty vocabulary")
    probs = counts / counts.sum() if counts.sum() > 0 else None
    lengths = vocab.lengths or [30]
    out = []
    for _ in range(n):
        length = int(rng.choice(lengths))
        out.append("".join(rng.choice(tokens, size=length, p=probs)))
    return out
