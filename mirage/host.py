"""Set-up of a process Mirage owns: the NIF's embedded interpreter, the port program,
the node. A library user's own process is never changed behind their back: only a
transport calls :func:`setup`, once, before serving requests.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass, field
from typing import TextIO

from mirage import memory, output


@dataclass
class Setup:
    """What :func:`setup` changed, so that :meth:`undo` can put it back (for tests;
    a transport keeps its set-up for the life of the process)."""

    streams: tuple[TextIO, TextIO]
    warning_state: warnings.catch_warnings
    block_cache: memory.BlockCache
    handlers: list[logging.Handler] = field(default_factory=list)

    def undo(self) -> None:
        sys.stdout, sys.stderr = self.streams
        output.forget_sink()
        self.warning_state.__exit__(None, None, None)  # filters and showwarning
        root = logging.getLogger()
        for added in [h for h in root.handlers if isinstance(h, output.SinkHandler)]:
            root.removeHandler(added)
        for handler in self.handlers:
            root.addHandler(handler)
        memory.configure(self.block_cache.block_size, self.block_cache.blocks_max, environ={})


def setup(sink: output.Sink) -> Setup:
    """Route all output to ``sink``, report every warning, and keep Pillow's blocks.

    - stdout, stderr, warnings and logging (tracebacks of internal errors included)
      go to ``sink``: a process embedded in or serving the BEAM must not write to
      the VM's stdout, and its operators read Logger.
    - Every ``UserWarning`` is reported, not just the first per code location: in a
      long-running process "once" would report only the first bad upload.
    - Pillow's block cache is configured (:mod:`mirage.memory`).
    """
    root = logging.getLogger()
    warning_state = warnings.catch_warnings()
    warning_state.__enter__()  # records filters and showwarning for undo()
    before = Setup(
        streams=(sys.stdout, sys.stderr),
        warning_state=warning_state,
        block_cache=memory.current(),
        handlers=[h for h in root.handlers if isinstance(h, output.SinkHandler)],
    )
    output.install(sink)
    warnings.filterwarnings("always", category=UserWarning)
    memory.configure()
    return before
