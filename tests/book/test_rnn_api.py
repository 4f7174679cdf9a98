"""Chapter 6's API (fastdl.rnn): nodes, fused sequence layers, model, optimizers, trainer.

Gradients are checked against central finite differences in float64 with the carried state held
fixed; the per-step nodes and the fused layers must agree; a tiny character model must learn.
Runs on the backend chosen by FASTDL_BACKEND.
"""

import copy

import numpy as np
import pytest

from fastdl import datasets
from fastdl.rnn import (GRULayer, GRUNode, LSTM, LSTMLayer, LSTMNode, RNNLayer, RNNModel, RNNNode, RNNTrainer,
                        SoftmaxCrossEntropy, load_text, vocabulary)
from fastdl.rnn.optimizers import SGD, AdaGrad

B, T, F, H, OUT = 2, 3, 4, 5, 3
LAYERS = [RNNLayer, LSTMLayer, GRULayer]

BOOK_KEYS = {
    RNNLayer: {"W_f": (H + F, H), "B_f": (1, H), "W_v": (H, OUT), "B_v": (1, OUT)},
    LSTMLayer: {"W_f": (H + F, H), "B_f": (1, H), "W_i": (H + F, H), "B_i": (1, H),
                "W_c": (H + F, H), "B_c": (1, H), "W_o": (H + F, H), "B_o": (1, H), "W_v": (H, OUT), "B_v": (1, OUT)},
    GRULayer: {"W_xr": (F, H), "W_hr": (H, H), "B_r": (1, H), "W_xu": (F, H), "W_hu": (H, H), "B_u": (1, H),
               "W_xh": (F, H), "W_hh": (H, H), "B_h": (1, H), "W_v": (H, OUT), "B_v": (1, OUT)},
}


def _layer(cls, seed=0, dtype=np.float64, scale=0.5):
    layer = cls(H, OUT, weight_scale=scale, dtype=dtype)
    layer.seed = seed
    return layer


