"""`xaibench explain IMAGE`: one generated image file (RGBA, grey) explained by the model of a
tiny torch run (digits 8x8 grey) and by a user model, with its printed top-k and figure."""

from __future__ import annotations

import re
import tomllib

import numpy as np
import pytest
from PIL import Image

from tests.backends import _user_models as um
from tests.unit.experiment._tiny import TINY_TOML
from xaibench.backend import ImageSpec
from xaibench.cli import main
from xaibench.errors import DataError
from xaibench.experiment.single_image import explain_image, probabilities, read_image

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, cache):
    import xaibench

    config = tomllib.loads(TINY_TOML)
    config["output"] = str(tmp_path_factory.mktemp("explain_run") / "tiny")
    xaibench.run(config, progress=False, cache_dir=cache)
    return config["output"]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """An RGBA PNG (40x50) and a grey JPEG (17x13), both not the model's 8x8 size."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rgba = folder / "photo.png"
    Image.fromarray(rng.integers(0, 256, (50, 40, 4), dtype=np.uint8), "RGBA").save(rgba)
    grey = folder / "scan.jpg"
    Image.fromarray(rng.integers(0, 256, (13, 17), dtype=np.uint8), "L").save(grey)
    return {"rgba": rgba, "grey": grey, "folder": folder}


def test_read_image_converts_size_mode_and_range(images):
    grey_spec = ImageSpec((8, 8, 1), tuple("0123456789"))
    rgb_spec = ImageSpec((32, 32, 3), tuple("0123456789"))
    for path in (images["rgba"], images["grey"]):
        for spec in (grey_spec, rgb_spec):
            x = read_image(path, spec)
            assert x.shape == (1, *spec.shape) and x.dtype == np.float32
            assert 0 <= x.min() and x.max() <= 1 and x.std() > 0
    white = images["folder"] / "white.png"
    Image.new("P", (5, 5), 0).save(white)  # palette image
    assert read_image(white, rgb_spec).max() == 0.0


@pytest.mark.parametrize("kind", ["rgba", "grey"])
def test_explain_prints_top_k_and_writes_the_figure(run_dir, images, kind, capsys, tmp_path):
    figure = tmp_path / f"{kind}.png"
    assert main(["explain", str(images[kind]), "--results", run_dir, "--top-k", "3",
                 "--figure", str(figure)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("torch:fmnist_cnn, deep")
    ranked = [line.split() for line in out[1:4]]
    assert [r[0] for r in ranked] == ["1.", "2.", "3."]
    shown = [float(r[2]) for r in ranked]
    assert shown == sorted(shown, reverse=True) and 0 < sum(shown) <= 1.0001
    assert figure.is_file() and figure.with_suffix(".svg").is_file()
    assert out[-1] == f"figure: {figure}"


def test_explanation_is_the_models(run_dir, images):
    result = explain_image(images["rgba"], run_dir, explainer="partition", masker="blur(3,3)",
                           params={"max_evals": 40}, top_k=2)
    attribution = result.attribution
    assert attribution.values.shape == (1, 8, 8, 1, 2)
    assert attribution.additivity_gap().max() < 1e-4  # partition is exact on its own evals
    assert [name for name, _ in result.top_k()] == \
        [result.class_names[i] for i in np.argsort(-result.probabilities)[:2]]
    np.testing.assert_allclose(result.probabilities.sum(), 1.0, atol=1e-6)


def test_user_model(tmp_path, images, capsys):
    um.write_torch(tmp_path, steps=5)
    (tmp_path / "grid.toml").write_text(
        'name = "user"\n[dataset]\nname = "digits"\nn_train = 100\nn_background = 5\n'
        '[images]\nfirst = 1\n[[models]]\nbackend = "torch"\nmodel = "tiny_torch_net:Net"\n'
        'weights = "net.pt"\nname = "mine"\n[[explainers]]\nname = "random"\n')
    output = tmp_path / "results"
    assert main(["run", str(tmp_path / "grid.toml"), "--output", str(output),
                 "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["explain", str(images["grey"]), "--results", str(output), "--model", "mine",
                 "--figure", str(tmp_path / "fig.png")]) == 0
    assert "mine, deep" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--explainer", "partion"], r"unknown explainer 'partion' — did you mean 'partition'"),
    (["--model", "keras:fmnist"], r"holds no model named 'keras:fmnist'.*torch:fmnist_cnn"),
    (["--explainer", "partition", "--masker", "blurr(3,3)"], r"unknown masker 'blurr'"),
    (["--param", "max_evals=oops", "--explainer", "partition"], r"--param 'max_evals=oops': "
                                                               r"write KEY=VALUE"),
])
def test_errors_are_one_line(run_dir, images, args, message, capsys):
    assert main(["explain", str(images["rgba"]), "--results", run_dir, *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err


def test_unreadable_image_and_missing_results(run_dir, tmp_path, capsys):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    assert main(["explain", str(text), "--results", run_dir]) == 2
    assert "cannot read image" in capsys.readouterr().err
    with pytest.raises(DataError, match="cannot read image"):
        read_image(tmp_path / "missing.png", ImageSpec((8, 8, 1), ("a", "b")))
    assert main(["explain", str(text), "--results", str(tmp_path / "none")]) == 2
    assert "xaibench: error:" in capsys.readouterr().err


def test_probabilities_from_logits_or_softmax():
    np.testing.assert_allclose(probabilities(np.array([0.0, np.log(3.0)])), [0.25, 0.75])
    np.testing.assert_array_equal(probabilities(np.array([0.2, 0.8])), [0.2, 0.8])
