"""Known core issue found by tests/test_fuzz.py: a zero-area sliver face in slice_2d.

When a deeper neuron's line lies within rounding of an earlier neuron's line (here a
second-layer unit whose zero set is 2.4e-30 from the first layer's line, in a net whose
weights are about 1e29), the core cuts the face along both and returns a face of zero
area whose corners are copies of other vertices (same coordinates, other indices). The
count is right in exact arithmetic (the sliver exists, 2.4e-30 wide), but the face is not
a positive-area convex polygon: it should be merged into a shared vertex (the zero
tolerance at new vertices) or kept with its true, positive area.
"""

from __future__ import annotations

import numpy as np
import pytest

import lrcore

WEIGHTS = [
    [[1.9369307573550384e29, -3.255707516336139e29]],
    [[-9.180529521276107e29]],
    [[-9.669447289429418e29]],
]
BIASES = [[4.430310209648888e29], [8.255111545554435e29], [2.1327155153435972e29]]
ORIGIN = [0.1257302210933933, -0.1321048632913019]


@pytest.mark.xfail(
    strict=True,
    reason="core (cpp/src/slice2d.cpp): a neuron line within rounding of an earlier one "
    "gives a zero-area face with duplicated vertices instead of one shared vertex",
)
def test_near_coincident_lines_of_two_layers_give_no_zero_area_face():
    net = lrcore.Network([np.array(w) for w in WEIGHTS], [np.array(b) for b in BIASES])
    r = lrcore.slice_2d(net, np.array(ORIGIN), np.eye(2))
    report = r.verify()
    assert report.ok, str(report)
