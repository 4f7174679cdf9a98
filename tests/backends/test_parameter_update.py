"""The fused optimizer step (kernels.parameter_update) against the NumPy rules, bit for bit, and the
optimizers that use it against the same optimizers taking the book's per-parameter loop."""

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from fastdl.reference.parameter_update import parameter_update as reference_update

RULES = ["sgd", "sgd_momentum", "adagrad", "regularized_sgd"]
HYPER = {"sgd": 0.0, "sgd_momentum": 0.9, "adagrad": 1e-7, "regularized_sgd": 0.01}
SHAPES = [[(1,)], [(7, 13), (13,)], [(784, 89), (1, 89), (89, 10), (1, 10)], [(40009,), (3, 5, 7, 11), (0, 4)],
          [(20011,), (0, 4), (1,), (9973, 3), (0,), (5,)]]  # the threads' equal ranges cross these boundaries


def _arrays(rule, shapes, dtype, rng):
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [(3 * rng.standard_normal(s)).astype(dtype) for s in shapes]  # some beyond the clip at 2
    states = [np.abs(rng.standard_normal(s)).astype(dtype) for s in shapes] if kernels.UPDATE_RULES[rule] else []
    return params, grads, states


def _copies(arrays):
    return [[a.copy() for a in group] for group in arrays]


@pytest.mark.parametrize("clip", [0.0, 2.0])
@pytest.mark.parametrize("shapes", SHAPES, ids=lambda s: str(len(s)))
@pytest.mark.parametrize("rule", RULES)
def test_fused_step_equals_the_numpy_rule_bit_for_bit(backend_name, rule, shapes, clip, dtype, rng):
    ours = _arrays(rule, shapes, dtype, rng)
    theirs = _copies(ours)
    with fastdl.use_backend(backend_name):
        for _ in range(3):  # several steps: the states carry over
            kernels.parameter_update(rule, *ours, lr=0.05, hyper=HYPER[rule], clip=clip)
            reference_update(rule, *theirs, 0.05, HYPER[rule], clip)
    for group_ours, group_theirs in zip(ours, theirs):
        for a, b in zip(group_ours, group_theirs):
            np.testing.assert_array_equal(a, b)
    if clip:
        assert all(np.abs(g).max(initial=0) <= clip for g in ours[1])


def test_mixed_dtypes_in_one_call(backend_name, rng):
    params = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(6)]
    grads = [rng.standard_normal(5).astype(np.float32), rng.standard_normal(6)]
    theirs = _copies([params, grads])
    with fastdl.use_backend(backend_name):
        kernels.parameter_update("sgd", params, grads, lr=0.1)
    reference_update("sgd", *theirs, [], 0.1, 0.0, 0.0)
    for a, b in zip(params, theirs[0]):
        np.testing.assert_array_equal(a, b)


def test_thread_count_does_not_change_the_step(restore_threads, rng):
    if not fastdl.backend.cpu_available():
        pytest.skip("fastdl._core is not built")
    shapes = [(100003,), (0, 3), (7,), (70001,)]  # ranges of 1, 2, 3 threads start and end inside them
    expected = _arrays("adagrad", shapes, np.float32, np.random.default_rng(1))
    reference_update("adagrad", *expected, 0.01, 1e-7, 2.0)
    for threads in (1, 2, 3):
        fastdl.set_num_threads(threads)
        params, grads, states = _arrays("adagrad", shapes, np.float32, np.random.default_rng(1))
        with fastdl.use_backend("cpu"):
            kernels.parameter_update("adagrad", params, grads, states, lr=0.01, hyper=1e-7, clip=2.0)
        for ours, theirs in zip((params, grads, states), expected):
            for a, b in zip(ours, theirs):
                np.testing.assert_array_equal(a, b)


