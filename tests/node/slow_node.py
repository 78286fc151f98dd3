"""``python -m tests.node.slow_node``: mirage.node whose ``formats`` can be made slow.

Tests only. ``args`` with ``busy_ms => N`` make a ``formats`` call spin in pure Python
for N ms first, holding the GIL as CPU-bound image work does, to show ticks and other
requests are still answered meanwhile.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Hashable, Mapping
from typing import Any

from mirage.etf import Atom
from mirage.node.__main__ import main
from mirage.node.backend import Backend, ServerBackend


class SlowBackend:
    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        busy_ms = args.get("busy_ms")
        if op == "formats" and type(busy_ms) is int:
            deadline = time.monotonic() + busy_ms / 1000
            while time.monotonic() < deadline:
                sum(range(1000))
        return self.inner.call(op, source, args, owner)

    def release(self, handle: int) -> None:
        self.inner.release(handle)

    def release_owner(self, owner: Hashable) -> int:
        return self.inner.release_owner(owner)


if __name__ == "__main__":
    sys.exit(main(backend=SlowBackend(ServerBackend())))
