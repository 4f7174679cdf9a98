"""Bad inputs give clear errors; valid-but-unusual inputs give the right answer.

Part 1, the CATALOGUE: every bad input raises ``TypeError`` / ``ValueError`` before any C++ or CUDA
code runs, and the message names the op and the argument. Each kernel family runs its cases in ONE
subprocess per backend (all subprocesses start at once), which prints one JSON line per case. A case
whose line is missing (the subprocess crashed, e.g. a segfault in a kernel) fails with the stderr.

Part 2, in process: non-contiguous views, Fortran order, read-only arrays, empty batches, NaN / inf
and "inputs are never modified", for every kernel on every backend.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdl
from fastdl import kernels
from conftest import ACCELERATED
from helpers import to_host

BACKENDS = ["numpy"] + [b for b in ACCELERATED if b == "cpu"]  # cuda errors are covered by backends/test_cuda.py

# ---------------------------------------------------------------------------------------------------
# Part 1: the catalogue. (id, python expression, exception type, words the message must contain)
# In the expression: K = fastdl.kernels, z(*shape, dt="f8") = zeros, L = fastdl.layers, A = activations,
# fwd_rnn / fwd_lstm / fwd_gru = caches of valid (B=2, T=3, F=4, H=5) forward calls.
# ---------------------------------------------------------------------------------------------------
CATALOGUE = {
    "activation": [
        ("act-complex", "K.activation(z(3, dt='c16'), 'relu')", TypeError, ["activation", "x", "complex128"]),
        ("act-float16", "K.activation(z(3, dt='f2'), 'relu')", TypeError, ["activation", "x", "float16"]),
        ("act-int", "K.activation(z(3, dt='i8'), 'tanh')", TypeError, ["activation", "x", "int64"]),
        ("act-bool", "K.activation(z(3, dt='?'), 'tanh')", TypeError, ["activation", "x", "bool"]),
        ("act-object", "K.activation(z(3, dt='O'), 'tanh')", TypeError, ["activation", "x", "object"]),
        ("act-list", "K.activation([1.0, 2.0], 'relu')", TypeError, ["activation", "x", "list"]),
        ("act-none", "K.activation(None, 'relu')", TypeError, ["activation", "x", "NoneType"]),
        ("act-byteswapped", "K.activation(z(3, dt='>f8' if sys.byteorder == 'little' else '<f8'), 'relu')",
         TypeError, ["activation", "x", "byte"]),
        ("act-name", "K.activation(z(3), 'gelu')", ValueError, ["activation", "gelu"]),
        ("act-name-type", "K.activation(z(3), 1)", TypeError, ["activation", "str"]),
        ("actb-shape", "K.activation_backward(z(2, 3), z(3, 2), 'tanh')", ValueError,
         ["activation_backward", "grad_y", "(3, 2)", "(2, 3)"]),
        ("actb-mixed", "K.activation_backward(z(3), z(3, dt='f4'), 'tanh')", TypeError,
         ["activation_backward", "grad_y", "mixed"]),
        ("actb-name", "K.activation_backward(z(3), z(3), 'softmax')", ValueError, ["activation_backward", "softmax"]),
        ("actb-mask-dtype", "K.activation_backward(z(3), z(3), 'tanh', mask=z(3))", TypeError,
         ["activation_backward", "mask", "bool"]),
        ("actb-mask-shape", "K.activation_backward(z(3), z(3), 'tanh', mask=z(4, dt='?'))", ValueError,
         ["activation_backward", "mask", "(4,)"]),
    ],
    "dropout": [
        ("drop-int", "K.dropout(z(3, dt='i8'), 0.5, 1)", TypeError, ["dropout", "x", "int64"]),
        ("drop-p-zero", "K.dropout(z(3), 0.0, 1)", ValueError, ["dropout", "keep_prob", "(0, 1]"]),
        ("drop-p-big", "K.dropout(z(3), 1.5, 1)", ValueError, ["dropout", "keep_prob", "1.5"]),
        ("drop-p-nan", "K.dropout(z(3), float('nan'), 1)", ValueError, ["dropout", "keep_prob", "nan"]),
        ("drop-p-str", "K.dropout(z(3), '0.5', 1)", TypeError, ["dropout", "keep_prob", "str"]),
        ("drop-seed-neg", "K.dropout(z(3), 0.5, -1)", ValueError, ["dropout", "seed", "-1"]),
        ("drop-seed-big", "K.dropout(z(3), 0.5, 2**64)", ValueError, ["dropout", "seed", "2**64"]),
        ("drop-seed-float", "K.dropout(z(3), 0.5, 1.5)", ValueError, ["dropout", "seed", "float"]),
        ("dropb-mask-dtype", "K.dropout_backward(z(3), z(3))", TypeError, ["dropout_backward", "mask", "bool"]),
        ("dropb-shape", "K.dropout_backward(z(2, 3), z(3, 2, dt='?'))", ValueError,
         ["dropout_backward", "mask", "(3, 2)", "(2, 3)"]),
        ("dropb-int", "K.dropout_backward(z(3, dt='i8'), z(3, dt='?'))", TypeError,
         ["dropout_backward", "grad_y", "int64"]),
    ],
    "dense": [
        ("mm-ndim-a", "K.matmul(z(3), z(3, 2))", ValueError, ["matmul", "a", "2-D", "(3,)"]),
        ("mm-ndim-b", "K.matmul(z(2, 3), z(3, 2, 1))", ValueError, ["matmul", "b", "2-D", "(3, 2, 1)"]),
        ("mm-inner", "K.matmul(z(2, 3), z(4, 2))", ValueError, ["matmul", "inner", "(2, 3)", "(4, 2)"]),
        ("mm-inner-trans", "K.matmul(z(2, 3), z(4, 2), trans_a=True)", ValueError, ["matmul", "trans_a"]),
        ("mm-mixed", "K.matmul(z(2, 3), z(3, 2, dt='f4'))", TypeError, ["matmul", "mixed", "float32"]),
        ("mm-int", "K.matmul(z(2, 3, dt='i4'), z(3, 2, dt='i4'))", TypeError, ["matmul", "a", "int32"]),
        ("mm-f16", "K.matmul(z(2, 3, dt='f2'), z(3, 2, dt='f2'))", TypeError, ["matmul", "a", "float16"]),
        ("mm-complex", "K.matmul(z(2, 3, dt='c8'), z(3, 2, dt='c8'))", TypeError, ["matmul", "a", "complex64"]),
        ("mm-flag", "K.matmul(z(2, 3), z(3, 2), trans_a=1)", TypeError, ["matmul", "trans_a", "bool"]),
        ("mm-flag-str", "K.matmul(z(2, 3), z(2, 3), trans_b='yes')", TypeError, ["matmul", "trans_b", "bool"]),
        ("lin-ndim-x", "K.linear(z(2, 3, 1), z(3, 4))", ValueError, ["linear", "x", "2-D"]),
        ("lin-inner", "K.linear(z(2, 3), z(5, 4))", ValueError, ["linear", "x", "w", "(2, 3)", "(5, 4)"]),
        ("lin-bias-shape", "K.linear(z(2, 3), z(3, 4), z(5))", ValueError, ["linear", "b", "(5,)"]),
        ("lin-bias-2d", "K.linear(z(2, 3), z(3, 4), z(2, 4))", ValueError, ["linear", "b", "(2, 4)"]),
        ("lin-bias-dtype", "K.linear(z(2, 3), z(3, 4), z(4, dt='f4'))", TypeError, ["linear", "b", "mixed"]),
        ("lin-bias-list", "K.linear(z(2, 3), z(3, 4), [0.0] * 4)", TypeError, ["linear", "b", "list"]),
        ("lin-act", "K.linear(z(2, 3), z(3, 4), None, 'swish')", ValueError, ["linear", "activation", "swish"]),
        ("linb-y", "K.linear_backward(z(2, 3), z(3, 4), z(2, 5), z(2, 4))", ValueError,
         ["linear_backward", "y", "(2, 5)", "(2, 4)"]),
        ("linb-grad", "K.linear_backward(z(2, 3), z(3, 4), z(2, 4), z(4, 2))", ValueError,
         ["linear_backward", "grad_y", "(4, 2)"]),
        ("linb-mixed", "K.linear_backward(z(2, 3), z(3, 4), z(2, 4), z(2, 4, dt='f4'))", TypeError,
         ["linear_backward", "grad_y", "mixed"]),
        ("linb-int-x", "K.linear_backward(z(2, 3, dt='i8'), z(3, 4), z(2, 4), z(2, 4))", TypeError,
         ["linear_backward", "x", "int64"]),
        ("linb-need-grad-x", "K.linear_backward(z(2, 3), z(3, 4), z(2, 4), z(2, 4), need_grad_x='no')", TypeError,
         ["linear_backward", "need_grad_x", "bool", "'no'"]),
    ],
    "conv": [
        ("convd-keep", "K.conv2d_dropout(z(1, 1, 4, 4), z(1, 2, 3, 3), 0.0, 1)", ValueError,
         ["conv2d_dropout", "keep_prob", "(0, 1]"]),
        ("convd-seed", "K.conv2d_dropout(z(1, 1, 4, 4), z(1, 2, 3, 3), 0.8, -1)", ValueError,
         ["conv2d_dropout", "seed", "-1"]),
        ("convd-channels", "K.conv2d_dropout(z(1, 2, 4, 4), z(1, 2, 3, 3), 0.8, 1)", ValueError,
         ["conv2d_dropout", "C_in"]),
        ("convb-need-grad-x", "K.conv2d_backward(z(1, 1, 4, 4), z(1, 2, 3, 3), z(1, 2, 4, 4), need_grad_x=0)",
         TypeError, ["conv2d_backward", "need_grad_x", "bool", "0"]),
        ("conv-ndim-x", "K.conv2d(z(1, 5, 5), z(1, 1, 3, 3))", ValueError, ["conv2d", "x", "4-D", "(1, 5, 5)"]),
        ("conv-ndim-w", "K.conv2d(z(1, 1, 5, 5), z(1, 3, 3))", ValueError, ["conv2d", "w", "4-D"]),
        ("conv-channels", "K.conv2d(z(1, 2, 5, 5), z(3, 1, 3, 3))", ValueError,
         ["conv2d", "channel", "x", "w", "(1, 2, 5, 5)", "(3, 1, 3, 3)"]),
        ("conv-nonsquare", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 2))", ValueError, ["conv2d", "square", "w"]),
        ("conv-k0", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 0, 0))", ValueError, ["conv2d", "kernel", "w"]),
        ("conv-activation", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), activation='gelu')", ValueError,
         ["conv2d", "activation", "gelu"]),
        ("conv-too-big", "K.conv2d(z(1, 1, 2, 2), z(1, 1, 3, 3), padding='valid')", ValueError,
         ["conv2d", "larger than the padded image", "x"]),
        ("conv-too-big-pad1", "K.conv2d(z(1, 1, 2, 2), z(1, 1, 5, 5), padding=1)", ValueError,
         ["conv2d", "larger", "padding"]),
        ("conv-stride0", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=0)", ValueError, ["conv2d", "stride", "0"]),
        ("conv-stride-neg", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=-2)", ValueError, ["conv2d", "stride"]),
        ("conv-stride-float", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=1.0)", ValueError,
         ["conv2d", "stride", "float"]),
        ("conv-stride-bool", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=True)", ValueError,
         ["conv2d", "stride", "bool"]),
        ("conv-stride-str", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride='2')", ValueError,
         ["conv2d", "stride", "str"]),
        ("conv-stride-huge", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), stride=2**40)", ValueError,
         ["conv2d", "stride"]),
        ("conv-pad-neg", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding=-1)", ValueError, ["conv2d", "padding"]),
        ("conv-pad-bool", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding=False)", ValueError,
         ["conv2d", "padding", "bool"]),
        ("conv-pad-float", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding=1.5)", ValueError,
         ["conv2d", "padding", "float"]),
        ("conv-pad-str", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding='full')", ValueError,
         ["conv2d", "padding", "full"]),
        ("conv-pad-none", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3), padding=None)", ValueError, ["conv2d", "padding"]),
        ("conv-mixed", "K.conv2d(z(1, 1, 5, 5), z(1, 1, 3, 3, dt='f4'))", TypeError, ["conv2d", "mixed"]),
        ("conv-int", "K.conv2d(z(1, 1, 5, 5, dt='i8'), z(1, 1, 3, 3, dt='i8'))", TypeError, ["conv2d", "x", "int64"]),
        ("conv-f16", "K.conv2d(z(1, 1, 5, 5, dt='f2'), z(1, 1, 3, 3, dt='f2'))", TypeError,
         ["conv2d", "x", "float16"]),
        ("convb-grad-shape", "K.conv2d_backward(z(1, 1, 5, 5), z(1, 2, 3, 3), z(1, 1, 5, 5))", ValueError,
         ["conv2d_backward", "grad_y", "(1, 1, 5, 5)", "(1, 2, 5, 5)"]),
        ("convb-grad-stride", "K.conv2d_backward(z(1, 1, 6, 6), z(1, 1, 3, 3), z(1, 1, 6, 6), stride=2)",
         ValueError, ["conv2d_backward", "grad_y", "(1, 1, 3, 3)"]),
        ("convb-grad-dtype", "K.conv2d_backward(z(1, 1, 5, 5), z(1, 1, 3, 3), z(1, 1, 5, 5, dt='f4'))", TypeError,
         ["conv2d_backward", "grad_y", "mixed"]),
        ("convb-pad", "K.conv2d_backward(z(1, 1, 5, 5), z(1, 1, 3, 3), z(1, 1, 5, 5), padding='SAME')",
         ValueError, ["conv2d_backward", "padding", "SAME"]),
    ],
    "loss": [
        ("sce-ndim", "K.softmax_cross_entropy(z(6), np.array([0, 1]))", ValueError,
         ["softmax_cross_entropy", "logits", "2-D"]),
        ("sce-label-range", "K.softmax_cross_entropy(z(2, 3), np.array([0, 3]))", ValueError,
         ["softmax_cross_entropy", "target", "[0, 3)", "3"]),
        ("sce-label-neg", "K.softmax_cross_entropy(z(2, 3), np.array([-1, 0]))", ValueError,
         ["softmax_cross_entropy", "target", "-1"]),
        ("sce-label-float", "K.softmax_cross_entropy(z(2, 3), np.array([0.0, 1.0]))", TypeError,
         ["softmax_cross_entropy", "target", "integer", "float64"]),
        ("sce-label-bool", "K.softmax_cross_entropy(z(2, 3), np.array([True, False]))", TypeError,
         ["softmax_cross_entropy", "target", "bool"]),
        ("sce-label-count", "K.softmax_cross_entropy(z(2, 3), np.array([0, 1, 2]))", ValueError,
         ["softmax_cross_entropy", "target", "(3,)", "(2,)"]),
        ("sce-label-list", "K.softmax_cross_entropy(z(2, 3), [0, 1])", TypeError,
         ["softmax_cross_entropy", "target", "list"]),
        ("sce-label-uint-huge", "K.softmax_cross_entropy(z(2, 3), np.array([0, 2**63], np.uint64))", ValueError,
         ["softmax_cross_entropy", "target"]),
        ("sce-onehot-shape", "K.softmax_cross_entropy(z(2, 3), z(2, 4))", ValueError,
         ["softmax_cross_entropy", "target", "(2, 4)", "(2, 3)"]),
        ("sce-onehot-dtype", "K.softmax_cross_entropy(z(2, 3), z(2, 3, dt='f4'))", TypeError,
         ["softmax_cross_entropy", "target", "mixed"]),
        ("sce-onehot-int", "K.softmax_cross_entropy(z(2, 3), z(2, 3, dt='i8'))", TypeError,
         ["softmax_cross_entropy", "target", "int64"]),
        ("sce-logits-int", "K.softmax_cross_entropy(z(2, 3, dt='i8'), np.array([0, 1]))", TypeError,
         ["softmax_cross_entropy", "logits", "int64"]),
        ("sce-eps", "K.softmax_cross_entropy(z(2, 3), np.array([0, 1]), eps=0.0)", ValueError,
         ["softmax_cross_entropy", "eps"]),
        ("sce-eps-bool", "K.softmax_cross_entropy(z(2, 3), np.array([0, 1]), eps=True)", ValueError,
         ["softmax_cross_entropy", "eps"]),
        ("sce-reduction", "K.softmax_cross_entropy(z(2, 3), np.array([0, 1]), reduction='max')", ValueError,
         ["softmax_cross_entropy", "reduction", "max"]),
        ("sce-no-classes", "K.softmax_cross_entropy(z(2, 0), np.array([0, 0]))", ValueError,
         ["softmax_cross_entropy", "logits", "class"]),
        ("ce-label-range", "K.cross_entropy(z(2, 3), np.array([0, 7]))", ValueError, ["cross_entropy", "target", "7"]),
        ("ce-label-float", "K.cross_entropy(z(2, 3), np.array([0.5, 1.0], np.float32))", TypeError,
         ["cross_entropy", "target", "float32"]),
        ("ce-complex", "K.cross_entropy(z(2, 3, dt='c16'), z(2, 3, dt='c16'))", TypeError,
         ["cross_entropy", "logits", "complex128"]),
        ("ce-reduction-type", "K.cross_entropy(z(2, 3), np.array([0, 1]), reduction=None)", ValueError,
         ["cross_entropy", "reduction"]),
        ("ce-target-3d", "K.cross_entropy(z(2, 3), z(2, 3, 1))", ValueError, ["cross_entropy", "target"]),
    ],
    "sequence": [
        ("rnn-ndim-x", "K.rnn_forward(z(2, 4), z(2, 5), z(9, 5), z(5))", ValueError, ["rnn_forward", "x", "3-D"]),
        ("rnn-ndim-h0", "K.rnn_forward(z(2, 3, 4), z(5), z(9, 5), z(5))", ValueError, ["rnn_forward", "h0", "2-D"]),
        ("rnn-w-shape", "K.rnn_forward(z(2, 3, 4), z(2, 5), z(8, 5), z(5))", ValueError,
         ["rnn_forward", "w", "(8, 5)", "(9, 5)"]),
        ("rnn-b-shape", "K.rnn_forward(z(2, 3, 4), z(2, 5), z(9, 5), z(6))", ValueError, ["rnn_forward", "b", "(6,)"]),
        ("rnn-h0-batch", "K.rnn_forward(z(2, 3, 4), z(3, 5), z(9, 5), z(5))", ValueError,
         ["rnn_forward", "h0", "(3, 5)", "(2, 3, 4)"]),
        ("rnn-T0", "K.rnn_forward(z(2, 0, 4), z(2, 5), z(9, 5), z(5))", ValueError, ["rnn_forward", "x", "time step"]),
        ("rnn-mixed", "K.rnn_forward(z(2, 3, 4), z(2, 5), z(9, 5), z(5, dt='f4'))", TypeError,
         ["rnn_forward", "b", "mixed"]),
        ("rnn-int", "K.rnn_forward(z(2, 3, 4, dt='i8'), z(2, 5), z(9, 5), z(5))", TypeError, ["rnn_forward", "x"]),
        ("rnnb-grad", "K.rnn_backward(z(2, 3, 4), fwd_rnn())", ValueError, ["rnn_backward", "grad_h_seq", "(2, 3, 5)"]),
        ("rnnb-grad-dtype", "K.rnn_backward(z(2, 3, 5, dt='f4'), fwd_rnn())", TypeError,
         ["rnn_backward", "grad_h_seq", "mixed"]),
        ("rnnb-cache", "K.rnn_backward(z(2, 3, 5), {'x': 1})", TypeError, ["rnn_backward", "cache", "rnn_forward"]),
        ("rnnb-cache-kind", "K.rnn_backward(z(2, 3, 5), fwd_gru())", ValueError, ["rnn_backward", "cache", "gru"]),
        ("lstm-w", "K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 5), z(9, 19), z(20))", ValueError,
         ["lstm_forward", "w", "(9, 19)", "(9, 20)"]),
        ("lstm-w-gru-shape", "K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 5), z(9, 15), z(15))", ValueError,
         ["lstm_forward", "w", "(9, 20)"]),
        ("lstm-c0", "K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 6), z(9, 20), z(20))", ValueError,
         ["lstm_forward", "c0", "(2, 6)", "(2, 5)"]),
        ("lstm-c0-dtype", "K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 5, dt='f4'), z(9, 20), z(20))", TypeError,
         ["lstm_forward", "c0", "mixed"]),
        ("lstm-b", "K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 5), z(9, 20), z(5))", ValueError,
         ["lstm_forward", "b", "(5,)", "(20,)"]),
        ("lstmb-gcl", "K.lstm_backward(z(2, 3, 5), fwd_lstm(), z(2, 4))", ValueError,
         ["lstm_backward", "grad_c_last", "(2, 4)", "(2, 5)"]),
        ("lstmb-gcl-dtype", "K.lstm_backward(z(2, 3, 5), fwd_lstm(), z(2, 5, dt='f4'))", TypeError,
         ["lstm_backward", "grad_c_last", "mixed"]),
        ("lstmb-grad", "K.lstm_backward(z(3, 2, 5), fwd_lstm())", ValueError, ["lstm_backward", "grad_h_seq"]),
        ("lstmb-cache-kind", "K.lstm_backward(z(2, 3, 5), fwd_rnn())", ValueError, ["lstm_backward", "cache", "rnn"]),
        ("gru-w", "K.gru_forward(z(2, 3, 4), z(2, 5), z(9, 20), z(15))", ValueError,
         ["gru_forward", "w", "(9, 20)", "(9, 15)"]),
        ("gru-w-rows", "K.gru_forward(z(2, 3, 4), z(2, 5), z(4, 15), z(15))", ValueError,
         ["gru_forward", "w", "input rows first"]),
        ("gru-h0-dtype", "K.gru_forward(z(2, 3, 4), z(2, 5, dt='f2'), z(9, 15), z(15))", TypeError,
         ["gru_forward", "h0", "float16"]),
        ("grub-grad", "K.gru_backward(z(2, 3), fwd_gru())", ValueError, ["gru_backward", "grad_h_seq", "(2, 3)"]),
        ("grub-cache", "K.gru_backward(z(2, 3, 5), None)", TypeError, ["gru_backward", "cache"]),
        ("grub-cache-kind", "K.gru_backward(z(2, 3, 5), fwd_lstm())", ValueError, ["gru_backward", "cache", "lstm"]),
    ],
    "layers": [
        ("dropout-op-p", "L.Dropout(0.0)", ValueError, ["Dropout", "keep_prob", "(0, 1]"]),
        ("dropout-op-p-str", "L.Dropout('0.8')", TypeError, ["Dropout", "keep_prob", "str"]),
        ("dense-width", "dense_after(z(4, 3, dt='f4'), z(4, 7, dt='f4'))", ValueError,
         ["Dense", "(4, 7)", "(batch, 3)"]),
        ("dense-ndim", "dense_after(z(4, 3, dt='f4'), z(4, 3, 1, dt='f4'))", ValueError,
         ["Dense", "(4, 3, 1)", "(batch, 3)"]),
        ("dense-first-3d", "L.Dense(2).forward(z(4, 3, 1))", ValueError, ["Dense", "2-D", "(4, 3, 1)"]),
        ("conv-layer-channels", "conv_after(z(2, 3, 6, 6, dt='f4'), z(2, 4, 6, 6, dt='f4'))", ValueError,
         ["Conv2D", "(2, 4, 6, 6)", "(batch, 3, H, W)"]),
        ("conv-layer-ndim", "conv_after(z(2, 3, 6, 6, dt='f4'), z(2, 3, 6, dt='f4'))", ValueError,
         ["Conv2D", "(2, 3, 6)"]),
        ("conv-layer-first-2d", "L.Conv2D(2, 3).forward(z(4, 3))", ValueError, ["Conv2D", "4-D", "(4, 3)"]),
        ("conv-layer-stride", "L.Conv2D(2, 3, stride=0).forward(z(1, 1, 5, 5))", ValueError, ["conv2d", "stride"]),
        ("dense-load-shape", "L.Dense(2).load_state_dict({'params.0': z(3, 5, dt='f4'), 'params.1': z(1, 5, dt='f4')})",
         ValueError, ["load_state_dict", "params.0", "(3, 5)", "(3, 2)"]),
    ],
}

RUNNER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import fastdl
    from fastdl import kernels as K, layers as L, activations as A
    fastdl.set_backend(sys.argv[1])

    def z(*shape, dt="f8"):
        return np.zeros(shape, dtype=dt)

    def fwd_rnn():
        return K.rnn_forward(z(2, 3, 4), z(2, 5), z(9, 5), z(5))[-1]

    def fwd_lstm():
        return K.lstm_forward(z(2, 3, 4), z(2, 5), z(2, 5), z(9, 20), z(20))[-1]

    def fwd_gru():
        return K.gru_forward(z(2, 3, 4), z(2, 5), z(9, 15), z(15))[-1]

    def dense_after(first, second):
        layer = L.Dense(2)
        layer.forward(first)
        return layer.forward(second)

    def conv_after(first, second):
        layer = L.Conv2D(2, 3)
        layer.forward(first)
        return layer.forward(second)

    for case_id, expr in json.loads(sys.stdin.read()):
        try:
            eval(expr)
            out = {"id": case_id, "exc": None, "msg": "no exception"}
        except Exception as exc:
            out = {"id": case_id, "exc": type(exc).__name__, "msg": str(exc)}
        print(json.dumps(out), flush=True)
""")


