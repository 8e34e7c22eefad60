"""Golden tests for gradgen.printing: every expected string was printed by PyTorch 2.13.0.

The table runs without torch; ``test_matches_torch_on_random_tensors`` re-derives
the goldens' rules on random inputs when torch happens to be installed.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import pytest

from gradgen import dtypes
from gradgen.printing import get_printoptions, set_printoptions, tensor_repr

f32, f64, i32, i64, b = dtypes.float32, dtypes.float64, dtypes.int32, dtypes.int64, dtypes.bool_


class Case(NamedTuple):
    id: str
    data: np.ndarray
    dtype: dtypes.dtype
    expected: str
    suffix: str | None = None
    opts: dict[str, Any] = {}
    default: str = "float32"     # gradgen/torch default float dtype while printing


CASES = [
    Case('f32_0d_int', np.array(27.0, np.float32), f32,
         'tensor(27.)'),
    Case('f32_0d_frac', np.array(3.14159, np.float32), f32,
         'tensor(3.1416)'),
    Case('f32_0d_nan', np.array(np.nan, np.float32), f32,
         'tensor(nan)'),
    Case('f32_0d_neg_inf', np.array(-np.inf, np.float32), f32,
         'tensor(-inf)'),
    Case('f32_0d_big_sci', np.array(1e10, np.float32), f32,
         'tensor(1.0000e+10)'),
    Case('f32_0d_neg_zero', np.array(-0.0, np.float32), f32,
         'tensor(-0.)'),
    Case('f64_0d', np.array(2.5), f64,
         'tensor(2.5000, dtype=torch.float64)'),
    Case('i64_0d', np.array(7, np.int64), i64,
         'tensor(7)'),
    Case('i32_0d', np.array(-3, np.int32), i32,
         'tensor(-3, dtype=torch.int32)'),
    Case('bool_0d', np.array(True), b,
         'tensor(True)'),
    Case('f32_0d_requires_grad', np.array(1.5, np.float32), f32,
         'tensor(1.5000, requires_grad=True)', suffix='requires_grad=True'),
    Case('f32_1d_int_mode', np.array([1.0, 2.0, 3.0], np.float32), f32,
         'tensor([1., 2., 3.])'),
    Case('f32_1d_mixed', np.array([1.5, -2.25, 3.0], np.float32), f32,
         'tensor([ 1.5000, -2.2500,  3.0000])'),
    Case('f32_1d_tenths', np.arange(5, dtype=np.float32) * np.float32(0.1), f32,
         'tensor([0.0000, 0.1000, 0.2000, 0.3000, 0.4000])'),
    Case('f32_1d_zeros', np.zeros(3, np.float32), f32,
         'tensor([0., 0., 0.])'),
    Case('f32_1d_neg_zero_int_mode', np.array([-0.0, 0.0, 1.0], np.float32), f32,
         'tensor([-0., 0., 1.])'),
    Case('f32_1d_neg_zero_fixed', np.array([-0.0, 0.5], np.float32), f32,
         'tensor([-0.0000, 0.5000])'),
    Case('f32_1d_inf_nan', np.array([np.inf, -np.inf, np.nan, 1.5], np.float32), f32,
         'tensor([   inf,   -inf,    nan, 1.5000])'),
    Case('f32_1d_inf_nan_int', np.array([np.inf, np.nan, -2.0, 10.0], np.float32), f32,
         'tensor([inf, nan, -2., 10.])'),
    Case('f32_1d_no_finite', np.array([np.inf, np.nan, 0.0], np.float32), f32,
         'tensor([inf, nan, 0.])'),
    Case('f32_1d_small_sci', np.array([1e-5, 1.0], np.float32), f32,
         'tensor([1.0000e-05, 1.0000e+00])'),
    Case('f32_1d_ratio_sci', np.array([1.5, 2000.0], np.float32), f32,
         'tensor([1.5000e+00, 2.0000e+03])'),
    Case('f32_1d_ratio_int_sci', np.array([1.0, 2000.0], np.float32), f32,
         'tensor([1.0000e+00, 2.0000e+03])'),
    Case('f32_1d_big_sci', np.array([1e9, -3e9], np.float32), f32,
         'tensor([ 1.0000e+09, -3.0000e+09])'),
    Case('f32_1d_ratio_just_over', np.array([999.5, 1000.25, -0.5], np.float32), f32,
         'tensor([ 9.9950e+02,  1.0002e+03, -5.0000e-01])'),
    Case('f32_1d_wide_fixed', np.array([999.5, -100.25, 1.0], np.float32), f32,
         'tensor([ 999.5000, -100.2500,    1.0000])'),
    Case('f32_1d_round_up', np.array([9.99996, 0.5], np.float32), f32,
         'tensor([10.0000,  0.5000])'),
    Case('f32_1d_sci_with_specials', np.array([1e-8, np.nan, -np.inf, 0.0, 5.0], np.float32), f32,
         'tensor([1.0000e-08,        nan,       -inf, 0.0000e+00, 5.0000e+00])'),
    Case('f64_1d_3digit_exponent', np.array([1e-300, 1e300]), f64,
         'tensor([1.0000e-300, 1.0000e+300], dtype=torch.float64)'),
    Case('f64_1d', np.array([0.1, 0.2, 0.3]), f64,
         'tensor([0.1000, 0.2000, 0.3000], dtype=torch.float64)'),
    Case('i64_1d', np.arange(10, dtype=np.int64), i64,
         'tensor([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])'),
    Case('i64_1d_widths', np.array([-123456789012, 5, 42], np.int64), i64,
         'tensor([-123456789012,             5,            42])'),
    Case('i32_1d', np.array([1, -20, 300], np.int32), i32,
         'tensor([  1, -20, 300], dtype=torch.int32)'),
    Case('bool_1d', np.array([True, False, True]), b,
         'tensor([ True, False,  True])'),
    Case('bool_1d_all_true', np.array([True, True]), b,
         'tensor([True, True])'),
    Case('f32_2d', np.array([[1.0, 2.5, -3.0], [4.0, 5.0, 6.125]], np.float32), f32,
         ('tensor([[ 1.0000,  2.5000, -3.0000],\n'
          '        [ 4.0000,  5.0000,  6.1250]])')),
    Case('f32_2d_int_mode_widths', np.array([[1.0, -200.0], [30.0, 4.0]], np.float32), f32,
         ('tensor([[   1., -200.],\n'
          '        [  30.,    4.]])')),
    Case('i64_2d', np.arange(6, dtype=np.int64).reshape(2, 3) - 2, i64,
         ('tensor([[-2, -1,  0],\n'
          '        [ 1,  2,  3]])')),
    Case('i32_2d', np.array([[7, 8], [9, 10]], np.int32), i32,
         ('tensor([[ 7,  8],\n'
          '        [ 9, 10]], dtype=torch.int32)')),
    Case('bool_2d', np.array([[True, False], [False, False]]), b,
         ('tensor([[ True, False],\n'
          '        [False, False]])')),
    Case('f32_3d', (np.arange(12, dtype=np.float32) / 4).reshape(2, 2, 3), f32,
         ('tensor([[[0.0000, 0.2500, 0.5000],\n'
          '         [0.7500, 1.0000, 1.2500]],\n'
          '\n'
          '        [[1.5000, 1.7500, 2.0000],\n'
          '         [2.2500, 2.5000, 2.7500]]])')),
    Case('i64_4d', np.arange(16, dtype=np.int64).reshape(2, 2, 2, 2), i64,
         ('tensor([[[[ 0,  1],\n'
          '          [ 2,  3]],\n'
          '\n'
          '         [[ 4,  5],\n'
          '          [ 6,  7]]],\n'
          '\n'
          '\n'
          '        [[[ 8,  9],\n'
          '          [10, 11]],\n'
          '\n'
          '         [[12, 13],\n'
          '          [14, 15]]]])')),
    Case('f64_4d_sci', (10.0 ** np.arange(-4, 4)).reshape(2, 1, 2, 2), f64,
         ('tensor([[[[1.0000e-04, 1.0000e-03],\n'
          '          [1.0000e-02, 1.0000e-01]]],\n'
          '\n'
          '\n'
          '        [[[1.0000e+00, 1.0000e+01],\n'
          '          [1.0000e+02, 1.0000e+03]]]], dtype=torch.float64)')),
    Case('f32_1d_wrap', np.linspace(-1, 1, 30).astype(np.float32), f32,
         ('tensor([-1.0000, -0.9310, -0.8621, -0.7931, -0.7241, -0.6552, -0.5862, -0.5172,\n'
          '        -0.4483, -0.3793, -0.3103, -0.2414, -0.1724, -0.1034, -0.0345,  0.0345,\n'
          '         0.1034,  0.1724,  0.2414,  0.3103,  0.3793,  0.4483,  0.5172,  0.5862,\n'
          '         0.6552,  0.7241,  0.7931,  0.8621,  0.9310,  1.0000])')),
    Case('f32_2d_wrap', (np.arange(75, dtype=np.float32) * np.float32(1.25)).reshape(3, 25), f32,
         ('tensor([[ 0.0000,  1.2500,  2.5000,  3.7500,  5.0000,  6.2500,  7.5000,  8.7500,\n'
          '         10.0000, 11.2500, 12.5000, 13.7500, 15.0000, 16.2500, 17.5000, 18.7500,\n'
          '         20.0000, 21.2500, 22.5000, 23.7500, 25.0000, 26.2500, 27.5000, 28.7500,\n'
          '         30.0000],\n'
          '        [31.2500, 32.5000, 33.7500, 35.0000, 36.2500, 37.5000, 38.7500, 40.0000,\n'
          '         41.2500, 42.5000, 43.7500, 45.0000, 46.2500, 47.5000, 48.7500, 50.0000,\n'
          '         51.2500, 52.5000, 53.7500, 55.0000, 56.2500, 57.5000, 58.7500, 60.0000,\n'
          '         61.2500],\n'
          '        [62.5000, 63.7500, 65.0000, 66.2500, 67.5000, 68.7500, 70.0000, 71.2500,\n'
          '         72.5000, 73.7500, 75.0000, 76.2500, 77.5000, 78.7500, 80.0000, 81.2500,\n'
          '         82.5000, 83.7500, 85.0000, 86.2500, 87.5000, 88.7500, 90.0000, 91.2500,\n'
          '         92.5000]])')),
    Case('i64_1d_wrap', np.arange(40, dtype=np.int64) * 1000, i64,
         ('tensor([    0,  1000,  2000,  3000,  4000,  5000,  6000,  7000,  8000,  9000,\n'
          '        10000, 11000, 12000, 13000, 14000, 15000, 16000, 17000, 18000, 19000,\n'
          '        20000, 21000, 22000, 23000, 24000, 25000, 26000, 27000, 28000, 29000,\n'
          '        30000, 31000, 32000, 33000, 34000, 35000, 36000, 37000, 38000, 39000])')),
    Case('f32_1d_summarized', np.arange(1001, dtype=np.float32), f32,
         'tensor([   0.,    1.,    2.,  ...,  998.,  999., 1000.])'),
    Case('opt_threshold_not_exceeded', np.arange(6, dtype=np.float32), f32,
         'tensor([0., 1., 2., 3., 4., 5.])', opts={'threshold': 6}),
    Case('opt_threshold_exceeded', np.arange(7, dtype=np.float32), f32,
         'tensor([0., 1., 2.,  ..., 4., 5., 6.])', opts={'threshold': 6}),
    Case('f32_2d_summarized', (np.arange(1600, dtype=np.float32) * np.float32(0.5)).reshape(40, 40), f32,
         ('tensor([[0.0000e+00, 5.0000e-01, 1.0000e+00,  ..., 1.8500e+01, 1.9000e+01,\n'
          '         1.9500e+01],\n'
          '        [2.0000e+01, 2.0500e+01, 2.1000e+01,  ..., 3.8500e+01, 3.9000e+01,\n'
          '         3.9500e+01],\n'
          '        [4.0000e+01, 4.0500e+01, 4.1000e+01,  ..., 5.8500e+01, 5.9000e+01,\n'
          '         5.9500e+01],\n'
          '        ...,\n'
          '        [7.4000e+02, 7.4050e+02, 7.4100e+02,  ..., 7.5850e+02, 7.5900e+02,\n'
          '         7.5950e+02],\n'
          '        [7.6000e+02, 7.6050e+02, 7.6100e+02,  ..., 7.7850e+02, 7.7900e+02,\n'
          '         7.7950e+02],\n'
          '        [7.8000e+02, 7.8050e+02, 7.8100e+02,  ..., 7.9850e+02, 7.9900e+02,\n'
          '         7.9950e+02]])')),
    Case('f32_2d_summarized_hidden_wide', np.where(np.arange(1600).reshape(40, 40) == 820, 1e6, 1).astype(np.float32), f32,
         ('tensor([[1., 1., 1.,  ..., 1., 1., 1.],\n'
          '        [1., 1., 1.,  ..., 1., 1., 1.],\n'
          '        [1., 1., 1.,  ..., 1., 1., 1.],\n'
          '        ...,\n'
          '        [1., 1., 1.,  ..., 1., 1., 1.],\n'
          '        [1., 1., 1.,  ..., 1., 1., 1.],\n'
          '        [1., 1., 1.,  ..., 1., 1., 1.]])')),
    Case('i64_3d_summarized', np.arange(1100, dtype=np.int64).reshape(11, 10, 10), i64,
         ('tensor([[[   0,    1,    2,  ...,    7,    8,    9],\n'
          '         [  10,   11,   12,  ...,   17,   18,   19],\n'
          '         [  20,   21,   22,  ...,   27,   28,   29],\n'
          '         ...,\n'
          '         [  70,   71,   72,  ...,   77,   78,   79],\n'
          '         [  80,   81,   82,  ...,   87,   88,   89],\n'
          '         [  90,   91,   92,  ...,   97,   98,   99]],\n'
          '\n'
          '        [[ 100,  101,  102,  ...,  107,  108,  109],\n'
          '         [ 110,  111,  112,  ...,  117,  118,  119],\n'
          '         [ 120,  121,  122,  ...,  127,  128,  129],\n'
          '         ...,\n'
          '         [ 170,  171,  172,  ...,  177,  178,  179],\n'
          '         [ 180,  181,  182,  ...,  187,  188,  189],\n'
          '         [ 190,  191,  192,  ...,  197,  198,  199]],\n'
          '\n'
          '        [[ 200,  201,  202,  ...,  207,  208,  209],\n'
          '         [ 210,  211,  212,  ...,  217,  218,  219],\n'
          '         [ 220,  221,  222,  ...,  227,  228,  229],\n'
          '         ...,\n'
          '         [ 270,  271,  272,  ...,  277,  278,  279],\n'
          '         [ 280,  281,  282,  ...,  287,  288,  289],\n'
          '         [ 290,  291,  292,  ...,  297,  298,  299]],\n'
          '\n'
          '        ...,\n'
          '\n'
          '        [[ 800,  801,  802,  ...,  807,  808,  809],\n'
          '         [ 810,  811,  812,  ...,  817,  818,  819],\n'
          '         [ 820,  821,  822,  ...,  827,  828,  829],\n'
          '         ...,\n'
          '         [ 870,  871,  872,  ...,  877,  878,  879],\n'
          '         [ 880,  881,  882,  ...,  887,  888,  889],\n'
          '         [ 890,  891,  892,  ...,  897,  898,  899]],\n'
          '\n'
          '        [[ 900,  901,  902,  ...,  907,  908,  909],\n'
          '         [ 910,  911,  912,  ...,  917,  918,  919],\n'
          '         [ 920,  921,  922,  ...,  927,  928,  929],\n'
          '         ...,\n'
          '         [ 970,  971,  972,  ...,  977,  978,  979],\n'
          '         [ 980,  981,  982,  ...,  987,  988,  989],\n'
          '         [ 990,  991,  992,  ...,  997,  998,  999]],\n'
          '\n'
          '        [[1000, 1001, 1002,  ..., 1007, 1008, 1009],\n'
          '         [1010, 1011, 1012,  ..., 1017, 1018, 1019],\n'
          '         [1020, 1021, 1022,  ..., 1027, 1028, 1029],\n'
          '         ...,\n'
          '         [1070, 1071, 1072,  ..., 1077, 1078, 1079],\n'
          '         [1080, 1081, 1082,  ..., 1087, 1088, 1089],\n'
          '         [1090, 1091, 1092,  ..., 1097, 1098, 1099]]])')),
    Case('bool_2d_summarized', (np.arange(2000).reshape(50, 40) % 3 == 0), b,
         ('tensor([[ True, False, False,  ..., False, False,  True],\n'
          '        [False, False,  True,  ..., False,  True, False],\n'
          '        [False,  True, False,  ...,  True, False, False],\n'
          '        ...,\n'
          '        [False,  True, False,  ...,  True, False, False],\n'
          '        [ True, False, False,  ..., False, False,  True],\n'
          '        [False, False,  True,  ..., False,  True, False]])')),
    Case('f32_empty', np.zeros(0, np.float32), f32,
         'tensor([])'),
    Case('f32_empty_0x3', np.zeros((0, 3), np.float32), f32,
         'tensor([], size=(0, 3))'),
    Case('i64_empty', np.zeros(0, np.int64), i64,
         'tensor([], dtype=torch.int64)'),
    Case('i32_empty_3x0', np.zeros((3, 0), np.int32), i32,
         'tensor([], size=(3, 0), dtype=torch.int32)'),
    Case('bool_empty_3d', np.zeros((2, 0, 3), np.bool_), b,
         'tensor([], size=(2, 0, 3), dtype=torch.bool)'),
    Case('f64_empty', np.zeros(0), f64,
         'tensor([], dtype=torch.float64)'),
    Case('f32_empty_requires_grad', np.zeros((0, 2), np.float32), f32,
         'tensor([], size=(0, 2), requires_grad=True)', suffix='requires_grad=True'),
    Case('f32_requires_grad', np.array([1.0, 2.0], np.float32), f32,
         'tensor([1., 2.], requires_grad=True)', suffix='requires_grad=True'),
    Case('f64_requires_grad', np.array([[0.5, 1.0]]), f64,
         'tensor([[0.5000, 1.0000]], dtype=torch.float64, requires_grad=True)', suffix='requires_grad=True'),
    Case('f32_grad_fn', np.array([[1.5, 2.0], [3.0, 4.0]], np.float32), f32,
         ('tensor([[1.5000, 2.0000],\n'
          '        [3.0000, 4.0000]], grad_fn=<AddBackward0>)'), suffix='grad_fn=<AddBackward0>'),
    Case('f64_grad_fn', np.array([1.0, 2.0, 3.0]), f64,
         'tensor([1., 2., 3.], dtype=torch.float64, grad_fn=<MulBackward0>)', suffix='grad_fn=<MulBackward0>'),
    Case('f32_requires_grad_wraps', np.arange(10, dtype=np.float32) * np.float32(1.5), f32,
         ('tensor([ 0.0000,  1.5000,  3.0000,  4.5000,  6.0000,  7.5000,  9.0000, 10.5000,\n'
          '        12.0000, 13.5000], requires_grad=True)'), suffix='requires_grad=True'),
    Case('f64_grad_fn_wraps', np.linspace(0, 1, 11), f64,
         ('tensor([0.0000, 0.1000, 0.2000, 0.3000, 0.4000, 0.5000, 0.6000, 0.7000, 0.8000,\n'
          '        0.9000, 1.0000], dtype=torch.float64, grad_fn=<AddBackward0>)'), suffix='grad_fn=<AddBackward0>'),
    Case('f32_2d_wrap_requires_grad', np.arange(40, dtype=np.float32).reshape(2, 20) / 3, f32,
         ('tensor([[ 0.0000,  0.3333,  0.6667,  1.0000,  1.3333,  1.6667,  2.0000,  2.3333,\n'
          '          2.6667,  3.0000,  3.3333,  3.6667,  4.0000,  4.3333,  4.6667,  5.0000,\n'
          '          5.3333,  5.6667,  6.0000,  6.3333],\n'
          '        [ 6.6667,  7.0000,  7.3333,  7.6667,  8.0000,  8.3333,  8.6667,  9.0000,\n'
          '          9.3333,  9.6667, 10.0000, 10.3333, 10.6667, 11.0000, 11.3333, 11.6667,\n'
          '         12.0000, 12.3333, 12.6667, 13.0000]], requires_grad=True)'), suffix='requires_grad=True'),
    Case('suffix_fits_line_55', np.ones(12, np.float32), f32,
         'tensor([1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.], requires_grad=True)', suffix='requires_grad=True'),
    Case('suffix_wraps_line_59', np.ones(13, np.float32), f32,
         ('tensor([1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.],\n'
          '       requires_grad=True)'), suffix='requires_grad=True'),
    Case('dtype_and_suffix_wrap', np.ones(13, np.float64), f64,
         ('tensor([1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1., 1.],\n'
          '       dtype=torch.float64, grad_fn=<AddBackward0>)'), suffix='grad_fn=<AddBackward0>'),
    Case('opt_precision_2', np.array([1.12345, -2.5], np.float32), f32,
         'tensor([ 1.12, -2.50])', opts={'precision': 2}),
    Case('opt_precision_0', np.array([1.5, 2.25], np.float32), f32,
         'tensor([2, 2])', opts={'precision': 0}),
    Case('opt_sci_mode_true', np.array([1.0, 2.5], np.float32), f32,
         'tensor([1.0000e+00, 2.5000e+00])', opts={'sci_mode': True}),
    Case('opt_sci_mode_false', np.array([1e-6, 12345.0], np.float32), f32,
         'tensor([    0.0000, 12345.0000])', opts={'sci_mode': False}),
    Case('opt_linewidth_40', np.arange(20, dtype=np.int64), i64,
         ('tensor([ 0,  1,  2,  3,  4,  5,  6,  7,\n'
          '         8,  9, 10, 11, 12, 13, 14, 15,\n'
          '        16, 17, 18, 19])'), opts={'linewidth': 40}),
    Case('opt_threshold_edgeitems', np.arange(24, dtype=np.float32).reshape(4, 6), f32,
         ('tensor([[ 0.,  ...,  5.],\n'
          '        ...,\n'
          '        [18.,  ..., 23.]])'), opts={'threshold': 10, 'edgeitems': 1}),
    Case('opt_edgeitems_0', np.arange(24, dtype=np.int32).reshape(4, 6), i32,
         'tensor([...], size=(4, 6), dtype=torch.int32)', opts={'threshold': 10, 'edgeitems': 0}),
    Case('opt_edgeitems_0_1d', np.arange(24, dtype=np.float32), f32,
         'tensor([...], size=(24,), requires_grad=True)', suffix='requires_grad=True', opts={'threshold': 10, 'edgeitems': 0}),
    Case('opt_profile_short', np.arange(1200, dtype=np.float32).reshape(30, 40) / 7, f32,
         ('tensor([[0.00e+00, 1.43e-01,  ..., 5.43e+00, 5.57e+00],\n'
          '        [5.71e+00, 5.86e+00,  ..., 1.11e+01, 1.13e+01],\n'
          '        ...,\n'
          '        [1.60e+02, 1.60e+02,  ..., 1.65e+02, 1.66e+02],\n'
          '        [1.66e+02, 1.66e+02,  ..., 1.71e+02, 1.71e+02]])'), opts={'profile': 'short'}),
    Case('default_f64_shows_f32', np.array([1.0, 2.5], np.float32), f32,
         'tensor([1.0000, 2.5000], dtype=torch.float32)', default='float64'),
    Case('default_f64_hides_f64', np.array([1.0, 2.5]), f64,
         'tensor([1.0000, 2.5000], requires_grad=True)', suffix='requires_grad=True', default='float64'),
    Case('default_f64_empty_f64', np.zeros((0, 2)), f64,
         'tensor([], size=(0, 2))', default='float64'),
    Case('default_f64_empty_f32', np.zeros(0, np.float32), f32,
         'tensor([], dtype=torch.float32)', default='float64'),
]


@pytest.fixture(autouse=True)
def _restore_defaults():
    yield
    set_printoptions(profile="default")
    dtypes.set_default_dtype(dtypes.float32)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(case: Case) -> None:
    dtypes.set_default_dtype(dtypes.as_dtype(case.default))
    set_printoptions(**case.opts)
    assert tensor_repr(case.data, case.dtype, case.suffix) == case.expected


def test_case_ids_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


DEFAULTS = {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80, "sci_mode": None}


@pytest.mark.parametrize("profile, expected", [
    ("default", DEFAULTS),
    ("short", {**DEFAULTS, "precision": 2, "edgeitems": 2}),
    ("full", {**DEFAULTS, "threshold": math.inf}),
])
def test_profiles(profile: str, expected: dict[str, Any]) -> None:
    set_printoptions(precision=7, threshold=5, edgeitems=1, linewidth=20, sci_mode=True)
    set_printoptions(profile=profile)
    assert get_printoptions() == expected


def test_profile_then_override() -> None:
    set_printoptions(profile="short", precision=3)
    assert get_printoptions() == {**DEFAULTS, "precision": 3, "edgeitems": 2}


def test_any_call_resets_sci_mode() -> None:
    # torch.set_printoptions assigns sci_mode unconditionally; so do we.
    set_printoptions(sci_mode=True)
    set_printoptions(precision=4)
    assert get_printoptions()["sci_mode"] is None
    assert tensor_repr(np.array([1.0, 2.5], np.float32), f32) == "tensor([1.0000, 2.5000])"


def test_full_profile_never_summarizes() -> None:
    data = np.arange(1001, dtype=np.int64) % 10
    assert "..." in tensor_repr(data, i64)
    set_printoptions(profile="full")
    text = tensor_repr(data, i64)
    assert "..." not in text and text.count(",") == 1000


def test_defaults_restorable_via_get_printoptions() -> None:
    saved = get_printoptions()
    set_printoptions(precision=1, linewidth=30)
    set_printoptions(**saved)
    assert get_printoptions() == DEFAULTS


# --- cross-check against real PyTorch, when it is installed ---------------------

_NP_TYPES = [np.float32, np.float64, np.int32, np.int64, np.bool_]
_SPECIALS = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0])
_OPTION_SETS: list[dict[str, Any]] = [
    {}, {"precision": 2}, {"sci_mode": True}, {"sci_mode": False}, {"profile": "short"},
    {"linewidth": 50, "threshold": 60, "edgeitems": 2}, {"threshold": 10, "edgeitems": 0},
]


def _random_array(rng: np.random.Generator) -> np.ndarray:
    ndim = int(rng.integers(0, 5))
    high = {0: 1, 1: 40, 2: 12}.get(ndim, 4)
    shape = tuple(int(rng.integers(0, high + 1)) for _ in range(ndim))
    if ndim and rng.random() < 0.1:       # big enough to be summarized
        shape = shape[:-1] + (int(rng.integers(1001, 1500)),)
    np_type = _NP_TYPES[int(rng.integers(len(_NP_TYPES)))]
    n = math.prod(shape)
    if np_type is np.bool_:
        values = rng.random(n) < 0.5
    elif np_type in (np.int32, np.int64):
        bound = 10 ** int(rng.integers(0, 9))
        values = rng.integers(-bound, bound + 1, n)
    else:
        kind = int(rng.integers(0, 4))
        if kind == 0:       # one magnitude, anywhere from 1e-12 to 1e12
            values = rng.normal(size=n) * 10.0 ** rng.uniform(-12, 12)
        elif kind == 1:     # integer-valued floats
            values = np.round(rng.normal(size=n) * 100)
        elif kind == 2:     # each element its own magnitude
            values = rng.normal(size=n) * 10.0 ** rng.uniform(-6, 10, n)
        else:
            values = rng.normal(size=n)
        if rng.random() < 0.4:
            mask = rng.random(n) < 0.2
            values[mask] = rng.choice(_SPECIALS, int(mask.sum()))
    return np.asarray(values, dtype=np_type).reshape(shape)


def test_matches_torch_on_random_tensors() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(20240607)
    saved_default = torch.get_default_dtype()
    mismatches = []
    try:
        for i in range(400):
            data = _random_array(rng)
            dtype = dtypes.from_numpy_dtype(data.dtype)
            opts = _OPTION_SETS[i % len(_OPTION_SETS)] if i % 3 == 0 else {}
            default64 = i % 11 == 0
            torch.set_default_dtype(torch.float64 if default64 else torch.float32)
            dtypes.set_default_dtype(f64 if default64 else f32)
            torch.set_printoptions(**opts)
            set_printoptions(**opts)
            t = torch.from_numpy(data.copy())
            pairs = [(repr(t), tensor_repr(data, dtype))]
            if dtype.is_floating_point:
                pairs.append((repr(t.requires_grad_()), tensor_repr(data, dtype, "requires_grad=True")))
            torch.set_printoptions(profile="default")
            set_printoptions(profile="default")
            mismatches += [(data.dtype, data.shape, opts, want, got) for want, got in pairs if want != got]
    finally:
        torch.set_printoptions(profile="default")
        torch.set_default_dtype(saved_default)
    assert not mismatches, mismatches[:3]
