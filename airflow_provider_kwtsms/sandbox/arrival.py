"""When a request reached the sandbox: the kernel's receive time of its first byte.

One job: give the firewall and the rate limit the moment a request arrived, as the real gateway's
firewall sees it at its network card, not the moment one of the sandbox's threads got round to it.
A busy machine can leave a handler thread waiting tens of milliseconds; stamped then, requests
that arrived paced 0.2 s apart can look bunched, and the sandbox would block a client that kept
the rule (or, stamped late the other way, let through one that did not).

On Linux the listening socket asks for receive timestamps (``SO_TIMESTAMPNS``, inherited by every
accepted connection); before reading a request the handler peeks at its first byte with
``recvmsg(MSG_PEEK)``, which returns that byte's kernel receive time. The age of that stamp on the
wall clock is taken from the sandbox's own clock, so the result is on the sandbox's clock (moved
by ``advance`` or not). A sandbox whose clock a test drives (frozen, stepped) is not on the wall
clock: there the arrival is that clock's now, as are all arrivals elsewhere or when the kernel
gives no stamp (the very first packets after timestamps are switched on can come without).
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from collections.abc import Callable

# SO_TIMESTAMPNS (and its control message SCM_TIMESTAMPNS) is 35 on Linux's common architectures;
# Python's socket module does not name it.
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35 if sys.platform == "linux" else None)
_TIMESPEC = struct.Struct("@qq")  # struct timespec on 64-bit Linux: seconds, nanoseconds
# A stamp older than this is not believed (a wall-clock step, a stalled process): the clock's now.
MAX_AGE = 5.0


def enable(listening: socket.socket) -> bool:
    """Ask the kernel to stamp what this socket's connections receive. False where it cannot."""
    if _SO_TIMESTAMPNS is None:
        return False
    try:
        listening.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
    except OSError:
        return False
    return True


def age(connection: socket.socket) -> float:
    """Seconds since the kernel received the next byte waiting on ``connection`` (0.0 unknown).

    Blocks until a byte is there, as reading the request would; raises ``TimeoutError`` when the
    connection's timeout passes first. Only a byte not yet read from the socket is stamped: a
    request the client pipelined behind another (which no gateway client does) looks younger.
    """
    try:
        if _SO_TIMESTAMPNS is None or not hasattr(connection, "recvmsg"):
            connection.recv(1, socket.MSG_PEEK)  # waits for the request all the same
            return 0.0
        data, ancillary, _, _ = connection.recvmsg(1, socket.CMSG_SPACE(_TIMESPEC.size), socket.MSG_PEEK)
    except TimeoutError:
        raise
    except OSError:
        return 0.0  # reading the request will meet (and report) the same trouble
    wall = time.time()
    for level, kind, payload in ancillary if data else ():
        if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS and len(payload) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(payload)
            received = float(seconds) + float(nanoseconds) / 1e9
            if 0.0 <= wall - received <= MAX_AGE:
                return wall - received
    return 0.0


def arrived(connection: socket.socket, clock: Callable[[], float], *, wall_clock: bool) -> float:
    """When the next request on ``connection`` arrived, on ``clock``: its now once the request is
    there, less the request's :func:`age` when ``clock`` runs with the wall clock (a clock a test
    drives, frozen or stepped, has no part in the kernel's stamp)."""
    waited = age(connection)  # first: it waits for the request to come
    return clock() - (waited if wall_clock else 0.0)