def _start(family, backend):
    cases = [(case_id, expr) for case_id, expr, _, _ in CATALOGUE[family]]
    proc = subprocess.Popen([sys.executable, "-c", RUNNER, backend], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.path.dirname(__file__))
    proc.stdin.write(json.dumps(cases))
    proc.stdin.close()
    return proc


@pytest.fixture(scope="module")
def catalogue_results():
    """{(family, backend): ({case_id: result}, returncode, stderr)}; every subprocess runs at once."""
    procs = {(family, backend): _start(family, backend) for family in CATALOGUE for backend in BACKENDS}
    results = {}
    for key, proc in procs.items():
        stdout = proc.stdout.read()
        stderr = proc.stderr.read()
        proc.wait(timeout=120)
        lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
        results[key] = ({r["id"]: r for r in lines}, proc.returncode, stderr)
    return results


CASES = [pytest.param(family, case, id=case[0]) for family, cases in CATALOGUE.items() for case in cases]


def test_catalogue_is_big_and_ids_unique():
    ids = [case[0] for cases in CATALOGUE.values() for case in cases]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 60
    exercised = " ".join(expr for cases in CATALOGUE.values() for _, expr, _, _ in cases)
    for name in kernels.KERNEL_NAMES:
        assert f"K.{name}(" in exercised, f"no bad-input case for {name}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("family,case", CASES)
