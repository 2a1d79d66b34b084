"""Locust side of scripts/side-by-side: a WebSocket chat user for the Node
`ws` peer (reference protocol v1, docs/protocol.md).

Each user connects to $SBS_URL?user=lN, joins one of $SBS_ROOMS rooms, then
sends a 64-byte chat every $SBS_INTERVAL seconds (constant_throughput, so a
late send does not push the next one back) while a greenlet reads and
parses every frame it receives. Deliveries are reported to Locust as
request events of type "WS" named "delivery", with the latency from the
`ts` the sender put in (wall clock, same host); sends as "chat". That is
what Locust can report for such a user: per-event latency as seen by the
user's code, measured from the actual send (not the intended one), and no
loss accounting unless the user code does it.
"""
import itertools
import json
import os
import time

import gevent
import websocket
from locust import User, constant_throughput, events, task

URL = os.environ.get("SBS_URL", "ws://127.0.0.1:8080/ws")
ROOMS = int(os.environ.get("SBS_ROOMS", "20"))
INTERVAL = float(os.environ.get("SBS_INTERVAL", "5"))
TEXT = "x" * 64
_ids = itertools.count()


class ChatUser(User):
    wait_time = constant_throughput(1.0 / INTERVAL)

    def on_start(self):
        self.n = next(_ids)
        self.room = f"r{self.n % ROOMS}"
        self.ws = websocket.create_connection(f"{URL}?user=l{self.n}")
        self.ws.send(json.dumps({"type": "join", "room": self.room}))
        self.sent = 0
        self.reader = gevent.spawn(self.read)

    def read(self):
        fire = events.request.fire
        while True:
            try:
                raw = self.ws.recv()
            except Exception:
                return
            msg = json.loads(raw)
            if msg.get("type") == "chat":
                lat_ms = time.time() * 1000 - msg.get("ts", 0)
                fire(request_type="WS", name="delivery", response_time=lat_ms,
                     response_length=len(raw), exception=None, context={})

    @task
    def chat(self):
        self.sent += 1
        frame = json.dumps({"type": "chat", "room": self.room, "id": f"{self.n}.{self.sent}",
                            "text": TEXT, "ts": int(time.time() * 1000)})
        t0 = time.perf_counter()
        self.ws.send(frame)
        events.request.fire(request_type="WS", name="chat",
                            response_time=(time.perf_counter() - t0) * 1000,
                            response_length=len(frame), exception=None, context={})

    def on_stop(self):
        try:
            self.ws.close()
        except Exception:
            pass
