"""The book API (lincoln at L2019) is mirrored: module paths, class names,
class hierarchy, constructor/method signatures and the attributes outside code touches.

The L2019 signatures are written out below (lincoln itself cannot be imported at L2019: its
losses module imports a removed helper). fastdl may ADD trailing keyword arguments with defaults
(dtype, stride, padding, progress, ...) but never rename, reorder or drop the book's.
"""

import importlib
import inspect

import numpy as np
import pytest

REQ = inspect.Parameter.empty
NEW_INSTANCE = object()  # the book's default was a shared instance / a class; fastdl uses None

BOOK = {
    ("fastdl.base", "Operation"): {
        "__init__": [], "forward": [("input_", REQ), ("inference", False)], "backward": [("output_grad", REQ)],
        "_output": [("inference", REQ)], "_input_grad": [("output_grad", REQ)]},
    ("fastdl.base", "ParamOperation"): {
        "__init__": [("param", REQ)], "backward": [("output_grad", REQ)], "_param_grad": [("output_grad", REQ)]},
    ("fastdl.dense", "WeightMultiply"): {"__init__": [("W", REQ)]},
    ("fastdl.dense", "BiasAdd"): {"__init__": [("B", REQ)]},
    ("fastdl.activations", "Linear"): {"__init__": []},
    ("fastdl.activations", "Sigmoid"): {"__init__": []},
    ("fastdl.activations", "Tanh"): {"__init__": []},
    ("fastdl.activations", "ReLU"): {"__init__": []},
    ("fastdl.dropout", "Dropout"): {"__init__": [("keep_prob", 0.8)]},
    ("fastdl.reshape", "Flatten"): {"__init__": []},
    ("fastdl.conv", "Conv2D_Op"): {"__init__": [("W", REQ)]},
    ("fastdl.layers", "Layer"): {
        "__init__": [("neurons", REQ)], "forward": [("input_", REQ), ("inference", False)],
        "backward": [("output_grad", REQ)], "_setup_layer": [("input_", REQ)], "_param_grads": [], "_params": []},
    ("fastdl.layers", "Dense"): {
        "__init__": [("neurons", REQ), ("activation", NEW_INSTANCE), ("conv_in", False), ("dropout", 1.0),
                     ("weight_init", "standard")]},
    ("fastdl.layers", "Conv2D"): {
        "__init__": [("out_channels", REQ), ("param_size", REQ), ("dropout", 1.0), ("weight_init", "normal"),
                     ("activation", NEW_INSTANCE), ("flatten", False)]},
    ("fastdl.losses", "Loss"): {
        "__init__": [], "forward": [("prediction", REQ), ("target", REQ)], "backward": [], "_output": [],
        "_input_grad": []},
    ("fastdl.losses", "MeanSquaredError"): {"__init__": [("normalize", False)]},
    ("fastdl.losses", "SoftmaxCrossEntropy"): {"__init__": [("eps", 1e-9)]},
    ("fastdl.network", "LayerBlock"): {
        "__init__": [("layers", REQ)], "forward": [("X_batch", REQ), ("inference", False)],
        "backward": [("loss_grad", REQ)], "params": [], "param_grads": [], "__iter__": [], "__repr__": []},
    ("fastdl.network", "NeuralNetwork"): {
        "__init__": [("layers", REQ), ("loss", NEW_INSTANCE), ("seed", 1)],
        "forward_loss": [("X_batch", REQ), ("y_batch", REQ), ("inference", False)],
        "train_batch": [("X_batch", REQ), ("y_batch", REQ), ("inference", False)]},
    ("fastdl.optimizers", "Optimizer"): {
        "__init__": [("lr", 0.01), ("final_lr", 0), ("decay_type", None)], "step": [("epoch", 0)],
        "_setup_decay": [], "_decay_lr": []},
    ("fastdl.optimizers", "SGD"): {"__init__": [("lr", 0.01), ("final_lr", 0), ("decay_type", None)]},
    ("fastdl.optimizers", "SGDMomentum"): {
        "__init__": [("lr", 0.01), ("final_lr", 0), ("decay_type", None), ("momentum", 0.9)]},
    ("fastdl.optimizers", "AdaGrad"): {
        "__init__": [("lr", 0.01), ("final_lr_exp", 0), ("final_lr_linear", 0)]},
    ("fastdl.optimizers", "RegularizedSGD"): {"__init__": [("lr", 0.01), ("alpha", 0.1)]},
    ("fastdl.train", "Trainer"): {
        "__init__": [("net", REQ), ("optim", REQ)],
        "fit": [("X_train", REQ), ("y_train", REQ), ("X_test", REQ), ("y_test", REQ), ("epochs", 100),
                ("eval_every", 10), ("batch_size", 32), ("seed", 1), ("single_output", False),
                ("restart", True), ("early_stopping", True), ("conv_testing", False)],
        "generate_batches": [("X", REQ), ("y", REQ), ("size", 32)]},
}

