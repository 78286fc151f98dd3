"""Requests and replies as Erlang terms, for the Port and the Node, over a Service.

Both carry the same request (an operation atom, a source, the argument map, the
calling process as owner) and answer exactly the reply term the NIF builds, so one
Elixir decoder (``Mirage.Transport``) reads all three:

- ``{:ok, bytes | nil, {handle, format, width, height} | nil, term | nil}``
- ``{:error, reason}`` with ``reason`` from the closed set
- ``:released`` when the source handle was released before the call could use it

A source is a binary, ``{:handle, integer}`` or ``nil``. Framing, connections and
ids are the transport's business, not this module's.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from mirage.buffers import Encoded, Output, read_bytes
from mirage.errors import reason_of
from mirage.etf import Atom
from mirage.service import Reply, Service, Source

OK = Atom("ok")
ERROR = Atom("error")
RELEASED = Atom("released")
HANDLE = Atom("handle")


def source_of(term: object) -> Source:
    """The :class:`~mirage.service.Service` source a request's source term names."""
    if term is None or isinstance(term, (bytes, memoryview)):
        return term
    if (
        isinstance(term, tuple)
        and len(term) == 2
        and term[0] == HANDLE
        and isinstance(term[1], int)
        and not isinstance(term[1], bool)
    ):
        handle: int = term[1]
        return handle
    raise TypeError(f"a source is a binary, {{:handle, id}} or nil, got {term!r:.80}")


def handle(
    service: Service,
    op: object,
    source: object,
    args: object,
    owner: Hashable | None,
    *,
    output: Output[Any] = read_bytes,
) -> object:
    """Run one request and answer its reply term; never raises.

    ``output`` turns the encoded output into the term's bytes slot (and owns it):
    by default the bytes themselves; a transport that writes frames itself may pass
    :func:`mirage.buffers.keep` and put the :class:`~mirage.buffers.Encoded` on the
    wire without a copy (it must then close it).
    """
    try:
        if not isinstance(op, str):
            raise TypeError(f"an operation is an atom, got {op!r:.80}")
        if not isinstance(args, Mapping):
            raise TypeError(f"arguments are a map, got {type(args).__name__}")
        resolved = source_of(source)
    except Exception as exc:  # noqa: BLE001 - a malformed request is a reply too
        return (ERROR, Atom(reason_of(exc, "a request")))
    return _reply_term(service, service.call(str(op), resolved, args, owner), output)


def _reply_term(service: Service, reply: Reply, output: Output[Any]) -> object:
    if reply.kind == "released":
        return RELEASED
    if reply.kind == "error":
        return (ERROR, Atom(reply.reason or "internal_error"))
    image = None
    if reply.image is not None:
        held = reply.image
        image = (held.handle, Atom(held.format), held.width, held.height)
    try:
        data = _output(reply.data, output)
    except Exception as exc:  # noqa: BLE001 - the reply is an error, nothing stays held
        if reply.image is not None:
            service.release(reply.image.handle)
        return (ERROR, Atom(reason_of(exc, "the reply")))
    return (OK, data, image, reply.term)


def _output(data: Encoded | None, output: Output[Any]) -> object:
    if data is None:
        return None
    try:
        return output(data)
    except BaseException:
        data.close()
        raise
