"""Two changes to how waitress moves bytes, so many clients at once are not slowed down by it.

waitress reads requests on one thread (its main loop) and runs the app on worker threads; a
worker sends its own answer as it writes it (`send_bytes` is 1). Measured with 8 clients
posting batches to `serve` (perf stat over loopback), two things cost the most:

1. **The main loop spun** while a worker was sending. During the send the worker holds the
   channel's `outbuf_lock` with bytes in the buffer, so `HTTPChannel.writable()` said yes,
   `select` returned at once (a socket is nearly always writable), `handle_write` could not
   take the lock, and round it went: about 10 `select` calls and 40 futex calls (GIL
   hand-overs) per request, against 1 and 18 without the spin. `LoopbackChannel.writable`
   says no while a worker is sending; the worker wakes the loop after the send if it had to
   leave bytes behind (a full socket), so nothing waits.
2. **Two sends per answer**: the head, then the body. `OneSendTask` sends a fixed-length
   answer's head and body with one `send` (one packet, one wake-up of the client).

Same bytes on the wire (tests/test_channel.py compares them with plain waitress's, byte for
byte, for fixed-length, streamed, chunked, HEAD, 204 and 304 answers).
"""

from __future__ import annotations

from typing import Any

from waitress.channel import HTTPChannel
from waitress.task import WSGITask


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


def install(server: Any) -> None:
    """Use these for every connection `server` (from waitress's `create_server`) accepts."""
    server.channel_class = LoopbackChannel
