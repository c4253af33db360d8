"""`xaibench explain IMAGE --checkpoint FILE`: a tiny torch cifar_convnet saved to a bare
checkpoint explains PNGs of other sizes and modes, its class names and input shape given on the
command line or read from an xaibench sidecar; a user's model from its state_dict; one-line
errors for a missing file, another architecture or framework, an unreadable image."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from tests.backends import _user_models as um
from xaibench.cli import main
from xaibench.experiment.single_image import explain_checkpoint, read_image

torch = pytest.importorskip("torch")

from backends.torch_backend import TorchBackend  # noqa: E402
from xaibench import ImageSpec  # noqa: E402

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
           "truck")
SPEC = ImageSpec((32, 32, 3), CLASSES)
#: the command line of the bare checkpoint (after IMAGE --checkpoint FILE)
BARE = ["--backend", "torch", "--model", "cifar_convnet", "--arch-param", "width=1",
        "--classes", ",".join(CLASSES), "--input-shape", "32x32x3"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """model.pt (width-1 cifar_convnet, seed 3), a 50x40 RGBA PNG, a 13x17 grey PNG and a
    folder of three background PNGs of other sizes."""
    folder = tmp_path_factory.mktemp("checkpoint")
    backend = TorchBackend.from_zoo("cifar_convnet", SPEC, seed=3, width=1)
    backend.save(folder / "model.pt")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 40, 4), dtype=np.uint8), "RGBA").save(
        folder / "photo.png")
    Image.fromarray(rng.integers(0, 256, (13, 17), dtype=np.uint8), "L").save(folder / "scan.png")
    (folder / "bg").mkdir()
    for i, size in enumerate((20, 64, 33)):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(
            folder / "bg" / f"{i}.png")
    (folder / "bg" / "notes.txt").write_text("not an image")
    return {"folder": folder, "backend": backend, "model": folder / "model.pt",
            "photo": folder / "photo.png", "scan": folder / "scan.png", "bg": folder / "bg"}


def _run(files, *args, capsys):
    code = main(["explain", str(files["photo"]), "--checkpoint", str(files["model"]), *args,
                 "--figure", str(files["folder"] / "fig.png")])
    captured = capsys.readouterr()
    return code, captured.out.splitlines(), captured.err


def test_bare_checkpoint_with_classes_and_blank_background(files, capsys):
    code, out, err = _run(files, *BARE, "--top-k", "2", capsys=capsys)
    assert code == 0, err
    assert out[0].endswith("torch:cifar_convnet (model.pt), deep")
    assert [line.split()[1] for line in out[1:3]] == [
        CLASSES[i] for i in np.argsort(-files["backend"].predict(read_image(files["photo"],
                                                                            SPEC))[0])[:2]]
    assert out[3] == "background: one black image (default)"
    assert err.count("\n") == 1 and "warning: no --background and no dataset" in err
    assert (files["folder"] / "fig.png").is_file()


def test_explanation_is_the_checkpoints_model(files):
    result = explain_checkpoint(files["scan"], files["model"], backend="torch",
                                model="cifar_convnet", arch_params={"width": 1},
                                class_names=CLASSES, input_shape=(32, 32, 3),
                                background=files["bg"], top_k=3)
    x = read_image(files["scan"], SPEC)  # grey 13x17 -> RGB 32x32
    scores = files["backend"].predict(x)[0]
    np.testing.assert_allclose(result.probabilities,
                               np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum(),
                               rtol=1e-5)
    assert result.attribution.values.shape == (1, 32, 32, 3, 3)
    assert result.attribution.additivity_gap().max() < 1e-4  # DeepLIFT on nn.ReLU modules
    assert result.background == f"3 images of the folder {files['bg']}"
    assert result.background_warning is None


def test_sidecar_gives_model_params_and_dataset(files, capsys):
    from xaibench.experiment.checkpoints import _save
    from xaibench.experiment.plan import ModelPlan

    grey = ImageSpec((32, 32, 1), ("a", "b", "c", "d"))
    backend = TorchBackend.from_zoo("cifar_convnet", grey, seed=0, width=1)
    plan = ModelPlan(key="k" * 16, backend="torch", architecture="cifar_convnet",
                     dataset="synthetic", dataset_params={"size": 32, "n_train": 20,
                                                          "n_test": 4},
                     n_train=None, data=None, train={}, seed=0, params={"width": 1},
                     weights_from=None)
    path = files["folder"] / "cache" / "k.ckpt"
    path.parent.mkdir()
    _save(backend, plan, path, 1.0, {})
    assert main(["explain", str(files["photo"]), "--checkpoint", str(path), "--explainer",
                 "gradient", "--param", "nsamples=8", "--n-background", "5",
                 "--figure", str(files["folder"] / "side.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("torch:cifar_convnet (k.ckpt), gradient")
    assert "background: 5 training images of synthetic" in out
    sidecar = json.loads(path.with_suffix(".json").read_text())
    path.with_suffix(".json").write_text(json.dumps({**sidecar, "sha256": "0" * 64}))
    assert main(["explain", str(files["photo"]), "--checkpoint", str(path)]) == 2
    assert "has no xaibench sidecar (k.json)" in capsys.readouterr().err  # of another file


def test_user_model_from_its_state_dict(tmp_path, files, capsys, monkeypatch):
    um.write_torch(tmp_path, steps=5)
    monkeypatch.chdir(tmp_path)
    assert main(["explain", str(files["photo"]), "--checkpoint", "net.pt", "--backend", "torch",
                 "--model", "tiny_torch_net:Net", "--dataset", "digits", "--explainer",
                 "partition", "--masker", "blur(3,3)", "--param", "max_evals=40",
                 "--figure", str(tmp_path / "fig.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("torch:tiny_torch_net:Net (net.pt), partition (blur(3,3))")
    assert not any(line.startswith("background") for line in out)  # partition takes none
    # a TorchScript file holds its architecture: no --model (deep needs module hooks)
    import tiny_torch_net

    net = tiny_torch_net.Net()
    net.load_state_dict(torch.load("net.pt"))
    torch.jit.script(net).save("net.ts")
    assert main(["explain", str(files["scan"]), "--checkpoint", "net.ts", "--backend", "torch",
                 "--dataset", "digits", "--n-background", "5", "--explainer", "gradient",
                 "--param", "nsamples=8", "--figure", str(tmp_path / "ts.png")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("torch:net.ts, gradient")
    assert "background: 5 training images of digits" in out


@pytest.mark.parametrize("change, message", [
    ({"checkpoint": "missing.pt"}, r"checkpoint .*missing\.pt is not a file"),
    ({"args": ["--arch-param", "width=2"]}, r"does not match the model.*shape mismatch.*not a "
                                            r"torch checkpoint of cifar_convnet with params "
                                            r"\{'width': 2\}"),
    ({"bare": [*BARE[:3], "fmnist_cnn", *BARE[6:]]},
     r"does not match the model.*missing.*not a torch checkpoint of fmnist_cnn"),
    ({"checkpoint": "keras.weights.h5"}, r"keras\.weights\.h5 looks like a keras file, not a "
                                         r"torch checkpoint; give --backend keras"),
    ({"checkpoint": "garbage.pt"}, r"cannot read torch checkpoint .*garbage\.pt.* -- .* is not a "
                                   r"torch checkpoint of cifar_convnet with params \{'width': 1\}; "
                                   r"give the --backend, --model and --arch-param it was saved"),
    ({"args": ["--backend", "flax"]}, r"model\.pt looks like a torch file, not a flax checkpoint; "
                                      r"give --backend torch"),
    ({"image": "notes.txt"}, r"cannot read image .*notes\.txt"),
    ({"args": ["--model", "cifar_convnt"]}, r"unknown model 'cifar_convnt' — did you mean "
                                            r"'cifar_convnet'"),
    ({"args": ["--input-shape", "32x32"]}, r"--input-shape '32x32': write HxWxC"),
    ({"args": ["--classes", "a,b"]}, r"targets = 3 .* 2 classes"),
    ({"args": ["--dataset", "digits"]}, r"--classes lists 10 names but dataset 'digits' has 10"
                                        r"|--input-shape 32x32x3 differs from the 8x8x1 images"),
    ({"args": ["--background", "nowhere"]}, r"--background nowhere: not a folder holding PNG"),
    ({"bare": ["--backend", "torch"]}, r"classes and input shape are unknown: give --dataset"),
    ({"bare": []}, r"has no xaibench sidecar \(model\.json\).*give --backend"),
    ({"results": True}, r"--backend, --arch-param, --classes, --input-shape apply to "
                        r"--checkpoint only"),
])
def test_errors_are_one_line(files, change, message, capsys):
    (files["folder"] / "keras.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    (files["folder"] / "notes.txt").write_text("not an image")
    (files["folder"] / "garbage.pt").write_bytes(bytes(range(256)))
    image = files["folder"] / change.get("image", "photo.png")
    source = (["--results", str(files["folder"])] if change.get("results") else
              ["--checkpoint", str(files["folder"] / change.get("checkpoint", "model.pt"))])
    bare = change.get("bare", BARE)
    assert main(["explain", str(image), *source, *bare, *change.get("args", []),
                 "--figure", str(files["folder"] / "error.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert re.search(message, err), err
