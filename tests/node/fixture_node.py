"""``python -m tests.node.fixture_node``: mirage.node whose ``formats`` can misbehave.

Tests only. A ``formats`` call whose ``args`` carry
- ``busy_ms => N`` first spins in pure Python for N ms, holding the GIL as CPU-bound
  image work does, to show ticks and other requests are still answered meanwhile;
- ``c_lines => N`` first writes N lines straight to file descriptor 2 and one to
  descriptor 1, as libtiff does, to show they reach the node's log (capped) and never
  its stdout.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Hashable, Mapping
from typing import Any

from mirage.etf import Atom
from mirage.node.__main__ import main
from mirage.node.backend import Backend, ServerBackend


class FixtureBackend:
    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        if op == "formats":
            busy_ms = args.get("busy_ms")
            if type(busy_ms) is int:
                deadline = time.monotonic() + busy_ms / 1000
                while time.monotonic() < deadline:
                    sum(range(1000))
            lines = args.get("c_lines")
            if type(lines) is int:
                os.write(1, b"C out\n")
                for i in range(lines):
                    os.write(2, b"C line %d\n" % i)
        return self.inner.call(op, source, args, owner)

    def release(self, handle: int) -> None:
        self.inner.release(handle)

    def release_owner(self, owner: Hashable) -> int:
        return self.inner.release_owner(owner)


if __name__ == "__main__":
    sys.exit(main(backend=FixtureBackend(ServerBackend())))
