"""Creating the shipped broker's users with names that cannot collide.

The shipped Mosquitto configuration replaces every client's id with its user name
(``use_username_as_clientid``), so that no login can take over another's session. That holds
only while no two users share a name across the password files: a kiosk screen named ``lobby``
beside the device ``lobby`` threw the device out on every connect. The convention that prevents
it: a device is named after its ``mqtt.device_id`` (letters, digits, ``_`` and ``-``), a kiosk
screen has a dot in its name (``kiosk.lobby``), and no name is used twice in either file.
``affectlite broker-user`` enforces it and calls ``mosquitto_passwd``.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from pathlib import Path

ROLES = {
    # role: (password file, name rule, what the rule is in words)
    "device": ("affectlite.passwd", re.compile(r"[A-Za-z0-9_-]{1,64}"),
               "a device's mqtt.device_id: letters, digits, '_' and '-', no dot"),
    "kiosk": ("kiosk.passwd", re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+"),
              "a kiosk screen's name has a dot in it, e.g. kiosk.lobby"),
    "automation": ("affectlite.passwd", re.compile(r"[A-Za-z0-9_-]{1,64}"),
                   "letters, digits, '_' and '-' (homeassistant, nodered, ...), no dot"),
}


def existing_users(folder: Path) -> dict[str, str]:
    """User name -> the password file it is in, over the files the shipped configuration reads."""
    found = {}
    for name in sorted({file for file, _, _ in ROLES.values()}):
        path = folder / name
        if path.exists():
            for line in path.read_text().splitlines():
                user = line.split(":", 1)[0].strip()
                if user and not user.startswith("#"):
                    found[user] = name
    return found


def add_user(folder: Path, role: str, name: str, password: str | None = None) -> str:
    """Add ``name`` in ``role``'s password file in ``folder``; returns the password (generated when
    none is given). Refuses a name that breaks the convention or is taken, with the reason."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    file, rule, words = ROLES[role]
    if not rule.fullmatch(name):
        raise ValueError(f"{name!r} cannot be a {role} user: {words}")
    taken = existing_users(folder)
    if name in taken:
        raise ValueError(f"{name!r} is already a user in {taken[name]}: two users of one name throw each other out "
                         "of the broker (client id = user name); choose another name")
    tool = shutil.which("mosquitto_passwd")
    if tool is None:
        raise RuntimeError("mosquitto_passwd not found: install Mosquitto (apt-get install mosquitto)")
    password = password or secrets.token_urlsafe(18)
    path = folder / file
    command = [tool, "-b", *([] if path.exists() else ["-c"]), str(path), name, password]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"mosquitto_passwd failed: {(result.stderr or result.stdout).strip()}")
    return password