def test_bad_input(catalogue_results, backend, family, case):
    case_id, expr, exc_type, words = case
    by_id, returncode, stderr = catalogue_results[(family, backend)]
    result = by_id.get(case_id)
    assert result is not None, (f"{expr} on {backend}: no result; the subprocess died "
                                f"(exit {returncode}):\n{stderr[-3000:]}")
    assert result["exc"] == exc_type.__name__, f"{expr} on {backend}: got {result['exc']}: {result['msg']}"
    for word in words:
        assert word in result["msg"], f"{expr} on {backend}: {word!r} not in message {result['msg']!r}"


# ---------------------------------------------------------------------------------------------------
# Part 2: valid but unusual inputs, in process
# ---------------------------------------------------------------------------------------------------
ALL_BACKENDS = ["numpy"] + ACCELERATED
GATES = {"rnn": 1, "lstm": 4, "gru": 3}


def _inputs(name, rng, batch, dtype=np.float64):
    """(args, kwargs) for a valid call of kernel ``name`` with ``batch`` rows (B, T, F, H = batch, 3, 4, 5)."""
    def r(*shape):
        return rng.standard_normal(shape).astype(dtype)

    if name.endswith("_backward") and name[:-9] in GATES:
        family = name[:-9]
        args, _ = _inputs(f"{family}_forward", rng, batch, dtype)
        cache = getattr(kernels, f"{family}_forward")(*args)[-1]
        return ((r(batch, 3, 5), cache, r(batch, 5)) if family == "lstm" else (r(batch, 3, 5), cache)), {}
    table = {
        "activation": ((r(batch, 6), "tanh"), {}),
        "activation_backward": ((np.tanh(r(batch, 6)), r(batch, 6), "tanh"), {}),
        "matmul": ((r(batch, 6), r(5, 6)), {"trans_b": True}),
        "linear": ((r(batch, 6), r(6, 5), r(5), "relu"), {}),
        "linear_backward": ((r(batch, 6), r(6, 5), np.abs(r(batch, 5)), r(batch, 5), "sigmoid"), {}),
        "conv2d": ((r(batch, 2, 7, 6), r(2, 3, 3, 3)), {"stride": 2, "padding": 1}),
        "conv2d_backward": ((r(batch, 2, 7, 6), r(2, 3, 3, 3), r(batch, 3, 4, 3)), {"stride": 2, "padding": 1}),
        "conv2d_dropout": ((r(batch, 2, 7, 6), r(2, 3, 3, 3), 0.7, 2**63 + 5), {"stride": 2, "padding": 1}),
        "softmax_cross_entropy": ((r(batch, 7), rng.integers(0, 7, batch)), {}),
        "cross_entropy": ((r(batch, 7), np.eye(7, dtype=dtype)[rng.integers(0, 7, batch)]), {}),
        "rnn_forward": ((r(batch, 3, 4), r(batch, 5), r(9, 5), r(5)), {}),
        "lstm_forward": ((r(batch, 3, 4), r(batch, 5), r(batch, 5), r(9, 20), r(20)), {}),
        "gru_forward": ((r(batch, 3, 4), r(batch, 5), r(9, 15), r(15)), {}),
        "dropout": ((r(batch, 6, 2), 0.6, 2**63 + 12345), {}),
        "dropout_backward": ((r(batch, 6, 2), rng.random((batch, 6, 2)) < 0.6), {}),
    }
    return table[name]