def _data(seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((B, T, F)), rng.standard_normal((B, T, OUT))


def _set_states(layer, rng_seed=7):
    """Fix the carried state(s) to a non-zero value (the same every call)."""
    rng = np.random.default_rng(rng_seed)
    for name in layer.STATES:
        setattr(layer, name, 0.5 * rng.standard_normal((1, H)))


def _objective(layer, x, g):
    _set_states(layer)
    return float(np.sum(layer.forward(x) * g))


# ----------------------------------------------------------------------------------------------
# layout

@pytest.mark.parametrize("cls", LAYERS)
def test_dict_layout_and_keys_as_the_book(cls):
    layer = cls(H, OUT)
    assert layer.first and layer.start_H.shape == (1, H)
    assert (layer.start_C.shape == (1, H)) if cls is LSTMLayer else not hasattr(layer, "start_C")
    out = layer.forward(np.zeros((B, T, F)))
    assert out.shape == (B, T, OUT) and out.dtype == np.float32  # fastdl's default dtype
    assert list(layer.params) == list(BOOK_KEYS[cls])  # the book's keys, in its order
    for key, shape in BOOK_KEYS[cls].items():
        assert set(layer.params[key]) == {"value", "deriv"}
        assert layer.params[key]["value"].shape == shape and layer.params[key]["deriv"].shape == shape
        assert not layer.params[key]["deriv"].any()
    assert layer.vocab_size == F and not layer.first


def test_weight_scales():
    rnn = RNNLayer(H, OUT)
    rnn.forward(np.zeros((1, 1, F)))
    assert rnn.weight_scale == pytest.approx(2 / (F + OUT))
    gru = GRULayer(64, 64, weight_scale=0.01)
    gru.seed = 3
    gru.forward(np.zeros((1, 1, 64)))
    for key in ("B_h", "W_v", "B_v"):  # the book drew these with scale 1.0 (bug 27): fixed
        assert np.std(gru.params[key]["value"]) < 0.02
    assert LSTM is LSTMLayer


# ----------------------------------------------------------------------------------------------
# gradients against finite differences (float64, carried state held fixed)

@pytest.mark.parametrize("cls", LAYERS)
def test_input_gradient_matches_finite_differences(cls):
    layer = _layer(cls)
    x, g = _data()
    _objective(layer, x, g)
    for entry in layer.params.values():
        entry["deriv"][...] = 0
    grad = layer.backward(g)
    assert grad.shape == x.shape
    num = np.zeros_like(x)
    eps = 1e-6
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        num[idx] = (_objective(layer, xp, g) - _objective(layer, xm, g)) / (2 * eps)
    np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("cls", LAYERS)
def test_param_derivs_match_finite_differences(cls):
    layer = _layer(cls)
    x, g = _data(2)
    _objective(layer, x, g)
    layer._clear_gradients()
    layer.backward(g)
    rng = np.random.default_rng(5)
    eps = 1e-6
    for key, entry in layer.params.items():
        value, deriv = entry["value"], entry["deriv"]
        assert np.abs(deriv).max() > 1e-6, f"{key}: zero gradient"  # the book's GRU had all zeros
        for _ in range(3):
            idx = tuple(int(rng.integers(n)) for n in value.shape)
            old = value[idx]
            value[idx] = old + eps
            fp = _objective(layer, x, g)
            value[idx] = old - eps
            fm = _objective(layer, x, g)
            value[idx] = old
            assert deriv[idx] == pytest.approx((fp - fm) / (2 * eps), rel=1e-6, abs=1e-8), key


@pytest.mark.parametrize("cls", LAYERS)
def test_derivs_accumulate_and_clear(cls):
    layer = _layer(cls)
    x, g = _data()
    layer.forward(x)
    layer.backward(g)
    layer._clear_gradients()
    layer.backward(g)
    first = {k: e["deriv"].copy() for k, e in layer.params.items()}
    layer.backward(g)
    for key, entry in layer.params.items():
        np.testing.assert_allclose(entry["deriv"], 2 * first[key], rtol=1e-12, atol=1e-14)
    layer._clear_gradients()
    assert all(not e["deriv"].any() for e in layer.params.values())


@pytest.mark.parametrize("cls", LAYERS)
def test_single_step_writes_the_derivs_that_clear_then_backward_adds(cls):
    """single_step writes each gradient into its deriv in one pass; the derivs (stale ones from an earlier
    backward included, and one replaced by a wrongly shaped array) equal the book's clear-then-add, and a
    subclass with its own backward still gets a clear first."""
    class OwnBackward(cls):
        def backward(self, x_seq_out_grad):
            return super().backward(x_seq_out_grad)

    derivs = []
    for layer_cls in (cls, OwnBackward):
        for fused in (True, False):
            layers = [layer_cls(H, OUT, weight_scale=0.5, dtype=np.float64), cls(H, F, weight_scale=0.5,
                                                                               dtype=np.float64)]
            model = RNNModel(layers, sequence_length=T, vocab_size=F, seed=3)
            x = np.eye(F)[np.random.default_rng(4).integers(0, F, size=(B, T))]
            model.single_step(x, x)  # stale derivs to be replaced
            layers[0].params["B_v"]["deriv"] = np.zeros(3)
            if fused:
                model.single_step(x, x)
            else:
                model.loss.forward(model.forward(x), x)
                grad = model.loss.backward()
                for layer in layers:
                    layer._clear_gradients()
                model.backward(grad)
            derivs.append([{k: e["deriv"].copy() for k, e in layer.params.items()} for layer in layers])
    for other in derivs[1:]:
        for ours, theirs in zip(derivs[0], other):
            assert ours.keys() == theirs.keys()
            for key in ours:
                assert ours[key].shape == theirs[key].shape
                np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)


# ----------------------------------------------------------------------------------------------
# nodes (the book's per-step classes) agree with the fused layers

