"""The context encoding is the same on the training path and on the device."""

import numpy as np

from edge.context import CONTEXT_DIM, Context, context_matrix


def test_device_vector_equals_training_matrix_for_every_hour_and_weekday():
    start = 1_700_000_000  # 2023-11-14 22:13:20 UTC, a Tuesday
    stamps = start + 3600 * np.arange(24 * 7)
    for device in ("tv", "speaker"):
        matrix = context_matrix(stamps, device)
        assert matrix.shape == (len(stamps), CONTEXT_DIM) and matrix.dtype == np.float32
        for ts, row in zip(stamps, matrix):
            np.testing.assert_array_equal(Context.at(int(ts), device).vector(), row)
    assert Context.at(start).weekday == 1 and Context.at(start).hour == 22
    assert context_matrix([start], "speaker")[0, -1] == 1.0 and context_matrix([start])[0, -1] == 0.0