def _on(backend, name, args, kwargs):
    with fastdl.use_backend(backend):
        out = getattr(kernels, name)(*args, **kwargs)
    return [to_host(o) for o in (out if isinstance(out, tuple) else (out,)) if not isinstance(o, dict)]


def _unusual(a, how):
    """The same values as ``a`` laid out in an unusual way."""
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "strided":  # a view with gaps: every other element of a bigger array
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        return big[..., ::2]
    if how == "readonly":
        b = a.copy()
        b.setflags(write=False)
        return b
    if how == "reversed":  # negative strides
        return np.flip(np.flip(a).copy())
    raise ValueError(how)


@pytest.fixture(scope="module", params=ALL_BACKENDS)
def any_backend(request):
    return request.param


@pytest.mark.parametrize("how", ["fortran", "strided", "readonly", "reversed"])
@pytest.mark.parametrize("name", kernels.KERNEL_NAMES)
def test_unusual_layouts_same_answer_inputs_untouched(any_backend, name, how):
    rng = np.random.default_rng(7)
    with fastdl.use_backend(any_backend):
        args, kwargs = _inputs(name, rng, 3)
    expected = _on(any_backend, name, args, kwargs)
    odd = tuple(_unusual(a, how) if isinstance(a, np.ndarray) and a.ndim >= 1 else a for a in args)
    before = [a.copy() if isinstance(a, np.ndarray) else None for a in odd]
    actual = _on(any_backend, name, odd, kwargs)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e, err_msg=f"{name}[{any_backend}] with {how} inputs")
    for a, b in zip(odd, before):
        if b is not None:
            np.testing.assert_array_equal(a, b, err_msg=f"{name}[{any_backend}] modified an input")


