"""The fast paths' own C libraries (built into the package by ``c_src/build.py
helper``), each opened once with cffi's ``dlopen`` on first use.

Loading takes milliseconds and lets other threads run (cffi parses the declarations
in Python). A call arriving meanwhile must wait for the result: told "no library",
it would take Pillow's path and give other bytes than the same call gives once the
library is loaded. So the result is published last, under a lock.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


class Library:
    """``filename`` in the package, with the C ``declarations`` it is used through."""

    def __init__(self, filename: str, declarations: str) -> None:
        self.path = _PACKAGE / filename
        self._declarations = declarations
        self._lock = threading.Lock()
        self._loaded = False
        self._handle: tuple[Any, Any] | None = None

    def get(self) -> tuple[Any, Any] | None:
        """``(ffi, lib)``, or ``None`` when the library is not built or not loadable."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self._handle = self._load()
                    self._loaded = True
        return self._handle

    def _load(self) -> tuple[Any, Any] | None:
        if not self.path.exists():
            return None
        import cffi  # type: ignore[import-untyped]

        ffi = cffi.FFI()
        ffi.cdef(self._declarations)
        try:
            return ffi, ffi.dlopen(str(self.path))
        except OSError:
            return None