def _bad_cases():
    a, b = np.zeros((3, 4), np.float32), np.zeros((3, 4), np.float32)
    readonly = np.zeros((3, 4), np.float32)
    readonly.flags.writeable = False
    big = np.zeros((6, 4), np.float32)
    return [
        (("adam", [a], [b]), {}, ValueError, ["rule", "adam"]),
        (("sgd", [a], []), {}, ValueError, ["1 params, 0 grads"]),
        (("sgd_momentum", [a], [b]), {}, ValueError, ["needs one grad per param and 1 states"]),
        (("sgd", [a], [np.zeros((4, 3), np.float32)]), {}, ValueError, ["grads[0]", "(4, 3)", "(3, 4)"]),
        (("sgd", [a], [np.zeros((3, 4))]), {}, TypeError, ["grads[0]", "float64"]),
        (("sgd", [a.astype(np.int32)], [b.astype(np.int32)]), {}, TypeError, ["params[0]", "int32"]),
        (("sgd", [a], [[[0.0] * 4] * 3]), {}, TypeError, ["grads[0]", "NumPy array"]),
        (("sgd", [big[::2]], [b]), {}, ValueError, ["params[0]", "C-contiguous"]),
        (("sgd", [readonly], [b]), {}, ValueError, ["params[0]", "writeable"]),
        (("sgd", [a, a], [b, np.zeros_like(b)]), {}, ValueError, ["share memory"]),
        (("sgd", [big[:3]], [big[2:5]]), {}, ValueError, ["share memory"]),
        # a good parameter first: nothing may be written before the bad one is found
        (("sgd", [np.zeros(5, np.float32), big[::2]], [np.ones(5, np.float32), b]), {}, ValueError,
         ["params[1]", "C-contiguous"]),
    ]


@pytest.mark.parametrize("args,kwargs,exc,words", _bad_cases())
def test_bad_input_is_refused_and_changes_nothing(any_backend_name, args, kwargs, exc, words):
    before = [[np.array(x, copy=True) for x in group] for group in args[1:]]
    with fastdl.use_backend(any_backend_name):
        with pytest.raises(exc) as info:
            kernels.parameter_update(*args, lr=0.5, **kwargs)
        if not ("share memory" in words and any_backend_name == "numpy"):  # NumPy updates aliases in turn
            assert kernels.try_parameter_update(*args, lr=0.5, **kwargs) is False
    for word in words:
        assert word in str(info.value)
    for group, saved in zip(args[1:], before):
        for x, s in zip(group, saved):
            np.testing.assert_array_equal(np.asarray(x), s)


@pytest.fixture(params=["numpy"] + (["cpu"] if fastdl.backend.cpu_available() else []))
def any_backend_name(request):
    return request.param


def test_shared_memory_is_refused_by_the_cpu_step_before_it_writes():
    if not fastdl.backend.cpu_available():
        pytest.skip("fastdl._core is not built")
    buffer = np.arange(10, dtype=np.float32)
    params, grads = [buffer[:6]], [buffer[4:]]
    with fastdl.use_backend("cpu"):
        assert kernels.try_parameter_update("sgd", params, grads, lr=1.0) is False
        mixed = [np.zeros(3, np.float32), buffer[:4].view(np.float64)]
        assert kernels.try_parameter_update("sgd", mixed, [np.ones(3, np.float32), buffer[2:6].view(np.float64)],
                                            lr=1.0) is False
    np.testing.assert_array_equal(buffer, np.arange(10, dtype=np.float32))
    assert not mixed[0].any()


def test_direct_core_call_checks_its_arrays():
    if not fastdl.backend.cpu_available():
        pytest.skip("fastdl._core is not built")
    import fastdl._core as _core

    a = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="C-contiguous array"):
        _core.parameter_update_float32("sgd", [a], [np.zeros(4)], [], 0.1, 0.0, 0.0)
    with pytest.raises(ValueError, match="rule"):
        _core.parameter_update_float32("adam", [a], [a.copy()], [], 0.1, 0.0, 0.0)


def test_every_simd_path_equals_the_numpy_rule_bit_for_bit(rng):
    """The cpu step's loops are built for each SIMD path (baseline, AVX2, AVX-512); each one is the NumPy rule."""
    if not fastdl.backend.cpu_available():
        pytest.skip("fastdl._core is not built")
    import fastdl._core as core
    from helpers import vec_isas

    shapes = [(1031,), (7, 13), (0, 3), (40009,)]
    for isa in vec_isas(core):
        for rule in RULES:
            for dtype in (np.float32, np.float64):
                ours = _arrays(rule, shapes, dtype, rng)
                theirs = _copies(ours)
                core.force_vec_isa(isa)
                try:
                    with fastdl.use_backend("cpu"):
                        kernels.parameter_update(rule, *ours, lr=0.05, hyper=HYPER[rule], clip=2.0)
                finally:
                    core.force_vec_isa("auto")
                reference_update(rule, *theirs, 0.05, HYPER[rule], 2.0)
                for group_ours, group_theirs in zip(ours, theirs):
                    for a, b in zip(group_ours, group_theirs):
                        np.testing.assert_array_equal(a, b, err_msg=f"{rule} {dtype.__name__} on {isa}")
