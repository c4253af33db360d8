"""Framework adapters: the only place torch, tensorflow and jax are imported."""
