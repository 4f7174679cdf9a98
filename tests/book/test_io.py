"""fastdl.io save / load and the state_dict / load_state_dict methods they are built on."""

import zipfile

import numpy as np
import pytest

from fastdl import io
from fastdl.activations import ReLU, Sigmoid, Tanh
from fastdl.layers import Conv2D, Dense
from fastdl.losses import SoftmaxCrossEntropy
from fastdl.network import NeuralNetwork
from fastdl.optimizers import SGDMomentum


def _mlp(seed=1, hidden=6, dtype=np.float32, dropout=1.0):
    return NeuralNetwork([Dense(hidden, Tanh(), dropout=dropout, dtype=dtype), Dense(3, Sigmoid(), dtype=dtype)],
                         loss=SoftmaxCrossEntropy(), seed=seed)


def _cnn(seed=1):
    return NeuralNetwork([Conv2D(3, 3, activation=ReLU(), flatten=True), Dense(4)], loss=SoftmaxCrossEntropy(),
                         seed=seed)


def _x(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.fixture
def trained_mlp():
    net = _mlp(dropout=0.8)
    x, y = _x((8, 5)), np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    net.train_batch(x, y)
    return net, x


def test_state_dict_names_and_copies(trained_mlp):
    net, _ = trained_mlp
    state = net.state_dict()
    assert list(state) == ["layers.0.params.0", "layers.0.params.1", "layers.1.params.0", "layers.1.params.1"]
    assert state["layers.0.params.0"].shape == (5, 6) and state["layers.1.params.1"].shape == (1, 3)
    state["layers.0.params.0"][:] = 0  # a copy: the network is unchanged
    assert np.any(net.layers[0].params[0] != 0)
    assert Dense(3).state_dict() == {}  # not set up yet: nothing to save


@pytest.mark.parametrize("make,shape", [(_mlp, (7, 5)), (_cnn, (2, 2, 6, 6))])
def test_round_trip_gives_identical_predictions(tmp_path, make, shape):
    net = make(seed=3)
    x = _x(shape)
    expected = net.forward(x, inference=True)
    path = tmp_path / "model.npz"
    io.save(net, path)
    assert path.exists() and not list(tmp_path.glob(".fastdl-*"))  # exact name, no temporary left over
    fresh = make(seed=99)  # never saw a batch: set up from the file's shapes
    assert io.load(fresh, path) is fresh
    np.testing.assert_array_equal(fresh.forward(x, inference=True), expected)
    other = make(seed=42)
    other.forward(x)  # already set up with other weights: overwritten in place
    params_before = [id(p) for p in other.params()]
    io.load(other, str(path))
    assert [id(p) for p in other.params()] == params_before
    np.testing.assert_array_equal(other.forward(x, inference=True), expected)


def test_load_in_place_keeps_training_working(tmp_path, trained_mlp):
    net, x = trained_mlp
    io.save(net, tmp_path / "m.npz")
    other = _mlp(seed=5)
    optim = SGDMomentum(lr=0.1, momentum=0.9)
    optim.net = other
    y = np.eye(3, dtype=np.float32)[np.arange(8) % 3]
    other.train_batch(x, y)
    io.load(other, tmp_path / "m.npz")
    other.train_batch(x, y)
    optim.step()  # the optimizer updates the very arrays the operations use
    assert not np.array_equal(other.forward(x, inference=True), net.forward(x, inference=True))


def test_float64_round_trip(tmp_path):
    net = _mlp(dtype=np.float64)
    x = _x((4, 5), dtype=np.float64)
    expected = net.forward(x, inference=True)
    io.save(net, tmp_path / "f64.npz")
    fresh = _mlp(seed=8, dtype=np.float64)
    io.load(fresh, tmp_path / "f64.npz")
    np.testing.assert_array_equal(fresh.forward(x, inference=True), expected)
    with pytest.raises(ValueError, match=r"layers\.0\.params\.0 has dtype float64 .* float32"):
        io.load(_mlp(seed=8, dtype=np.float32), tmp_path / "f64.npz")


def test_mismatches_are_explained_and_change_nothing(trained_mlp):
    net, x = trained_mlp
    state = net.state_dict()
    other = _mlp(seed=2)
    other.forward(x)
    before = other.state_dict()

    def unchanged():
        for name, value in other.state_dict().items():
            np.testing.assert_array_equal(value, before[name])

    bad_shape = _mlp(seed=2, hidden=7)
    with pytest.raises(ValueError, match=r"layers\.0\.params\.0 has shape \(5, 6\) .* \(5, 7\)"):
        bad_shape.load_state_dict(state)
    assert bad_shape.layers[0].first  # the failed load left it un-set-up

    missing = dict(state)
    del missing["layers.1.params.1"]
    with pytest.raises(ValueError, match=r"missing \['layers\.1\.params\.1'\]"):
        other.load_state_dict(missing)
    unchanged()

    extra = dict(state, **{"layers.5.params.0": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"unexpected names \['layers\.5\.params\.0'\]"):
        other.load_state_dict(extra)
    unchanged()

    wrong_dtype = dict(state, **{"layers.1.params.0": state["layers.1.params.0"].astype(np.float64)})
    with pytest.raises(ValueError, match=r"layers\.1\.params\.0 has dtype float64"):
        other.load_state_dict(wrong_dtype)
    unchanged()  # layer 0 was loaded before layer 1 failed, and has been rolled back

    with pytest.raises(TypeError, match="mapping"):
        other.load_state_dict([("layers.0.params.0", state["layers.0.params.0"])])

    other.load_state_dict(missing, strict=False)  # the names that do match are loaded
    np.testing.assert_array_equal(other.layers[0].params[0], state["layers.0.params.0"])
    np.testing.assert_array_equal(other.layers[1].params[1], before["layers.1.params.1"])


def test_layer_state_dict_round_trip():
    a, b = Conv2D(2, 3, dtype=np.float64), Conv2D(2, 3, dtype=np.float64)
    a.seed, b.seed = 1, 2
    x = _x((1, 3, 5, 5), dtype=np.float64)
    y = a.forward(x)
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(b.forward(x), y)
    with pytest.raises(ValueError, match=r"Conv2D.*\(batch, 3, H, W\)"):
        b.forward(_x((1, 2, 5, 5), dtype=np.float64))


def test_layer_type_mismatch_in_file(tmp_path):
    io.save(_mlp(), tmp_path / "mlp.npz")
    with pytest.raises(ValueError, match=r"mlp\.npz holds a network of layers \['Dense', 'Dense'\]"):
        io.load(_cnn(), tmp_path / "mlp.npz")


def _corruptions(good):
    data = good.read_bytes()
    middle = bytearray(data)
    for i in range(len(data) // 3, len(data) // 3 + 64):
        middle[i] ^= 0xFF
    return {
        "truncated": data[: len(data) // 2],
        "cut-at-end": data[:-10],
        "flipped-bytes": bytes(middle),
        "empty": b"",
        "text": b"these are not the weights you are looking for\n",
    }


@pytest.mark.parametrize("kind", ["truncated", "cut-at-end", "flipped-bytes", "empty", "text"])
def test_corrupt_file_is_a_clear_error(tmp_path, kind):
    good = tmp_path / "good.npz"
    io.save(_mlp(), good)
    bad = tmp_path / f"{kind}.npz"
    bad.write_bytes(_corruptions(good)[kind])
    net = _mlp(seed=4)
    with pytest.raises(ValueError, match=rf"{kind}\.npz"):
        io.load(net, bad)
    assert net.layers[0].first  # nothing was half-loaded


def test_foreign_files_are_refused(tmp_path):
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, **{"_meta.format": np.array(1), "layers.0.params.0": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="pickled.npz"):
        io.load(_mlp(), pickled)
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.zeros(3))
    with pytest.raises(ValueError, match="plain.npz has no '_meta.format'"):
        io.load(_mlp(), plain)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(ValueError, match="single.npy"):
        io.load(_mlp(), npy)
    with pytest.raises(FileNotFoundError):
        io.load(_mlp(), tmp_path / "missing.npz")


def test_file_is_a_plain_npz(tmp_path):
    net = _mlp()
    net.forward(_x((2, 5)))
    io.save(net, tmp_path / "plain")  # no suffix added
    assert zipfile.is_zipfile(tmp_path / "plain")
    with np.load(tmp_path / "plain", allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["layers.1.params.0"], net.layers[1].params[0])
        assert list(archive["_meta.layers"]) == ["Dense", "Dense"]
