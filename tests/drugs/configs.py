"""Design-run settings for tests."""

# A generator small enough to train in seconds on a CPU (the product's defaults take minutes).
TINY_GAN = {
    "pretrain_epochs": 2,
    "adversarial_epochs": 1,
    "batch_size": 32,
    "embed_dim": 16,
    "hidden_dim": 48,
    "layers": 1,
    "samples_per_epoch": 64,
    "pg_steps_per_epoch": 2,
    "discriminator_steps_per_epoch": 2,
    "discriminator_pretrain_steps": 2,
    "max_length": 80,
    "lr": 5e-3,
    "w_qed": 0.5,
}
