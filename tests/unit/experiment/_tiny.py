"""A tiny experiment: digits, a small torch CNN trained one epoch, two images, two cells."""

TINY_TOML = """
name = "tiny"
seed = 3
metrics = ["additivity"]

[dataset]
name = "digits"
n_train = 300
n_background = 5

[images]
first = 2

[[models]]
backend = "torch"
architecture = "fmnist_cnn"
train = { epochs = 1, batch_size = 32, lr = 1e-2 }

[[explainers]]
name = "partition"
maskers = ["blur(3,3)"]
params = { max_evals = 40 }

[[explainers]]
name = "deep"
"""
