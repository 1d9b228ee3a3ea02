"""Three changes to how waitress serves us, so many clients at once are not slowed down by it.

waitress reads requests on one thread (its main loop) and runs the app on worker threads; a
worker sends its own answer as it writes it (`send_bytes` is 1). Measured with 8 clients
posting batches to `serve` (perf stat over loopback), three things cost the most:

1. **The main loop spun** while a worker was sending. During the send the worker holds the
   channel's `outbuf_lock` with bytes in the buffer, so `HTTPChannel.writable()` said yes,
   `select` returned at once (a socket is nearly always writable), `handle_write` could not
   take the lock, and round it went: about 10 `select` calls and 40 futex calls (GIL
   hand-overs) per request, against 1 and 18 without the spin. `LoopbackChannel.writable`
   says no while a worker is sending; the worker wakes the loop after the send if it had to
   leave bytes behind (a full socket), so nothing waits.
2. **Two sends per answer**: the head, then the body. `OneSendTask` sends a fixed-length
   answer's head and body with one `send` (one packet, one wake-up of the client).
3. **A hop to a worker and back per request**, and the workers, the loop and the checkpoint
   signer fighting for the GIL: still 40 futex calls and 23 context switches per ingest
   request after 1 and 2. `LoopIngest` answers a small `POST /api/v1/events` on the loop's
   own thread, after each turn of the loop, all the requests that turn read together: each
   batch staged in the ledger, then one write, one fsync and one signed checkpoint for them
   all (group commit), then each answer sent: 0.8 futex calls and 1.2 context switches per
   request. Anything else, and a batch over 256 KiB (the command line's hand-over may send
   one; the loop must not stall on it), goes to a worker as ever.

Same bytes on the wire (tests/test_channel.py compares them with plain waitress's, byte for
byte, for fixed-length, streamed, chunked, HEAD, 204 and 304 answers; tests/
test_ingest_fast_path.py the answers of the loop's way and of Flask's).
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import WSGITask

from server.ingest import ANSWERED, EVENTS_PATH, FastIngest

LOOP_MAX_BODY = 256 * 1024      # bigger batches are staged on a worker, not the loop
log = logging.getLogger("consent_ledger.channel")


class OneSendTask(WSGITask):
    """A WSGI task that writes an answer's head together with the first chunk of its body
    when that chunk fits the Content-Length (always, for the API's answers)."""

    def write(self, data: bytes) -> None:
        if self.wrote_header or not data or not self.complete:
            super().write(data)
            return
        head = self.build_response_header()
        self.wrote_header = True
        length = self.content_length
        if (self.has_body and not self.chunked_response and length is not None
                and len(data) <= length - self.content_bytes_written):
            self.content_bytes_written += len(data)
            self.channel.write_soon(head + data)
            return
        self.channel.write_soon(head)
        super().write(data)    # the head is written: the base class does the body as ever

    def get_environment(self) -> dict[str, Any]:
        if self.environ is None:   # the one LoopIngest built for this request, if it did
            self.environ = getattr(self.request, "consent_environ", None)
        return super().get_environment()  # type: ignore[no-any-return]


class LoopbackChannel(HTTPChannel):
    """An HTTP channel whose main loop does not spin while a worker sends (see above)."""

    task_class = OneSendTask

    def writable(self) -> Any:
        if self.will_close or self.close_when_flushed:
            return True
        if not self.total_outbufs_len:
            return False
        if not self.requests or self.total_outbufs_len > self.adj.outbuf_high_watermark:
            return True   # no task (the loop sends), or a task waiting for the loop to drain
        # A task is running and sends its own output; while it holds the lock it is sending.
        if not self.outbuf_lock.acquire(False):
            return False
        self.outbuf_lock.release()
        return True

    def write_soon(self, data: Any) -> int:
        sent = super().write_soon(data)
        # The worker could not send it all (the socket is full): the loop sends the rest.
        # Woken here, after the lock is let go, `writable` above sees it free.
        if self.total_outbufs_len and self.connected:
            self.server.pull_trigger()
        return sent


class LoopIngest:
    """Small `POST /api/v1/events` requests answered on waitress's loop thread, in groups
    (see above). `run` goes after every turn of the loop."""

    def __init__(self, server: Any, fast: FastIngest, *, max_body: int = LOOP_MAX_BODY
                 ) -> None:
        self.fast = fast
        self.max_body = max_body
        # A deque: a worker finishing some other request on the same connection hands a
        # pipelined ingest request here too (its `service` then wakes the loop).
        self.waiting: deque[HTTPChannel] = deque()
        self._to_worker = server.add_task
        server.add_task = self.add_task

    def add_task(self, channel: HTTPChannel) -> None:
        """waitress hands over a channel whose first request is complete: ingest waits here
        for the end of this turn of the loop, anything else goes to a worker."""
        request = channel.requests[0]
        if (request.command == "POST" and request.path == EVENTS_PATH and not request.error
                and max(request.content_length, request.body_bytes_received) <= self.max_body
                and isinstance(channel, LoopbackChannel)):
            self.waiting.append(channel)
        else:
            self._to_worker(channel)

    def run(self) -> None:
        """Stage the batch of every request read in this turn, commit them together (one
        write, one fsync, one signature), and answer each (its answer waits in its environ
        for the WSGI call that sends it, the usual way, on this thread)."""
        waiting = self.waiting
        channels = [waiting.popleft() for _ in range(len(waiting))]
        begun = []
        for channel in channels:
            request = channel.requests[0]
            try:
                environ = channel.task_class(channel, request).get_environment()
            except Exception:   # nothing staged yet: a worker tries it the usual way
                log.exception("could not read an ingest request on the loop")
                self._to_worker(channel)
                continue
            if not FastIngest.handles(environ):   # `//api`, a query...: Flask's way, on a worker
                self._to_worker(channel)
                continue
            request.consent_environ = environ
            begun.append((channel, environ, self.fast.begin(environ)))
        for channel, environ, outcome in begun:
            environ[ANSWERED] = (outcome if isinstance(outcome, tuple)
                                 else self.fast.finish(outcome))
            try:
                channel.service()
            except Exception:   # as a worker would: say so, and keep the loop going
                log.exception("exception when servicing an ingest request")


def install(server: Any, app: Any = None) -> LoopIngest | None:
    """Use these for every connection `server` (from waitress's `create_server`) accepts;
    with the app whose ingest layer (server/ingest.py) the loop should run, the
    `LoopIngest` whose `run` goes after every turn of the loop."""
    server.channel_class = LoopbackChannel
    fast = getattr(app, "wsgi_app", None)
    return LoopIngest(server, fast) if isinstance(fast, FastIngest) else None
