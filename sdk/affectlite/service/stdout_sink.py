"""Where results go with MQTT disabled: events and stats as JSON lines on stdout."""

from __future__ import annotations

import json
import sys


class StdoutSink:
    def __init__(self, stream=None):
        self.stream = stream or sys.stdout
        self.connected = True
        self._state = None

    def start(self) -> None:
        pass

    def publish_event(self, payload):
        self.stream.write(json.dumps({"topic": "events", **payload}) + "\n")
        self.stream.flush()

    def publish_audience(self, payload):
        self.stream.write(json.dumps({"topic": "audience", **payload}) + "\n")
        self.stream.flush()

    def publish_state(self, payload):
        if payload.get("persons") != (self._state or {}).get("persons"):
            self._state = payload

    def publish_faces(self, payload, now=None):
        return False

    def publish_stats(self, payload):
        self.stream.write(json.dumps({"topic": "stats", **payload}) + "\n")
        self.stream.flush()

    def pump(self):
        pass

    @property
    def pending(self):
        return 0

    def warnings(self) -> list[str]:
        return []

    def close(self):
        pass