NP_UTILS = {
    "to_2d": [("a", REQ), ("type", "col")], "normalize": [("a", REQ)], "unnormalize": [("a", REQ)],
    "permute_data": [("X", REQ), ("y", REQ)],
    "generate_batch": [("X", REQ), ("y", REQ), ("start", 0), ("batch_size", 10)],
    "assert_same_shape": [("output", REQ), ("output_grad", REQ)], "assert_dim": [("t", REQ), ("dim", REQ)],
    "softmax": [("x", REQ), ("axis", None)],
}

SUBCLASSES = [
    ("fastdl.base", "ParamOperation", "fastdl.base", "Operation"),
    ("fastdl.dense", "WeightMultiply", "fastdl.base", "ParamOperation"),
    ("fastdl.dense", "BiasAdd", "fastdl.base", "ParamOperation"),
    ("fastdl.conv", "Conv2D_Op", "fastdl.base", "ParamOperation"),
    ("fastdl.activations", "ReLU", "fastdl.base", "Operation"),
    ("fastdl.dropout", "Dropout", "fastdl.base", "Operation"),
    ("fastdl.reshape", "Flatten", "fastdl.base", "Operation"),
    ("fastdl.layers", "Dense", "fastdl.layers", "Layer"),
    ("fastdl.layers", "Conv2D", "fastdl.layers", "Layer"),
    ("fastdl.losses", "SoftmaxCrossEntropy", "fastdl.losses", "Loss"),
    ("fastdl.losses", "CrossEntropy", "fastdl.losses", "Loss"),
    ("fastdl.network", "NeuralNetwork", "fastdl.network", "LayerBlock"),
    ("fastdl.optimizers", "AdaGrad", "fastdl.optimizers", "Optimizer"),
]


def _get(module, name):
    return getattr(importlib.import_module(module), name)


def check_signature(func, expected, where):
    params = list(inspect.signature(func).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.POSITIONAL_ONLY)]
    got = [p.name for p in named[:len(expected)]]
    assert got == [n for n, _ in expected], f"{where}: parameters {got}, book has {[n for n, _ in expected]}"
    for p, (name, default) in zip(named, expected):
        if default is NEW_INSTANCE:
            assert p.default is None, f"{where}: {name} should default to None (a fresh instance per object)"
        elif default is REQ:
            assert p.default is REQ, f"{where}: {name} must stay required"
        else:
            assert p.default == default and type(p.default) is type(default), \
                f"{where}: {name} defaults to {p.default!r}, book has {default!r}"
    for p in params[len(expected):]:
        assert p.default is not REQ or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD), \
            f"{where}: extra parameter {p.name} needs a default"


@pytest.mark.parametrize("key", list(BOOK), ids=lambda k: f"{k[0]}.{k[1]}")
def test_class_signatures(key):
    cls = _get(*key)
    assert inspect.isclass(cls) and cls.__name__ == key[1]
    for method, expected in BOOK[key].items():
        check_signature(getattr(cls, method), expected, f"{key[1]}.{method}")


@pytest.mark.parametrize("name", list(NP_UTILS))
def test_np_utils_signatures(name):
    check_signature(_get("fastdl.utils.np_utils", name), NP_UTILS[name], f"np_utils.{name}")
    from fastdl.utils import np_utils  # the book's `from lincoln.utils import ...` form works too

    assert hasattr(np_utils, "Batch")


