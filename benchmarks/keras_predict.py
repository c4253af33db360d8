"""Keras ``model.predict`` vs ``KerasBackend.predict`` (tf.function, fixed signature).

Prints milliseconds per call and the ratio for 1-image calls (what shap's explainers and the
metrics do most) and for a 64-image batch, on the fmnist_cnn at 28x28x1.

    python benchmarks/keras_predict.py [--calls 200]
"""

from __future__ import annotations

from _timing import SPEC, calls_argument, compare_predict
from backends.keras_backend import KerasBackend  # sets TF_CPP_MIN_LOG_LEVEL before TF loads


def main() -> None:
    calls = calls_argument(__doc__)
    backend = KerasBackend.from_zoo("fmnist_cnn", SPEC, seed=0)
    compare_predict(backend, "model.predict ms", lambda x: backend.model.predict(x, verbose=0),
                    batch_sizes=(1, 64), calls=calls, slow_calls=max(calls // 5, 5))


if __name__ == "__main__":
    main()
