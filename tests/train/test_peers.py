"""The peer watch's protocol, with three watches in one test process over real TCP sockets on
the loopback (process 0 serving, 1 and 2 joining). What a real multi-process job does with it
(kill -9 of a process) is tested end to end in tests/train/test_multihost.py."""

import contextlib
import queue
import socket
import threading
import time

import pytest

from mlwork.train import errors, peers


class Job:
    """Watches 0..n-1 connected to each other; ``ended`` collects (index, exit code)."""

    def __init__(self, n=3, grace_s=5.0, strangers=()):
        self.ended = queue.Queue()
        self.watches = [peers.PeerWatch(i, n, prefix=f"[process {i}/{n}] " if i else "", grace_s=grace_s,
                                        exit=lambda code, i=i: self.exit(i, code)) for i in range(n)]
        server = peers._listen(n)
        port = server.getsockname()[1]
        serving = threading.Thread(target=self.watches[0].serve, args=(server, 10.0))
        serving.start()
        for payload in strangers:  # not processes of the job: closed and not counted
            with socket.create_connection(("127.0.0.1", port)) as s:
                if payload:
                    s.sendall(payload)
                    with contextlib.suppress(ConnectionResetError):  # closed with bytes unread: a reset
                        s.recv(1)  # returns when process 0 has closed it
        for watch in self.watches[1:]:
            watch.join("127.0.0.1", port, 10.0)
        serving.join(10.0)
        assert sorted(self.watches[0]._conns) == list(range(1, n))

    def kill(self, i):
        """As the kernel does for a killed process: its connections close, nothing is said."""
        self.watches[i]._ended = True  # a dead process does nothing more
        for conn in self.watches[i]._conns.values():
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def exit(self, i, code):
        """The watch ends its process: recorded, and its connections close as the kernel's would."""
        self.ended.put((i, code))
        self.kill(i)

    def endings(self, count, timeout=5.0):
        got = [self.ended.get(timeout=timeout) for _ in range(count)]
        return sorted(got)

    def assert_no_ending(self, wait=0.5):
        time.sleep(wait)
        assert self.ended.empty(), list(self.ended.queue)

    def close(self):
        for watch in self.watches:
            watch._ended = True
            for conn in watch._conns.values():
                conn.close()


@pytest.fixture
def job_of():
    jobs = []

    def make(*args, **kwargs):
        jobs.append(Job(*args, **kwargs))
        return jobs[-1]

    yield make
    for job in jobs:
        job.close()


def _lines(capfd):
    return [line for line in capfd.readouterr().err.splitlines() if line]


def test_a_killed_process_stops_the_others_with_one_line_naming_it(job_of, capfd):
    job = job_of(3)
    job.kill(2)
    assert job.endings(2) == [(0, errors.EXIT_PEER_LOST), (1, errors.EXIT_PEER_LOST)]
    lines = _lines(capfd)
    assert len(lines) == 2, lines
    # process 0 sees the connection close; process 1 hears from process 0 which process went
    assert "error: lost the multi-process job: process 2 ended without finishing the run (killed or crashed)" \
           in lines[0] + lines[1]
    assert "error: [process 1/3] lost the multi-process job: process 2 ended without finishing" in lines[0] + lines[1]
    assert all(line.rstrip().endswith("rerun every process with --resume") for line in lines)


def test_process_0_killed_stops_the_others(job_of, capfd):
    job = job_of(3)
    job.kill(0)
    assert job.endings(2) == [(1, errors.EXIT_PEER_LOST), (2, errors.EXIT_PEER_LOST)]
    assert all("process 0 ended without finishing" in line for line in _lines(capfd))


@pytest.mark.parametrize("code", [errors.EXIT_OK, errors.EXIT_PREEMPTED, errors.EXIT_INTERRUPTED])
def test_agreed_ends_are_not_failures(job_of, code, capfd):
    job = job_of(3)
    job.watches[1].release(code)
    job.watches[2].release(code)
    job.kill(1)  # its exit after the goodbye
    job.kill(2)
    job.assert_no_ending()
    job.watches[0].release(code)
    assert _lines(capfd) == []


def test_an_error_every_process_reaches_ends_each_with_its_own_code(job_of, capfd):
    # a non-finite loss is seen by every process at once: the first goodbye (exit 3) must not
    # turn the others' own exit 3 into 69
    job = job_of(3, grace_s=2.0)
    for i in (1, 2):
        job.watches[i].release(errors.EXIT_NONFINITE)
        job.kill(i)  # its own exit, with its own code
        time.sleep(0.1)
    job.watches[0].release(errors.EXIT_NONFINITE)
    job.assert_no_ending(2.5)
    assert _lines(capfd) == []


