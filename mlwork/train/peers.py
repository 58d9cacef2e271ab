"""Peer watch: in a multi-process job, a process that dies or fails is noticed at once by the
others, which stop with one line instead of blocking in a collective.

Without it the survivors wait in a collective with the dead process until JAX's coordination
service declares it dead (``heartbeat_timeout_s``) and aborts them with a fatal log, a C++ stack
trace and status 134. A process that hangs alive is still left to that heartbeat.

The protocol is a TCP star around process 0, one line per message:

* process ``j > 0`` connects to process 0 (its port is published in JAX's key-value store) and
  says ``hello j``; process 0 accepts the job's ``n - 1`` processes and closes anything else;
* every process ends through :func:`release_peers` with ``bye <exit code>``;
* a connection that closes without ``bye`` (the kernel closes it when a process is killed or
  crashes) means that process is lost: the watcher prints
  ``error: [process i/n] lost the multi-process job: process j ...`` and exits the process with
  69 (:data:`~mlwork.train.errors.EXIT_PEER_LOST`). Process 0 first tells the others which
  process was lost (``lost <reason>``), so every line names the process that went;
* ``bye`` with 0, 75 or 130 is an agreed end (success, or a stop every process makes together).
  ``bye`` with an error code (2, 3, 4) is usually one every process reaches at the same point (a
  non-finite loss, a full disk): the others get :data:`ERROR_GRACE_S` seconds to end with their
  own code before they stop with 69 and a line naming the process and its code;
* process 0 holds JAX's coordination service, and JAX aborts the other processes (status 134)
  the moment it goes: after an error goodbye or a ``lost`` message of its own, process 0 waits
  (bounded) until the others' connections have closed before it exits.
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable

from mlwork.train.errors import EXIT_CODES, EXIT_INTERRUPTED, EXIT_OK, EXIT_PEER_LOST, EXIT_PREEMPTED

ERROR_GRACE_S = 10.0
JOIN_TIMEOUT_S = 60.0
_PORT_KEY = "mlwork/peer_watch_port"
_AGREED_ENDS = (EXIT_OK, EXIT_PREEMPTED, EXIT_INTERRUPTED)
_CLOSE_WAIT_S = 5.0  # how long process 0 stays up for the others to go, after telling them
_RESUME = "earlier checkpoints are intact: rerun every process with --resume"
_MESSAGE = re.compile(r"(hello|bye) ([0-9]{1,6})|lost (.+)")


def _exit_now(code: int) -> None:
    os._exit(code)


class PeerWatch:
    """The watch of one process: ``index`` of ``count``, ``prefix`` before its lines.

    Build it with :meth:`start` inside a ``jax.distributed`` job, or connect it yourself with
    :meth:`serve` (process 0) or :meth:`join` (the others). ``exit`` ends the process
    (``os._exit`` by default: the main thread may be blocked in a collective).
    """

    def __init__(self, index: int, count: int, *, prefix: str = "", grace_s: float = ERROR_GRACE_S,
                 exit: Callable[[int], None] = _exit_now):
        self.index, self.count, self.prefix, self.grace_s = index, count, prefix, grace_s
        self._exit = exit
        self._conns: dict[int, socket.socket] = {}
        self._closed: set[int] = set()  # peers whose connection has closed (their process is gone)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ended = False  # this process said goodbye, or is stopping for a lost peer

    # -- start-up ----------------------------------------------------------------------------

    @classmethod
    def start(cls, timeout_s: float = JOIN_TIMEOUT_S) -> PeerWatch | None:
        """Connect the processes of the running ``jax.distributed`` job (``None`` outside one).
        Every process calls it at the same point of its start-up. A process that does not join
        within ``timeout_s`` ends this one as a lost peer would (one line, exit 69)."""
        import jax

        if not jax.distributed.is_initialized() or jax.process_count() < 2:
            return None
        from jax._src.distributed import global_state

        from mlwork.train.parallel import process_prefix

        index, count, client = jax.process_index(), jax.process_count(), global_state.client
        watch = cls(index, count, prefix=process_prefix() if index else "", grace_s=ERROR_GRACE_S)
        try:
            if index == 0:
                server = _listen(count)
                client.key_value_set(_PORT_KEY, str(server.getsockname()[1]))
                watch.serve(server, timeout_s)
            else:
                port = int(client.blocking_key_value_get(_PORT_KEY, int(timeout_s * 1000)))
                host = global_state.coordinator_address.rsplit(":", 1)[0].strip("[]")
                watch.join(host, port, timeout_s)
        except Exception as e:  # noqa: BLE001 -- any failure to join is a lost job, said in one line
            watch._fail(f"the processes could not connect their peer watch within {timeout_s:g} s "
                        f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}); {_RESUME}")
        return watch

    def serve(self, server: socket.socket, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """Process 0: accept the ``count - 1`` other processes on ``server`` (each says
        ``hello j``; a connection that does not is closed and not counted), then close it."""
        deadline = time.monotonic() + timeout_s
        with server:
            while len(self._conns) < self.count - 1:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    missing = sorted(set(range(1, self.count)) - set(self._conns))
                    raise TimeoutError(f"process(es) {missing} did not connect")
                server.settimeout(remaining)
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue  # the deadline has passed: said above, naming who is missing
                peer = _read_hello(conn, min(remaining, 5.0), self.count)
                if peer is None or peer in self._conns:
                    conn.close()
                    continue
                self._watch(peer, conn)

    def join(self, host: str, port: int, timeout_s: float = JOIN_TIMEOUT_S) -> None:
        """A process other than 0: connect to process 0 at ``host:port`` and say who it is."""
        conn = socket.create_connection((host, port), timeout=timeout_s)
        conn.sendall(f"hello {self.index}\n".encode())
        self._watch(0, conn)

    def _watch(self, peer: int, conn: socket.socket) -> None:
        conn.settimeout(None)
        with self._lock:
            self._conns[peer] = conn
        threading.Thread(target=self._read, args=(peer, conn), daemon=True, name=f"mlwork-peer-watch-{peer}").start()

    # -- watching ----------------------------------------------------------------------------

    def _read(self, peer: int, conn: socket.socket) -> None:
        buffer, said_bye = b"", False
        while True:
            try:
                chunk = conn.recv(4096)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            while b"\n" in buffer and not said_bye:
                line, buffer = buffer.split(b"\n", 1)
                message = _MESSAGE.fullmatch(line.decode("ascii", errors="replace"))
                if message is None:
                    continue
                kind, code, relayed = message.groups()
                if kind == "bye":
                    said_bye = True
                    self._peer_ended(peer, int(code))
                elif relayed is not None and peer == 0:  # process 0 says which process went
                    self._fail(relayed)
        with self._changed:  # the process is gone (the kernel closed its connection)
            self._closed.add(peer)
            self._changed.notify_all()
        if not said_bye:
            self._fail(f"process {peer} ended without finishing the run (killed or crashed); {_RESUME}", lost=peer)

    def _peer_ended(self, peer: int, code: int) -> None:
        if code in _AGREED_ENDS:
            return
        meaning = EXIT_CODES.get(code, "no documented meaning").split(";")[0].split(" (")[0]
        reason = f"process {peer} stopped with exit {code} ({meaning}); its own error line says why"
        timer = threading.Timer(self.grace_s, self._fail, args=(reason,), kwargs={"lost": peer})
        timer.daemon = True
        timer.start()

    def _fail(self, message: str, lost: int | None = None) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            others = [conn for peer, conn in self._conns.items() if peer != lost]
        if self.index == 0:  # the others hear which process went, then process 0 waits for them to go
            for conn in others:
                try:
                    conn.sendall(f"lost {message}\n".encode())
                except OSError:
                    pass
            self._wait_for_peers(_CLOSE_WAIT_S, besides=lost)
        try:
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 -- exiting anyway
            pass
        os.write(2, f"error: {self.prefix}lost the multi-process job: {message}\n".encode())
        self._exit(EXIT_PEER_LOST)

    def _wait_for_peers(self, timeout_s: float, besides: int | None = None) -> bool:
        """Wait until every peer's connection (``besides`` that one's) has closed, at most
        ``timeout_s``. Process 0 holds JAX's coordination service: while it lives, the others can
        still end on their own terms; when it goes, JAX aborts them (status 134)."""
        with self._changed:
            return self._changed.wait_for(lambda: set(self._conns) - {besides} <= self._closed, timeout=timeout_s)

    def release(self, code: int = EXIT_OK) -> None:
        """This process is ending with ``code``: say so to its peers (see the module's protocol)
        and stop watching them."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            conns = list(self._conns.values())
        for conn in conns:
            try:
                conn.sendall(f"bye {code}\n".encode())
            except OSError:
                pass
        if self.index == 0 and code not in _AGREED_ENDS:
            # An error the others may reach too: stay up (holding JAX's coordination service)
            # while they reach it or their grace runs out, so each ends with its own line and code.
            self._wait_for_peers(self.grace_s + _CLOSE_WAIT_S)


def _listen(backlog: int) -> socket.socket:
    """A listening socket on a free port of every interface, IPv6 and IPv4 where the host has both."""
    if socket.has_dualstack_ipv6():
        return socket.create_server(("", 0), family=socket.AF_INET6, dualstack_ipv6=True, backlog=backlog)
    return socket.create_server(("", 0), backlog=backlog)


def _read_hello(conn: socket.socket, timeout_s: float, count: int) -> int | None:
    """The index ``j`` of a ``hello j`` line (``0 < j < count``), or ``None`` for anything else."""
    conn.settimeout(timeout_s)
    data = b""
    try:
        while not data.endswith(b"\n") and len(data) < 32:  # a byte at a time: what follows is the reader's
            chunk = conn.recv(1)
            if not chunk:
                return None
            data += chunk
    except OSError:
        return None
    message = _MESSAGE.fullmatch(data[:-1].decode("ascii", errors="replace"))
    if message is None or message.group(1) != "hello" or not 0 < int(message.group(2)) < count:
        return None
    return int(message.group(2))


_peer_watch: PeerWatch | None = None


def watch_peers() -> None:
    """Start this process's :class:`PeerWatch` (once; nothing outside a multi-process job)."""
    global _peer_watch
    if _peer_watch is None:
        _peer_watch = PeerWatch.start()


def release_peers(code: int = EXIT_OK) -> None:
    """Tell the peers this process ends with ``code`` (see :meth:`PeerWatch.release`)."""
    if _peer_watch is not None:
        _peer_watch.release(code)
