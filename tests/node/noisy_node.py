"""``python -m tests.node.noisy_node``: mirage.node whose ``formats`` writes like C code.

Tests only. ``args`` with ``c_lines => N`` make a ``formats`` call write N lines
straight to file descriptor 2 and one to descriptor 1 first, as libtiff does, to show
they reach the node's log (capped) and never its stdout.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Hashable, Mapping
from typing import Any

from mirage.etf import Atom
from mirage.node.__main__ import main
from mirage.node.backend import Backend, ServerBackend


class NoisyBackend:
    def __init__(self, inner: Backend) -> None:
        self.inner = inner

    def call(self, op: Atom, source: object, args: Mapping[str, Any], owner: Hashable) -> object:
        lines = args.get("c_lines")
        if op == "formats" and type(lines) is int:
            os.write(1, b"C out\n")
            for i in range(lines):
                os.write(2, b"C line %d\n" % i)
        return self.inner.call(op, source, args, owner)

    def release(self, handle: int) -> None:
        self.inner.release(handle)

    def release_owner(self, owner: Hashable) -> int:
        return self.inner.release_owner(owner)


if __name__ == "__main__":
    sys.exit(main(backend=NoisyBackend(ServerBackend())))
