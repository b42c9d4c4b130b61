"""The agents' phones, from AMI: a pure tracker of each extension's presence (no I/O, no clock).

``PresenceTracker.feed(message)`` takes every AMI message in wire order and answers the extensions
whose state changed (extension → ``free`` | ``ringing`` | ``on_call`` | ``unavailable`` | ``dnd``).
What it reads:

| event                                   | what it says                                               |
|-----------------------------------------|------------------------------------------------------------|
| ``DeviceStateChange`` ``PJSIP/101``      | the phone's device state (also the ``DeviceStateList`` items)|
| ``DeviceStateChange`` ``Custom:DND101``  | FreePBX-style DND: BUSY/INUSE on, anything else off         |
| ``ExtensionStatus`` (``Exten: 101``)     | the hint's state (numeric ``Status`` bits; ``StatusText``   |
|                                         | with "dnd"): used while no device state is known            |
| ``ContactStatus`` / ``ContactList``      | the endpoint's registered contacts (none left: unavailable)  |
| ``PeerStatus`` (``Peer: PJSIP/101``)     | registered / reachable, or not                              |
| ``PresenceStateChange`` ``…:101``        | ``Status: dnd`` sets DND, any other status clears it        |

One extension's state: in a call (INUSE, BUSY, ONHOLD, RINGINUSE) → ``on_call``; RINGING →
``ringing``; else DND → ``dnd``; else no contact left / UNAVAILABLE / INVALID → ``unavailable``;
NOT_INUSE → ``free``; nothing known (UNKNOWN) → ``free`` when a contact is reachable, else
``unavailable``.

A (re)connect's listing: ``begin_listing()`` forgets everything (silently), the listed items and any
live event are fed as usual (no change is answered meanwhile), ``end_listing()`` answers the whole
picture. ``lost()``: the connection is gone, every phone is ``unavailable`` until the next listing.
"""

from __future__ import annotations

import re
from typing import Any

from hub.crm.ports import PresenceState

EVENTS = frozenset({"DeviceStateChange", "ExtensionStatus", "ContactStatus", "ContactList",
                    "PeerStatus", "PresenceStateChange", "PresenceStatus"})

_PHONE = re.compile(r"^(?:PJSIP|SIP|IAX2)/([^/&-]+)$", re.IGNORECASE)
_DND_DEVICE = re.compile(r"^Custom:DND/?(.+)$", re.IGNORECASE)
_PRESENTITY = re.compile(r"^[^:]+:(?:DND/?)?(.+)$")

# Asterisk device states (ast_devstate_str) → presence; None: unknown
DEVICE_STATES: dict[str, PresenceState | None] = {
    "NOT_INUSE": "free",
    "INUSE": "on_call",
    "BUSY": "on_call",
    "ONHOLD": "on_call",
    "RINGINUSE": "on_call",  # in a call and another one rings: the busiest wins
    "RINGING": "ringing",
    "UNAVAILABLE": "unavailable",
    "INVALID": "unavailable",
    "UNKNOWN": None,
}
_CONTACT_UP = frozenset({"created", "reachable", "updated", "nonqualified", "unknown", "avail"})
_CONTACT_DOWN = frozenset({"removed", "unreachable", "unavail"})
_PEER_UP = frozenset({"registered", "reachable", "lagged"})
_PEER_DOWN = frozenset({"unregistered", "unreachable", "rejected"})


def hint_state(status: str | None, text: str | None) -> PresenceState | None:
    """An ``ExtensionStatus``'s state: ``Status`` is AST_EXTENSION_* bits (1 in use, 2 busy, 4
    unavailable, 8 ringing, 16 on hold; -1/-2 removed)."""
    if text and "dnd" in text.lower():
        return "dnd"
    try:
        bits = int(str(status).strip())
    except ValueError:
        return None
    if bits < 0:
        return "unavailable"
    if bits & (1 | 2 | 16):
        return "on_call"
    if bits & 8:
        return "ringing"
    if bits & 4:
        return "unavailable"
    return "free"


def phone_extension(device: str) -> str | None:
    """``PJSIP/101`` → ``101`` (a device, never a channel such as ``PJSIP/101-00000001``)."""
    found = _PHONE.match(device.strip())
    return found.group(1) if found else None