def _run_nodes(cls, params, x, g, states):
    """Forward and backward through per-step nodes; returns (outputs, input grad)."""
    node_cls = {RNNLayer: RNNNode, LSTMLayer: LSTMNode, GRULayer: GRUNode}[cls]
    nodes = [node_cls() for _ in range(T)]
    state = [np.repeat(s, B, axis=0) for s in states]
    outs = []
    for t in range(T):
        y, *state = nodes[t].forward(x[:, t], *state, params)
        outs.append(y)
    grads_state = [np.zeros((B, H)) for _ in states]
    dx = np.zeros_like(x)
    for t in reversed(range(T)):
        dx[:, t], *grads_state = nodes[t].backward(g[:, t], *grads_state, params)
    return np.stack(outs, axis=1), dx


@pytest.mark.parametrize("cls", LAYERS)
def test_nodes_and_layers_agree_in_float64(cls):
    layer = _layer(cls)
    x, g = _data(3)
    _set_states(layer)
    states = [getattr(layer, s).copy() for s in layer.STATES]
    out = layer.forward(x)
    layer._clear_gradients()
    dx = layer.backward(g)
    params = {k: {"value": e["value"].copy(), "deriv": np.zeros_like(e["value"])} for k, e in layer.params.items()}
    node_out, node_dx = _run_nodes(cls, params, x, g, states)
    np.testing.assert_allclose(out, node_out, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, node_dx, rtol=1e-10, atol=1e-12)
    for key in params:
        np.testing.assert_allclose(layer.params[key]["deriv"], params[key]["deriv"], rtol=1e-10, atol=1e-12,
                                   err_msg=key)


# ----------------------------------------------------------------------------------------------
# carried state, in-place updates, dtype, deepcopy, seeds

@pytest.mark.parametrize("cls", LAYERS)
def test_state_carried_as_batch_mean_and_in_place_updates_seen(cls):
    layer = _layer(cls)
    x, _ = _data()
    out1 = layer.forward(x)
    assert layer.start_H.shape == (1, H) and layer.start_H.any()
    layer.reset_state()
    np.testing.assert_array_equal(layer.forward(x), out1)  # same state, same weights: same output
    layer.reset_state()
    layer.params["W_v"]["value"] *= 2  # an optimizer's in-place updates: the next forward sees them
    layer.params["B_v"]["value"][...] = 0
    doubled = layer.forward(x)
    layer.reset_state()
    layer.params["W_v"]["value"] /= 2
    base = layer.forward(x)
    np.testing.assert_allclose(doubled, 2 * base, rtol=1e-12, atol=1e-14)
    layer.reset_state()
    layer.params["W_v"]["value"] = np.zeros_like(layer.params["W_v"]["value"])  # replaced, not updated
    assert not layer.forward(x).any()


def test_float32_and_variable_lengths():
    layer = LSTMLayer(H, OUT)
    layer.seed = 1
    y = layer.forward(np.ones((B, 5, F)))
    assert y.dtype == np.float32 and layer.params["W_f"]["value"].dtype == np.float32
    assert layer.forward(np.ones((B, 7, F))).shape == (B, 7, OUT)  # longer than the first batch is fine
    assert layer.backward(np.ones((B, 7, OUT))).dtype == np.float32
    with pytest.raises(ValueError):
        layer.forward(np.ones((B, 5, F + 1)))


def _tiny_setup(cls=RNNLayer, seed=11, hidden=16, optim=None):
    V = len(vocabulary(load_text()))
    model = RNNModel([cls(hidden, V, weight_scale=0.1)], sequence_length=8, vocab_size=V,
                     loss=SoftmaxCrossEntropy(), seed=seed)
    return RNNTrainer(None, model, optim or AdaGrad(lr=0.05), batch_size=8, seed=seed)


def test_same_seed_same_weights_and_losses():
    a, b, c = _tiny_setup(GRULayer), _tiny_setup(GRULayer), _tiny_setup(GRULayer, seed=12)
    la, lb, lc = (t.train(15, sample_every=None) for t in (a, b, c))
    assert la == lb and la != lc
    for key, entry in a.model.layers[0].params.items():
        np.testing.assert_array_equal(entry["value"], b.model.layers[0].params[key]["value"])
    assert a.sample_output(0, 30, seed=4) == b.sample_output(0, 30, seed=4)


