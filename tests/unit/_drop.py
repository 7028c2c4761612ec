"""A loopback TCP proxy in front of the test S3 server that can drop connections mid-transfer.

Point `AWS_ENDPOINT_URL` at `proxy.endpoint`; while `proxy.armed`, any connection that has
carried more than `proxy.limit` bytes from the server is closed on both sides at that point:
a real connection dropped in the middle of a download (s3fs, botocore and aiohttp see the
socket close, as they would on a network failure), not a patched client.
"""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlparse


class DropProxy:
    """Forwards 127.0.0.1:<port> to `target` (`http://host:port`); `armed` cuts transfers."""

    def __init__(self, target: str, limit: int = 64 * 1024) -> None:
        url = urlparse(target)
        self.target = (url.hostname, url.port)
        self.limit = limit
        self.armed = False
        self.dropped = 0  # connections cut so far
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.endpoint = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        sent = 0
        try:
            while chunk := src.recv(16384):
                if downstream and self.armed and sent + len(chunk) > self.limit:
                    dst.sendall(chunk[: max(0, self.limit - sent)])
                    self.dropped += 1
                    break
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._sock.close()