class PresenceTracker:
    def __init__(self) -> None:
        self._device: dict[str, PresenceState | None] = {}  # from DeviceStateChange
        self._hint: dict[str, PresenceState | None] = {}  # from ExtensionStatus
        self._contacts: dict[str, set[str]] = {}  # reachable contacts, once any contact news came
        self._dnd: set[str] = set()
        self._published: dict[str, PresenceState] = {}  # the last state answered per extension
        self._listing = False

    # -------------------------------------------------------------- reading
    def state(self, extension: str) -> PresenceState:
        device = self._device.get(extension)
        if device is None:
            device = self._hint.get(extension)
        if device in ("on_call", "ringing"):
            return device
        if extension in self._dnd or device == "dnd":
            return "dnd"
        contacts = self._contacts.get(extension)
        if contacts is not None and not contacts:
            return "unavailable"
        if device is None:
            return "free" if contacts else "unavailable"
        return device

    def known(self) -> set[str]:
        return {*self._device, *self._hint, *self._contacts, *self._dnd}

    def states(self) -> dict[str, PresenceState]:
        return {extension: self.state(extension) for extension in sorted(self.known())}

    # -------------------------------------------------------------- writing
    def feed(self, message: dict[str, Any]) -> dict[str, PresenceState]:
        """→ the extensions whose state changed (nothing while a listing is in progress)."""
        event = message.get("Event")
        if event not in EVENTS:
            return {}
        touched = self._apply(str(event), message)
        if not touched or self._listing:
            return {}
        changes: dict[str, PresenceState] = {}
        for extension in touched:
            state = self.state(extension)
            if self._published.get(extension, "unavailable") != state:
                changes[extension] = state
            self._published[extension] = state
        return changes

    def feed_all(self, messages: Any) -> dict[str, PresenceState]:
        changes: dict[str, PresenceState] = {}
        for message in messages:
            changes.update(self.feed(message))
        return changes

    def begin_listing(self) -> None:
        self._device.clear()
        self._hint.clear()
        self._contacts.clear()
        self._dnd.clear()
        self._listing = True

    def end_listing(self) -> dict[str, PresenceState]:
        """→ every known extension's state (the PBX's whole picture)."""
        self._listing = False
        self._published = self.states()
        return dict(self._published)

    def lost(self) -> dict[str, PresenceState]:
        """The connection ended: → the extensions that were not ``unavailable``."""
        self.begin_listing()
        self._listing = False
        changes: dict[str, PresenceState] = {e: "unavailable" for e, s in self._published.items()
                                             if s != "unavailable"}
        self._published = {}
        return changes

    # -------------------------------------------------------------- events
    def _apply(self, event: str, message: dict[str, Any]) -> list[str]:
        if event == "DeviceStateChange":
            device = str(message.get("Device", ""))
            state = str(message.get("State", "")).strip().upper()
            dnd = _DND_DEVICE.match(device)
            if dnd:
                extension = dnd.group(1)
                if state in ("BUSY", "INUSE", "ONHOLD"):
                    self._dnd.add(extension)
                else:
                    self._dnd.discard(extension)
                return [extension]
            extension = phone_extension(device)
            if extension is None or state not in DEVICE_STATES:
                return []
            self._device[extension] = DEVICE_STATES[state]
            return [extension]
        if event == "ExtensionStatus":
            extension = str(message.get("Exten", "")).strip()
            if not extension:
                return []
            self._hint[extension] = hint_state(message.get("Status"), message.get("StatusText"))
            return [extension]
        if event in ("ContactStatus", "ContactList"):
            extension = str(message.get("EndpointName") or message.get("Endpoint")
                            or message.get("AOR") or message.get("Aor") or "").strip()
            status = str(message.get("ContactStatus") or message.get("Status") or "").strip().lower()
            uri = str(message.get("URI") or message.get("Uri") or "")
            if not extension:
                return []
            contacts = self._contacts.setdefault(extension, set())
            if status in _CONTACT_DOWN:
                contacts.discard(uri)
            elif status in _CONTACT_UP:
                contacts.add(uri)
            return [extension]
        if event == "PeerStatus":
            extension = phone_extension(str(message.get("Peer", "")))
            status = str(message.get("PeerStatus", "")).strip().lower()
            if extension is None:
                return []
            contacts = self._contacts.setdefault(extension, set())
            if status in _PEER_DOWN:
                contacts.discard("peer")
            elif status in _PEER_UP:
                contacts.add("peer")
            return [extension]
        # PresenceStateChange / PresenceStatus (the PresenceStateList items and live changes)
        presentity = _PRESENTITY.match(str(message.get("Presentity", "")).strip())
        if presentity is None:
            return []
        extension = presentity.group(1)
        if str(message.get("Status", "")).strip().lower() == "dnd":
            self._dnd.add(extension)
        else:
            self._dnd.discard(extension)
        return [extension]