def _release_in_thread(watch, code):
    thread = threading.Thread(target=watch.release, args=(code,))
    thread.start()
    return thread


def test_process_0_failing_first_stays_up_until_the_others_have_gone(job_of, capfd):
    # process 0 holds JAX's coordination service: if it went at once, JAX would abort the others
    # (status 134, a C++ trace) before they reach the same error and say so themselves
    job = job_of(3, grace_s=2.0)
    releasing = _release_in_thread(job.watches[0], errors.EXIT_CHECKPOINT)
    time.sleep(0.5)
    assert releasing.is_alive()  # waiting for them
    for i in (1, 2):
        job.watches[i].release(errors.EXIT_CHECKPOINT)
        job.kill(i)
    releasing.join(2.0)
    assert not releasing.is_alive()
    job.assert_no_ending(0.1)
    assert _lines(capfd) == []


def test_process_0_failing_alone_ends_the_others_after_the_grace_then_goes(job_of, capfd):
    job = job_of(3, grace_s=0.3)
    t0 = time.monotonic()
    releasing = _release_in_thread(job.watches[0], errors.EXIT_BAD_INPUT)
    assert job.endings(2) == [(1, errors.EXIT_PEER_LOST), (2, errors.EXIT_PEER_LOST)]
    releasing.join(2.0)
    assert not releasing.is_alive() and time.monotonic() - t0 < 3.0
    lines = _lines(capfd)
    assert len(lines) == 2 and all("process 0 stopped with exit 2 (bad input" in line for line in lines), lines


def test_an_error_only_one_process_reaches_stops_the_others_after_the_grace(job_of, capfd):
    job = job_of(3, grace_s=0.3)
    t0 = time.monotonic()
    job.watches[2].release(errors.EXIT_BAD_INPUT)  # say, its data folder is missing
    job.kill(2)
    assert job.endings(2) == [(0, errors.EXIT_PEER_LOST), (1, errors.EXIT_PEER_LOST)]
    assert 0.3 <= time.monotonic() - t0 < 5.0
    lines = _lines(capfd)
    assert len(lines) == 2 and all("process 2 stopped with exit 2 (bad input" in line for line in lines), lines


def test_strangers_are_not_counted_as_processes(job_of, capfd):
    # a port scan, garbage, a process index out of range or in other digits: closed, and the job forms
    job = job_of(3, strangers=[b"GET / HTTP/1.0\r\n\r\n", b"hello 7\n", b"hello 0\n", b"",
                               "hello \u00b2\n".encode(), "hello \u0661\n".encode()])
    job.kill(1)
    assert job.endings(2) == [(0, errors.EXIT_PEER_LOST), (2, errors.EXIT_PEER_LOST)]


def test_a_goodbye_sent_with_the_hello_is_heard(capfd):
    # a process that fails right after joining (say, a missing --workdir) sends hello and bye
    # back to back: the bye must not be lost with the hello's read (it would read as a crash)
    ended = queue.Queue()
    zero = peers.PeerWatch(0, 2, grace_s=0.3, exit=ended.put)
    server = peers._listen(2)
    with socket.create_connection(("127.0.0.1", server.getsockname()[1])) as s:
        s.sendall(b"hello 1\nbye 2\n")
        zero.serve(server, 5.0)
        assert ended.get(timeout=2.0) == errors.EXIT_PEER_LOST
    assert "process 1 stopped with exit 2 (bad input" in capfd.readouterr().err


def test_malformed_messages_from_a_peer_are_ignored(job_of, capfd):
    job = job_of(2)
    job.watches[1]._conns[0].sendall("bye \u00b2\nnonsense\n".encode())
    job.assert_no_ending(0.3)
    job.kill(1)  # the reader thread is alive: the end is still seen
    assert job.endings(1) == [(0, errors.EXIT_PEER_LOST)]


def test_a_process_that_never_connects_is_named():
    watch = peers.PeerWatch(0, 3, exit=lambda code: None)
    server = peers._listen(3)
    port = server.getsockname()[1]
    other = peers.PeerWatch(1, 3, exit=lambda code: None)
    threading.Timer(0.1, other.join, args=("127.0.0.1", port, 5.0)).start()
    with pytest.raises(TimeoutError, match=r"process\(es\) \[2\] did not connect"):
        watch.serve(server, timeout_s=1.0)
    for w in (watch, other):
        for conn in w._conns.values():
            conn.close()


@pytest.mark.skipif(not socket.has_dualstack_ipv6(), reason="no IPv6 on this host")
def test_process_0_listens_on_ipv6_and_ipv4():
    server = peers._listen(2)
    port = server.getsockname()[1]
    with server:
        for host in ("127.0.0.1", "::1"):
            with socket.create_connection((host, port), timeout=5.0):
                conn, _ = server.accept()
                conn.close()
