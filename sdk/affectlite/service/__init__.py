"""The live service, ``affectlite run``: camera -> faces -> per-person states -> events -> MQTT.

:mod:`.service` holds the loop (the frame's path on one screen); each module beside it does one
job the loop calls on: pacing and periodic clocks, the systemd watchdog, listening to the
microphone, fusing face and voice, the text stream, commands and settings, stats, and the sink
used when MQTT is off.
"""

from affectlite.service.service import Service
from affectlite.service.stats import Counters, cpu_temperature
from affectlite.service.stdout_sink import StdoutSink

__all__ = ["Counters", "Service", "StdoutSink", "cpu_temperature"]