@pytest.mark.parametrize("name", kernels.KERNEL_NAMES)
def test_empty_batch(any_backend, name):
    """B=0 is valid: outputs have 0 rows, parameter gradients are zeros, a mean loss is 0.0."""
    rng = np.random.default_rng(3)
    with fastdl.use_backend(any_backend):
        args, kwargs = _inputs(name, rng, 0)
    out = _on(any_backend, name, args, kwargs)
    for a in out:
        if isinstance(a, float):
            assert a == 0.0, f"{name}[{any_backend}]: loss of an empty batch"
        else:
            assert a.dtype == (bool if name in ("dropout", "conv2d_dropout") and a is out[-1] else np.float64)
            assert a.shape[0] == 0 or np.all(a == 0), f"{name}[{any_backend}]: {a.shape} output of an empty batch"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("name", ["activation", "matmul", "linear", "conv2d", "softmax_cross_entropy",
                                  "cross_entropy", "rnn_forward", "lstm_forward", "gru_forward"])
def test_nan_and_inf_propagate(any_backend, name):
    rng = np.random.default_rng(5)
    with fastdl.use_backend(any_backend):
        args, kwargs = _inputs(name, rng, 3)
    x = args[0].copy()
    x[1] = np.nan
    x[2] = np.inf
    out = _on(any_backend, name, (x,) + tuple(args[1:]), kwargs)
    first = out[0]
    if isinstance(first, float):  # a loss over the batch: poisoned by the NaN row
        assert np.isnan(first)
        assert np.all(np.isnan(out[1][1])), f"{name}[{any_backend}]: NaN row must give NaN gradient"
        assert np.all(np.isfinite(out[1][0])), f"{name}[{any_backend}]: clean rows must stay finite"
    else:
        assert not np.all(np.isfinite(first[1])), f"{name}[{any_backend}]: NaN input row vanished"
        assert np.all(np.isfinite(first[0])), f"{name}[{any_backend}]: a clean row became non-finite"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("act", ["linear", "sigmoid", "tanh", "relu"])
