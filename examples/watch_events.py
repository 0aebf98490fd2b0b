"""Print what an affectlite device publishes: its state changes and events (Ctrl-C to stop).

    python examples/watch_events.py [HOST] [PORT]
"""

import json
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"
port = int(sys.argv[2]) if len(sys.argv) > 2 else 1883


def on_message(client, userdata, message):
    if message.topic.endswith("/availability"):
        print(message.topic, message.payload.decode(), flush=True)
        return
    payload = json.loads(message.payload)
    if message.topic.endswith("/events"):
        print(f"event {payload['type']:<14} track {payload['track_id']}", {k: v for k, v in payload.items()
              if k in ("state", "previous", "alert", "held_s", "share")}, flush=True)
    elif message.topic.endswith("/state"):
        print(f"state: {payload['people']} in view, mostly {payload['dominant_emotion']}, valence {payload['valence']}",
              flush=True)


client = mqtt.Client(CallbackAPIVersion.VERSION2)
client.on_message = on_message
client.on_connect = lambda c, u, f, rc, p: c.subscribe([("affectlite/+/events", 1), ("affectlite/+/state", 1),
                                                         ("affectlite/+/availability", 1)])
client.connect(host, port)
try:
    client.loop_forever()
except KeyboardInterrupt:
    client.disconnect()
