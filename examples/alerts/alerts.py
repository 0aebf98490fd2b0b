"""Turn an affectlite device's events into notifications: printed, and posted to a webhook.

    python examples/alerts/alerts.py [--host H] [--port P] [--user U --password W]
                                     [--webhook http://127.0.0.1:8123/api/webhook/affectlite] [--all]

It keeps a persistent MQTT session (fixed client id, QoS 1), so events published while this
subscriber was offline are delivered when it reconnects, and it reconnects by itself (1-30 s
backoff). By default only alerts and availability changes notify; --all also notifies faces
appearing, leaving and changing state. A webhook that fails is retried three times, then the
notification is printed as undelivered.
"""

import argparse
import json
import time
import urllib.error
import urllib.request

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def describe(device: str, event: dict) -> str:
    """One line a person reads on a phone."""
    if event["type"] == "alert":
        top = max(event["evidence"], key=event["evidence"].get)
        detail = (f"held {event['held_s']:.0f} s by person {event['track_id']}" if event["alert"] == "negative_valence"
                  else f"{event['share']:.0%} of {event['people']} people")
        return f"{device}: ALERT {event['alert'].replace('_', ' ')} ({detail}; mostly {top} {event['evidence'][top]:.0%})"
    if event["type"] == "state_changed":
        return f"{device}: person {event['track_id']} {event['previous']} -> {event['state']} ({event['valence']})"
    if event["type"] == "face_appeared":
        return f"{device}: person {event['track_id']} appeared"
    return f"{device}: person {event['track_id']} left after {event['in_view_s']:.0f} s ({event['last_state']})"


def post(url: str, body: dict, attempts: int = 3) -> bool:
    data = json.dumps(body).encode()
    for attempt in range(attempts):
        try:
            request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=5) as response:
                return 200 <= response.status < 300
        except (urllib.error.URLError, OSError):
            time.sleep(0.5 * 2 ** attempt)
    return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--prefix", default="affectlite")
    parser.add_argument("--webhook", help="POST each notification here as JSON {text, device, event}")
    parser.add_argument("--all", action="store_true", help="notify every event, not only alerts")
    parser.add_argument("--client-id", default="affectlite-alerts")
    args = parser.parse_args()

    def notify(device: str, text: str, event: dict | None) -> None:
        print(text, flush=True)
        if args.webhook and not post(args.webhook, {"text": text, "device": device, "event": event}):
            print(f"undelivered to {args.webhook}: {text}", flush=True)

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            print(f"broker refused the connection: {reason_code}", flush=True)
            return
        client.subscribe([(f"{args.prefix}/+/events", 1), (f"{args.prefix}/+/availability", 1)])

    def on_subscribe(client, userdata, mid, reason_codes, properties):
        if any(code.is_failure for code in reason_codes):
            print(f"subscription refused: {[str(code) for code in reason_codes]}", flush=True)
            return
        print(f"listening on {args.host}:{args.port} ({args.prefix}/+/events)", flush=True)

    def on_message(client, userdata, message):
        device = message.topic.split("/")[1]
        if message.topic.endswith("/availability"):
            notify(device, f"{device}: {message.payload.decode()}", None)
            return
        try:
            event = json.loads(message.payload)
            text = describe(device, event)
        except (ValueError, KeyError, TypeError):
            print(f"ignored a malformed event on {message.topic}", flush=True)
            return
        if args.all or event["type"] == "alert":
            notify(device, text, event)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id, clean_session=False)
    if args.user:
        client.username_pw_set(args.user, args.password)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    client.on_disconnect = lambda c, u, f, rc, p: print(f"disconnected ({rc}); reconnecting", flush=True)
    client.reconnect_delay_set(1, 30)
    client.connect_async(args.host, args.port)
    try:
        client.loop_forever(retry_first_connection=True)
    except KeyboardInterrupt:
        client.disconnect()


if __name__ == "__main__":
    main()