def test_activations_keep_nan(any_backend, act):
    x = np.array([[np.nan, -1.0, 2.0, np.inf, -np.inf]])
    out = _on(any_backend, "activation", (x, act), {})[0]
    expected = _on("numpy", "activation", (x, act), {})[0]
    np.testing.assert_allclose(out, expected, rtol=1e-15, atol=0, err_msg=f"activation {act}[{any_backend}]")
    assert np.isnan(out[0, 0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_reject_width_change_but_accept_new_batch_size(dtype):
    from fastdl.layers import Conv2D, Dense

    dense = Dense(3, dtype=dtype)
    dense.forward(np.ones((4, 5), dtype))
    assert dense.forward(np.ones((9, 5), dtype)).shape == (9, 3)  # the batch size may change
    with pytest.raises(ValueError, match=r"Dense\(neurons=3\).*\(batch, 5\).*\(9, 6\)"):
        dense.forward(np.ones((9, 6), dtype))
    conv = Conv2D(2, 3, dtype=dtype)
    conv.forward(np.ones((1, 2, 5, 5), dtype))
    assert conv.forward(np.ones((3, 2, 7, 4), dtype)).shape == (3, 2, 7, 4)  # and the image size
    with pytest.raises(ValueError, match=r"Conv2D.*\(batch, 2, H, W\).*\(3, 1, 7, 4\)"):
        conv.forward(np.ones((3, 1, 7, 4), dtype))
