#!/usr/bin/env python3
"""Publish to instant from Python with nothing but the standard library.

In production use nats-py, the NATS client for asyncio
(``pip install nats-py``): it reconnects, handles TLS and authentication
(this file does neither) and speaks JetStream. This file talks the NATS
text protocol over a plain socket instead, so that it runs anywhere
Python 3 does, and shows how little a producer needs:

1. one envelope fire-and-forget: published with a reply inbox on
   instant.publish.<channel>, which the JetStream stream INSTANT captures
   and acknowledges once stored; the bridge relays it later. Its
   Nats-Msg-Id header (HPUB) becomes the publication id.
2. one envelope on instant.request.<channel>: the bridge answers once
   Centrifugo accepted or refused it.

Usage: publish.py [CHANNEL [MESSAGE]]. NATS_URL names the server (default
nats://127.0.0.1:4222). The exit status is 1, with one line on stderr,
when NATS is unreachable or the bridge refuses the envelope.
"""

import json
import os
import socket
import sys
import time
import uuid
from urllib.parse import urlsplit

TIMEOUT = 10  # seconds for connecting and for every answer


class NatsError(Exception):
    """A failure talking to NATS or a refusal by the bridge."""


class Connection:
    """A minimal NATS client: publish, flush and request, one at a time."""

    def __init__(self, url):
        parts = urlsplit(url if "://" in url else "nats://" + url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 4222
        try:
            self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        except OSError as err:
            raise NatsError(f"cannot connect to NATS at {url}: {err}") from None
        self.file = self.sock.makefile("rb")
        self.sid = 0
        if not self._line().startswith(b"INFO "):
            raise NatsError(f"{url} is not a NATS server")
        options = {"verbose": False, "pedantic": False, "headers": True,
                   "no_responders": True, "name": "instant example (python)"}
        self._send(b"CONNECT " + json.dumps(options).encode() + b"\r\n")
        self.flush()

    def close(self):
        self.file.close()
        self.sock.close()

    def publish(self, subject, body, reply="", headers=None):
        """Sends body on subject (PUB, or HPUB when there are headers)."""
        reply = f" {reply}" if reply else ""
        if not headers:
            self._send(f"PUB {subject}{reply} {len(body)}\r\n".encode() + body + b"\r\n")
            return
        head = "NATS/1.0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
        head = head.encode()
        size = len(head) + len(body)
        self._send(f"HPUB {subject}{reply} {len(head)} {size}\r\n".encode() + head + body + b"\r\n")

    def flush(self):
        """Returns once the server has processed everything sent so far."""
        self._send(b"PING\r\n")
        while self._next() is not None:
            pass

    def request(self, subject, body, headers=None):
        """Publishes body with a fresh reply inbox and returns the answer."""
        self.sid += 1
        inbox = "_INBOX." + uuid.uuid4().hex
        self._send(f"SUB {inbox} {self.sid}\r\nUNSUB {self.sid} 1\r\n".encode())
        self.publish(subject, body, inbox, headers)
        while True:
            msg = self._next()
            if msg is None:
                continue
            status, answer = msg
            if status.startswith(b"NATS/1.0 503"):
                raise NatsError(f"nobody answers on {subject}: is `instant bridge` running?")
            return answer

    def _send(self, data):
        self.sock.sendall(data)

    def _line(self):
        try:
            line = self.file.readline()
        except TimeoutError:
            raise NatsError(f"NATS sent nothing within {TIMEOUT} s") from None
        if not line:
            raise NatsError("NATS closed the connection")
        return line.rstrip(b"\r\n")

    def _next(self):
        """Reads one server operation: (status, payload) of a MSG or HMSG,
        None for PONG; answers PING, skips INFO and +OK, raises on -ERR."""
        while True:
            line = self._line()
            op, _, args = line.partition(b" ")
            if op == b"PONG":
                return None
            if op == b"PING":
                self._send(b"PONG\r\n")
            elif op == b"-ERR":
                raise NatsError(f"NATS refused: {args.decode()}")
            elif op in (b"MSG", b"HMSG"):
                return self._payload(op, args.split())

    def _payload(self, op, args):
        size = int(args[-1])
        data = self.file.read(size + 2)[:size]
        if op == b"MSG":
            return b"", data
        head, body = data[:int(args[-2])], data[int(args[-2]):]
        return head.split(b"\r\n", 1)[0], body


def main():
    channel = sys.argv[1] if len(sys.argv) > 1 else "public"
    message = sys.argv[2] if len(sys.argv) > 2 else "Hello from Python"
    nc = Connection(os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    try:
        # 1. Fire-and-forget, acknowledged by JetStream once stored.
        msg_id = f"{channel}-{time.time_ns()}"
        envelope = {"message": message, "data": {"from": "python"},
                    "event_class": "info", "bucket": "examples"}
        ack = json.loads(nc.request(f"instant.publish.{channel}", json.dumps(envelope).encode(),
                                    {"Nats-Msg-Id": msg_id}))
        if "error" in ack:
            raise NatsError(f"JetStream: {ack['error'].get('description', ack['error'])}")
        print(f"stored in {ack['stream']} as #{ack['seq']} (id {msg_id})")

        # 2. Request: the bridge's outcome.
        envelope = {"message": message, "event_class": "important"}
        reply = json.loads(nc.request(f"instant.request.{channel}", json.dumps(envelope).encode()))
        if not reply["ok"]:
            raise NatsError(f"refused: {reply['error']['code']}: {reply['error']['message']}")
        print(f"relayed to {reply['channel']} as {reply['id']} (offset {reply.get('offset', 0)})")
    finally:
        nc.close()


if __name__ == "__main__":
    try:
        main()
    except (NatsError, OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
