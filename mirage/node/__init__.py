"""Mirage as a hidden Erlang node: ``python -m mirage.node``.

The node registers with EPMD, accepts (and can dial) Erlang distribution connections,
and serves one registered name, ``mirage``, that answers ``GenServer.call``
requests with Mirage's operations. It never runs anything else a peer asks for.

- :mod:`mirage.node.epmd`: register with EPMD, look other nodes up.
- :mod:`mirage.node.handshake`: the distribution handshake (version 6, OTP 23+).
- :mod:`mirage.node.connection`: framing, ticks and control messages of one connection.
- :mod:`mirage.node.requests`: the ``mirage`` process: requests to the image work pool.
- :mod:`mirage.node.backend`: the request path the work runs on.
- :mod:`mirage.node.node`: the node itself: listener, EPMD registration, connections.
"""

from __future__ import annotations