def test_deepcopy_and_sampling_leave_the_model_alone():
    trainer = _tiny_setup(LSTMLayer)
    trainer.train(3, sample_every=None)
    model = trainer.model
    clone = copy.deepcopy(model)
    start = model.layers[0].start_H.copy()
    text = trainer.sample_output(1, 20, seed=3)
    assert len(text) == 20 and set(text) <= set(trainer.chars)
    np.testing.assert_array_equal(model.layers[0].start_H, start)
    x = trainer._generate_one_hot_array(trainer._generate_inputs_targets(0)[0])
    np.testing.assert_array_equal(clone.forward(x), model.forward(x))
    clone.layers[0].params["W_v"]["value"] += 1
    assert not np.array_equal(clone.layers[0].params["W_v"]["value"], model.layers[0].params["W_v"]["value"])


# ----------------------------------------------------------------------------------------------
# optimizers, model, trainer

def test_optimizers_clip_in_place_and_update():
    layer = _layer(RNNLayer)
    layer.forward(np.ones((1, 1, F)))
    model = RNNModel([layer], 1, OUT, SoftmaxCrossEntropy())
    for entry in layer.params.values():
        entry["deriv"][...] = 5.0
    before = {k: e["value"].copy() for k, e in layer.params.items()}
    opt = SGD(lr=0.1)
    opt.model = model
    opt.step()
    for key, entry in layer.params.items():
        assert (entry["deriv"] == 2.0).all()  # clipped in place
        np.testing.assert_allclose(entry["value"], before[key] - 0.2)
    ada = AdaGrad(lr=0.1)
    ada.model = model
    ada.step()
    s = ada.sum_squares[0]["W_f"]
    np.testing.assert_allclose(s, 4.0 + 1e-7)
    with pytest.raises(AttributeError):
        SGD().step()


def test_trainer_vocabulary_sample_every_and_own_file(tmp_path, capsys):
    path = tmp_path / "t.txt"
    path.write_text("the cat sat on the mat; the bat ate the rat. " * 20)
    V = len(vocabulary(path.read_text()))
    model = RNNModel([RNNLayer(8, V)], 5, V, SoftmaxCrossEntropy(), seed=0)
    trainer = RNNTrainer(str(path), model, SGD(lr=0.01), batch_size=4, seed=0)
    assert trainer.chars == sorted(set(path.read_text())) and trainer.optim.model is model
    inputs, targets = trainer._generate_inputs_targets(2)
    np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])  # targets are shifted by one character
    np.testing.assert_array_equal(inputs[1, :-1], inputs[0, 1:])  # rows are offset by one character
    losses = trainer.train(10, sample_every=4)
    assert len(losses) == 10 and trainer.loss_history == losses
    assert capsys.readouterr().out.count("iteration ") == 3  # iterations 0, 4, 8
    with pytest.raises(ValueError):
        RNNTrainer(str(path), RNNModel([RNNLayer(8, V + 1)], 5, V, SoftmaxCrossEntropy()), SGD())
    with pytest.raises(TypeError):
        RNNTrainer(str(path))


def test_bundled_corpus():
    text = datasets.text()
    assert len(text) > 5000 and "Shall I compare thee to a summer's day?" in text
    assert load_text() == text


def test_char_model_loss_falls():
    trainer = _tiny_setup(RNNLayer, hidden=24)
    losses = trainer.train(300, sample_every=None)
    per_pos = np.array(losses) / (8 * 8)
    uniform = np.log(trainer.vocab_size) + (trainer.vocab_size - 1) * -np.log(1 - 1 / trainer.vocab_size)
    assert abs(per_pos[0] - uniform) < 0.05 * uniform
    assert per_pos[-50:].mean() < 0.85 * per_pos[0], per_pos[::50]