@pytest.mark.parametrize("sub_mod,sub,base_mod,base", SUBCLASSES)
def test_hierarchy(sub_mod, sub, base_mod, base):
    assert issubclass(_get(sub_mod, sub), _get(base_mod, base))


def test_book_modules_all_import_and_dead_names_stay_out():
    for mod in ["base", "activations", "dense", "conv", "reshape", "dropout", "layers", "losses", "network",
                "optimizers", "train", "utils.np_utils"]:
        importlib.import_module(f"fastdl.{mod}")
    losses = importlib.import_module("fastdl.losses")
    assert not hasattr(losses, "SoftmaxCrossEntropyComplex")  # broken at L2019, not ported
    assert not hasattr(importlib.import_module("fastdl.conv"), "Conv2DOperation")


def test_attributes_outside_code_touches():
    from fastdl.activations import Linear, Tanh
    from fastdl.layers import Conv2D, Dense
    from fastdl.losses import MeanSquaredError, SoftmaxCrossEntropy
    from fastdl.network import NeuralNetwork
    from fastdl.optimizers import AdaGrad, SGDMomentum
    from fastdl.train import Trainer

    dense = Dense(5, Tanh(), weight_init="glorot")
    assert (dense.neurons, dense.first, dense.params, dense.param_grads, dense.operations) == (5, True, [], [], [])
    assert (dense.conv_in, dense.dropout, dense.weight_init) == (False, 1.0, "glorot")
    assert isinstance(dense.activation, Tanh)
    conv = Conv2D(4, 3, flatten=True)
    assert (conv.neurons, conv.out_channels, conv.param_size, conv.flatten, conv.dropout, conv.weight_init) == \
        (4, 4, 3, True, 1.0, "normal")
    assert isinstance(conv.activation, Linear)

    sce = SoftmaxCrossEntropy()
    assert sce.eps == 1e-9 and sce.single_class is False
    net = NeuralNetwork([dense, conv], seed=7)
    assert net.layers == [dense, conv] and net.seed == 7 and dense.seed == 7 and conv.seed == 7
    assert isinstance(net.loss, MeanSquaredError)  # an instance, not the class (book bug fixed)
    assert list(iter(net)) == [dense, conv] and repr(net).startswith("NeuralNetwork(")

    opt = SGDMomentum(0.1, momentum=0.9)  # the notebooks' positional form
    assert (opt.lr, opt.final_lr, opt.decay_type, opt.momentum, opt.first) == (0.1, 0, None, 0.9, True)
    trainer = Trainer(net, opt)
    assert trainer.net is net and opt.net is net and trainer.best_loss == 1e9
    assert AdaGrad(0.1, 0.01).decay_type == "exponential"  # book bug: final_lr_linear became decay_type
    assert AdaGrad(0.1, 0, 0.02).decay_type == "linear" and AdaGrad().decay_type is None


def test_default_activation_is_not_shared():
    from fastdl.layers import Conv2D, Dense

    assert Dense(3).activation is not Dense(3).activation
    assert Conv2D(2, 3).activation is not Conv2D(2, 3).activation


def test_np_utils_behaviour():
    from fastdl.utils import np_utils as u

    a = np.arange(3.0)
    assert u.to_2d(a).shape == (3, 1) and u.to_2d(a, "row").shape == (1, 3)
    assert u.normalize(a.reshape(-1, 1)).tolist() == [[0, 1], [1, 0], [2, -1]]
    assert u.unnormalize(np.eye(2)).tolist() == [[1, 0]]
    x = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(u.softmax(x, axis=1).sum(axis=1), 1.0)
    np.testing.assert_allclose(u.softmax(x).sum(), 1.0)
    X, y = np.arange(10).reshape(5, 2), np.arange(5)
    Xp, yp = u.permute_data(X, y, rng=np.random.default_rng(1))
    assert (Xp[:, 0] // 2 == yp).all() and sorted(yp) == list(range(5))
    assert u.generate_batch(X, X, start=4, batch_size=3)[0].shape == (1, 2)
    with pytest.raises(AssertionError):
        u.assert_same_shape(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError):
        u.assert_dim(np.zeros(2), 2)
