"""Ctrl-C stops a long count_1d call promptly and leaves the interpreter usable."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CHILD = textwrap.dedent(
    """
    import signal, threading, time
    import numpy as np
    import lrcore

    # A shell may start us with SIGINT ignored; Python's default handler raises
    # KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    rng = np.random.default_rng(0)
    net = lrcore.Network.random([64, 512, 512, 512, 512, 1], seed=1)
    centres = rng.standard_normal((20000, 64))
    directions = rng.standard_normal((20000, 64))
    paths = [np.stack([c - 20 * u, c + 20 * u]) for c, u in zip(centres, directions)]

    # The GIL is released during the call: this thread keeps ticking.
    ticks = []
    def tick():
        while True:
            ticks.append(time.perf_counter())
            time.sleep(0.01)
    threading.Thread(target=tick, daemon=True).start()

    print("ready", flush=True)
    start = time.perf_counter()
    try:
        lrcore.count_1d(net, paths, num_threads=THREADS)
        print("finished", flush=True)
    except KeyboardInterrupt:
        stopped = time.perf_counter()
        during = sum(1 for t in ticks if start < t < stopped)
        print("interrupted", during, flush=True)
        r = lrcore.count_1d(net, paths[:3])
        print("usable", len(r), flush=True)
    """
)


# On 1 thread the calling thread does all the work and polls from inside its tasks.
@pytest.mark.parametrize("threads", [2, 1])
def test_sigint_stops_a_long_call_within_a_second(threads):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD.replace("THREADS", str(threads))],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        sent = time.perf_counter()
        child.send_signal(signal.SIGINT)
        line = child.stdout.readline().split()
        reaction = time.perf_counter() - sent
        rest = child.communicate(timeout=60)[0]
    finally:
        child.kill()
    assert line[0] == "interrupted", "the call finished before the signal: make it longer"
    assert reaction < 1.5
    # Another thread ran while the core worked, so the GIL was released.
    assert int(line[1]) >= 20
    assert rest.split() == ["usable", "3"]
