"""A simulated Asterisk: an asyncio TCP server speaking AMI that replays captured call traces.

``crmhub demo`` runs one on 127.0.0.1 so a newcomer sees screen-pops with no Asterisk; the tests'
fake Asterisk (``tests/fakes/ami_server.py``) extends it. It greets with the banner, answers
``Login`` (Success, or ``Authentication failed``), ``Ping``, ``CoreShowChannels`` and ``Status`` (with
the ``Variables`` asked for; from the channels its replays left alive), the phones' lists
``DeviceStateList``, ``ExtensionStateList``, ``PresenceStateList`` and ``PJSIPShowContacts`` (from the
device states, hints, presence states and contacts its replays last set: see ``_track``),
``Originate`` (queued, then the ``click_to_call`` trace with an ``OriginateResponse`` carrying the
request's ActionID, from the phone of its ``Channel`` to the number of its ``Exten``) and ``Logoff``;
every answer echoes the ActionID. Channel ages (``Duration``,
``Seconds``, ``CDR(billsec)``) are read on the replays' clock: their ``Timestamp`` values, or now when
later. Replays rewrite ``Uniqueid``/``Linkedid`` values and channel-name suffixes to fresh ones
(and numbers on request), and shift ``Timestamp`` to now. With ``recordings_dir`` set, a replayed
MixMonitor (``MIXMONITOR_FILENAME``) leaves a demo dialogue there under the recording's name
(``leave_recording``: ``demo_recordings/*.wav``, made by ``scripts/make_demo_recordings.py``).

The traces (``traces/*.jsonl.gz``) were captured from a real Asterisk 22, one call scenario each
(the small ones of the project's AMI fixtures).

    sim = AmiSimulator(username="hub", secret="...")
    await sim.start()                          # sim.port
    replay = await sim.push("inbound_answered", speed=1.0, numbers={"9161234567": "9031112233"})
    await sim.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import logging
import os
import random
import re
import shutil
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.telephony.ami_parse import AmiParser

log = logging.getLogger(__name__)

TRACES = Path(__file__).resolve().parent / "traces"
# short Russian dialogues (scripts/make_demo_recordings.py), one of which becomes each recording
DEMO_RECORDINGS = Path(__file__).resolve().parent / "demo_recordings"
BANNER = "Asterisk Call Manager/11.0.0"
LOGIN_ARTIFACTS = frozenset({"FullyBooted", "SuccessfulAuth"})

_ID = re.compile(r"\b\d{9,}\.\d+\b")
_SUFFIX = re.compile(r"(?<=-)[0-9a-f]{8}\b")
_PHONE = re.compile(r"^PJSIP/(\w+)$")
_counter = itertools.count(1)
# Asterisk's device state → its hint's extension state (ast_devstate_to_extenstate): Status, StatusText
EXTENSION_STATES: dict[str, tuple[int, str]] = {
    "NOT_INUSE": (0, "Idle"), "UNKNOWN": (0, "Idle"), "INUSE": (1, "InUse"), "BUSY": (2, "Busy"),
    "UNAVAILABLE": (4, "Unavailable"), "INVALID": (4, "Unavailable"), "RINGING": (8, "Ringing"),
    "RINGINUSE": (9, "InUse&Ringing"), "ONHOLD": (16, "Hold"),
}


def load_trace(name: str, fixtures: Path = TRACES) -> list[dict[str, Any]]:
    """A fixture's messages (with ``_t``), banner line dropped."""
    path = fixtures / f"{name}.jsonl"
    if not path.exists():
        path = fixtures / f"{name}.jsonl.gz"
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [m for m in (json.loads(line) for line in fh) if "_banner" not in m]


def encode(message: dict[str, Any]) -> bytes:
    lines = []
    for key, value in message.items():
        if key.startswith("_"):
            continue
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}: {item}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


@dataclass
class Replay:
    scenario: str
    rewriter: Rewriter
    messages: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ids(self) -> dict[str, str]:
        """Original Uniqueid/Linkedid → fresh one."""
        return self.rewriter.ids

    @property
    def linkedids(self) -> list[str]:
        seen: list[str] = []
        for m in self.messages:
            lid = m.get("Linkedid")
            if isinstance(lid, str) and lid not in seen:
                seen.append(lid)
        return seen


class Rewriter:
    """Fresh ids, channel suffixes, numbers and timestamps for one replay."""

    def __init__(self, numbers: dict[str, str] | None = None, now: float | None = None) -> None:
        self.ids: dict[str, str] = {}
        self.suffixes: dict[str, str] = {}
        self.numbers = dict(numbers or {})
        self.now = time.time() if now is None else now
        self.first_ts: float | None = None
        self.base = int(self.now)

    def _learn(self, message: dict[str, Any]) -> None:
        for key, value in message.items():
            low = key.lower()
            if isinstance(value, str):
                if (low.endswith("uniqueid") or low.endswith("linkedid")) and _ID.fullmatch(value):
                    if value not in self.ids:
                        self.ids[value] = f"{self.base}.{next(_counter)}"
                if low.endswith("channel") and "/" in value:
                    match = _SUFFIX.search(value)
                    if match and match.group() not in self.suffixes:
                        self.suffixes[match.group()] = f"{next(_counter):08x}"

    def _value(self, value: str) -> str:
        if "." in value:
            value = _ID.sub(lambda m: self.ids.get(m.group(), m.group()), value)
        if "-" in value:
            value = _SUFFIX.sub(lambda m: self.suffixes.get(m.group(), m.group()), value)
        for old, new in self.numbers.items():
            if old in value:
                value = value.replace(old, new)
        return value

    def __call__(self, message: dict[str, Any]) -> dict[str, Any]:
        self._learn(message)
        out: dict[str, Any] = {}
        for key, value in message.items():
            if key == "Timestamp" and isinstance(value, str):
                try:
                    ts = float(value)
                except ValueError:
                    out[key] = value
                    continue
                if self.first_ts is None:
                    self.first_ts = ts
                out[key] = f"{self.now + ts - self.first_ts:.6f}"
                continue
            new_key = self._value(key) if "(" in key else key
            if isinstance(value, list):
                out[new_key] = [self._value(v) for v in value]
            elif isinstance(value, str):
                out[new_key] = self._value(value)
            else:
                out[new_key] = value
        return out


class _Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.events = True


class AmiSimulator:
    def __init__(self, username: str = "hub", secret: str = "hubsecret", fixtures: Path = TRACES,
                 originate_scenario: str = "click_to_call", host: str = "127.0.0.1", port: int = 0) -> None:
        self.username = username
        self.secret = secret
        self.fixtures = fixtures
        self.originate_scenario = originate_scenario
        self.host = host
        self.port = port
        self.fail_auth = False
        self.originate_error: str | None = None  # set: every Originate is refused with this message
        self.frozen = False
        self.actions: list[dict[str, Any]] = []
        self.logins = 0
        self.login_failures = 0
        self.connections = 0
        self.channels: dict[str, dict[str, Any]] = {}  # Uniqueid → the channel's latest headers
        self.devices: dict[str, str] = {}  # Device → its latest state (DeviceStateList answers them)
        # the other lists' items, as the last ExtensionStatus / PresenceStateChange / ContactStatus
        # replayed set them: Exten → ExtensionStatus, Presentity → PresenceStateChange, URI → ContactList
        self.hints: dict[str, dict[str, str]] = {}
        self.presence: dict[str, dict[str, str]] = {}
        self.contacts: dict[str, dict[str, str]] = {}
        self.hint_context = "from-internal"  # where a phone's hint lives (PJSIP/101 → 101@from-internal)
        # set: a replayed MixMonitor leaves a demo dialogue there under the recording's base name
        self.recordings_dir: Path | None = None
        self._clock = 0.0  # the latest Timestamp replayed
        self._clients: set[_Client] = set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    # ---------------------------------------------------------------- lifecycle
    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def __aenter__(self) -> AmiSimulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ---------------------------------------------------------------- control
    async def drop(self) -> None:
        """Close every client connection, like an Asterisk restart or a network cut."""
        for client in list(self._clients):
            self._clients.discard(client)
            client.writer.close()
            with contextlib.suppress(Exception):
                await client.writer.wait_closed()

    def freeze(self) -> None:
        self.frozen = True

    def unfreeze(self) -> None:
        self.frozen = False

    @property
    def clients(self) -> int:
        return sum(1 for c in self._clients if c.authenticated)

    async def push(self, scenario: str | list[dict[str, Any]], *, stop_after: int | None = None,
                   stop_before: str | None = None, start_at: int = 0, speed: float = 0.0,
                   numbers: dict[str, str] | None = None,
                   rewriter: Rewriter | None = None, action_id: str | None = None) -> Replay:
        """Replay a trace (a fixture name or messages) to every logged-in client.

        ``speed`` 0 sends as fast as possible, 1.0 in real time (by ``_t``), 10 ten times faster.
        ``start_at``/``stop_after`` replay a slice (a call that began or ends out of sight);
        ``stop_before="HangupRequest"`` stops before the first such event (a call in progress);
        pass the same ``rewriter`` to continue a replay with the same fresh ids.
        """
        name = scenario if isinstance(scenario, str) else "custom"
        trace = load_trace(scenario, self.fixtures) if isinstance(scenario, str) else list(scenario)
        rewrite = rewriter or Rewriter(numbers)
        events = [m for m in trace if "Event" in m and m["Event"] not in LOGIN_ARTIFACTS]
        replay = Replay(name, rewrite)
        previous_t: float | None = None
        for index, original in enumerate(events):
            if (stop_after is not None and index >= stop_after) or (
                stop_before is not None and original.get("Event") == stop_before
            ):
                break
            message = rewrite(original)  # rewrite every message so ids stay consistent across slices
            if index < start_at:
                continue
            if speed and previous_t is not None and "_t" in original:
                await asyncio.sleep(max(0.0, (original["_t"] - previous_t) / speed))
            previous_t = original.get("_t", previous_t)
            if message.get("Event") == "OriginateResponse" and action_id is not None:
                message["ActionID"] = action_id
            self._track(message)
            replay.messages.append(message)
            self._broadcast(encode(message))
            if index % 200 == 0:
                await asyncio.sleep(0)
        await self._drain()
        return replay

    def rewritten(self, scenario: str, rewriter: Rewriter) -> list[dict[str, Any]]:
        """A trace's events (no login artifacts) as ``push`` would replay them with ``rewriter``,
        for ``send``: a benchmark rewrites before its clock starts."""
        return [rewriter(m) for m in load_trace(scenario, self.fixtures)
                if "Event" in m and m["Event"] not in LOGIN_ARTIFACTS]

    async def send(self, messages: list[dict[str, Any]]) -> None:
        """Write messages (``rewritten``'s) to every logged-in client at once, as they are."""
        for index, message in enumerate(messages):
            self._track(message)
            self._broadcast(encode(message))
            if index % 200 == 199:
                await asyncio.sleep(0)
        await self._drain()

    # ---------------------------------------------------------------- internals
    async def _drain(self) -> None:
        for client in list(self._clients):
            with contextlib.suppress(ConnectionError):
                await client.writer.drain()

    def now(self) -> float:
        """The replays' clock: the latest ``Timestamp`` replayed, or the wall clock when later."""
        return max(time.time(), self._clock)

    def _track(self, message: dict[str, Any]) -> None:
        event = message.get("Event")
        stamp = _float(message.get("Timestamp"))
        if stamp is not None:
            self._clock = max(self._clock, stamp)
        if event == "DeviceStateChange" and "Device" in message:
            self.devices[str(message["Device"])] = str(message.get("State", "UNKNOWN"))
        elif event == "ExtensionStatus" and message.get("Exten"):
            self.hints[str(message["Exten"])] = {k: str(message.get(k, "")) for k in
                                                 ("Exten", "Context", "Hint", "Status", "StatusText")}
        elif event == "PresenceStateChange" and message.get("Presentity"):
            self.presence[str(message["Presentity"])] = {k: str(message.get(k, "")) for k in
                                                         ("Presentity", "Status", "Subtype", "Message")}
        elif event == "ContactStatus" and message.get("URI"):
            if str(message.get("ContactStatus", "")).lower() == "removed":
                self.contacts.pop(str(message["URI"]), None)
            else:
                self.contacts[str(message["URI"])] = {k: str(message.get(k, "")) for k in
                                                      ("URI", "ContactStatus", "AOR", "EndpointName",
                                                       "RoundtripUsec", "UserAgent")}
        uid = message.get("Uniqueid")
        if not isinstance(uid, str):
            return
        if event == "Hangup":
            self.channels.pop(uid, None)
        elif event == "Newchannel":
            exten = str(message.get("Exten", ""))
            self.channels[uid] = {**message, "_created": stamp if stamp is not None else time.time(),
                                  "_dnid": "" if exten in ("", "s") else exten, "_vars": {}}
        elif uid in self.channels and "Channel" in message:
            chan = self.channels[uid]
            for key in ("ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName", "ConnectedLineNum",
                        "ConnectedLineName", "Context", "Exten"):
                if key in message:
                    chan[key] = message[key]
            if event == "BridgeEnter":
                chan["BridgeId"] = message.get("BridgeUniqueid", "bridge")
                chan.setdefault("_answered", stamp if stamp is not None else time.time())
            elif event == "BridgeLeave":
                chan["BridgeId"] = ""
            elif event == "VarSet" and isinstance(message.get("Variable"), str):
                chan["_vars"][message["Variable"]] = str(message.get("Value", ""))
                if message["Variable"] == "MIXMONITOR_FILENAME" and self.recordings_dir is not None:
                    leave_recording(self.recordings_dir, str(message.get("Value", "")))
            elif event == "Newexten":
                chan["Application"] = message.get("Application", "")
                chan["ApplicationData"] = message.get("AppData", "")

    def _broadcast(self, data: bytes) -> None:
        if self.frozen:
            return
        for client in list(self._clients):
            if client.authenticated and client.events and not client.writer.is_closing():
                client.writer.write(data)

    def _send(self, client: _Client, message: dict[str, Any]) -> None:
        if not client.writer.is_closing():
            client.writer.write(encode(message))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = _Client(reader, writer)
        self._clients.add(client)
        self.connections += 1
        parser = AmiParser()
        parser.banner = ""  # actions come without a banner
        try:
            writer.write(f"{BANNER}\r\n".encode())
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                for action in parser.feed(data):
                    self.actions.append(action)
                    if self.frozen:
                        continue
                    await self._act(client, action)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(client)
            writer.close()

    async def _act(self, client: _Client, action: dict[str, Any]) -> None:
        name = str(action.get("Action", "")).lower()
        action_id = action.get("ActionID")
        reply: dict[str, Any] = {"ActionID": action_id} if action_id is not None else {}
        if name == "login":
            good = action.get("Username") == self.username and action.get("Secret") == self.secret
            if self.fail_auth or not good:
                self.login_failures += 1
                self._send(client, {"Response": "Error", **reply, "Message": "Authentication failed"})
                return
            self.logins += 1
            client.authenticated = True
            client.events = str(action.get("Events", "on")).lower() not in ("off", "no", "false")
            self._send(client, {"Response": "Success", **reply, "Message": "Authentication accepted"})
            self._send(client, {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "10",
                                "LastReload": "10", "Status": "Fully Booted"})
            return
        if not client.authenticated:
            self._send(client, {"Response": "Error", **reply, "Message": "Permission denied"})
            return
        if name == "ping":
            self._send(client, {"Response": "Success", **reply, "Ping": "Pong",
                                "Timestamp": f"{time.time():.6f}"})
        elif name == "coreshowchannels":
            self._core_show_channels(client, reply)
        elif name == "status":
            self._status(client, reply, action)
        elif name == "devicestatelist":
            self._device_state_list(client, reply)
        elif name == "extensionstatelist":
            self._extension_state_list(client, reply)
        elif name == "presencestatelist":
            self._presence_state_list(client, reply)
        elif name == "pjsipshowcontacts":
            self._pjsip_show_contacts(client, reply)
        elif name == "originate" and self.originate_error:
            self._send(client, {"Response": "Error", **reply, "Message": self.originate_error})
        elif name == "originate":
            self._send(client, {"Response": "Success", **reply, "Message": "Originate successfully queued"})
            task = asyncio.create_task(self.push(self.originate_scenario, action_id=action_id,
                                                 rewriter=originate_rewriter(action)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif name == "logoff":
            self._send(client, {"Response": "Goodbye", **reply, "Message": "Thanks for all the fish."})
            await client.writer.drain()
            client.writer.close()
        else:
            self._send(client, {"Response": "Error", **reply, "Message": "Invalid/unknown command"})

    def _core_show_channels(self, client: _Client, reply: dict[str, Any]) -> None:
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "Channels will follow"})
        now = self.now()
        for chan in self.channels.values():
            age = int(max(0.0, now - chan["_created"]))
            self._send(client, {
                "Event": "CoreShowChannel", **reply,
                "Channel": chan["Channel"], "ChannelState": chan.get("ChannelState", ""),
                "ChannelStateDesc": chan.get("ChannelStateDesc", ""),
                "CallerIDNum": chan.get("CallerIDNum", ""), "CallerIDName": chan.get("CallerIDName", ""),
                "ConnectedLineNum": chan.get("ConnectedLineNum", ""), "Language": "en", "AccountCode": "",
                "Context": chan.get("Context", ""), "Exten": chan.get("Exten", ""), "Priority": "1",
                "Uniqueid": chan["Uniqueid"], "Linkedid": chan.get("Linkedid", chan["Uniqueid"]),
                "Application": chan.get("Application", ""),
                "ApplicationData": chan.get("ApplicationData", ""),
                "Duration": f"{age // 3600:02d}:{age // 60 % 60:02d}:{age % 60:02d}",
                "BridgeId": chan.get("BridgeId", ""),
            })
        self._send(client, {"Event": "CoreShowChannelsComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(self.channels))})

    def _status(self, client: _Client, reply: dict[str, Any], action: dict[str, Any]) -> None:
        """Asterisk 22's ``Status``: one ``Status`` event per channel (or the one named), each with a
        ``Variable: NAME=value`` line per name in ``Variables`` (a function such as ``CDR(billsec)``
        too; what is unknown is empty), then ``StatusComplete``."""
        wanted = str(action.get("Channel") or "")
        chans = [c for c in self.channels.values() if not wanted or c["Channel"] == wanted]
        if wanted and not chans:
            self._send(client, {"Response": "Error", **reply, "Message": "No such channel"})
            return
        names = [n.strip() for n in str(action.get("Variables") or "").split(",") if n.strip()]
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "Channel status will follow"})
        now = self.now()
        for chan in chans:
            age = int(max(0.0, now - chan["_created"]))
            answered = chan.get("_answered")
            billsec = "" if answered is None else str(int(max(0.0, now - answered)))
            values = {**chan["_vars"], "CDR(billsec)": billsec}
            tech = str(chan["Channel"]).partition("/")[0]
            event: dict[str, Any] = {
                "Event": "Status", "Privilege": "Call",
                "Channel": chan["Channel"], "ChannelState": chan.get("ChannelState", ""),
                "ChannelStateDesc": chan.get("ChannelStateDesc", ""),
                "CallerIDNum": chan.get("CallerIDNum", ""), "CallerIDName": chan.get("CallerIDName", ""),
                "ConnectedLineNum": chan.get("ConnectedLineNum", ""),
                "ConnectedLineName": chan.get("ConnectedLineName", ""), "Language": "en", "AccountCode": "",
                "Context": chan.get("Context", ""), "Exten": chan.get("Exten", ""), "Priority": "1",
                "Uniqueid": chan["Uniqueid"], "Linkedid": chan.get("Linkedid", chan["Uniqueid"]),
                "Type": tech, "DNID": chan.get("_dnid", ""),
                "EffectiveConnectedLineNum": chan.get("ConnectedLineNum", ""),
                "EffectiveConnectedLineName": chan.get("ConnectedLineName", ""), "TimeToHangup": "0",
                "BridgeID": chan.get("BridgeId", ""), "Application": chan.get("Application", ""),
                "Data": chan.get("ApplicationData", ""), "Nativeformats": "(ulaw)", "Readformat": "ulaw",
                "Readtrans": "", "Writeformat": "ulaw", "Writetrans": "", "Callgroup": "0",
                "Pickupgroup": "0", "Seconds": str(age),
            }
            if names:
                event["Variable"] = [f"{n}={values.get(n, '')}" for n in names]
            self._send(client, {**event, **reply})
        self._send(client, {"Event": "StatusComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(chans)), "Items": str(len(chans))})

    def _device_state_list(self, client: _Client, reply: dict[str, Any]) -> None:
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "Device State Changes will follow"})
        for device, state in self.devices.items():
            self._send(client, {"Event": "DeviceStateChange", **reply, "Device": device, "State": state})
        self._send(client, {"Event": "DeviceStateListComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(self.devices))})

    def extension_states(self) -> list[dict[str, str]]:
        """The hints: each phone's (``PJSIP/101``: ``101@hint_context``, from its device state), then
        those an ``ExtensionStatus`` replayed set (they win)."""
        hints: dict[str, dict[str, str]] = {}
        for device, state in self.devices.items():
            phone = _PHONE.match(device)
            if phone is not None:
                status, text = EXTENSION_STATES.get(state.upper(), (4, "Unavailable"))
                hints[phone.group(1)] = {"Exten": phone.group(1), "Context": self.hint_context,
                                         "Hint": device, "Status": str(status), "StatusText": text}
        hints.update(self.hints)
        return list(hints.values())

    def _extension_state_list(self, client: _Client, reply: dict[str, Any]) -> None:
        hints = self.extension_states()
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "Extension Statuses will follow"})
        for hint in hints:
            self._send(client, {"Event": "ExtensionStatus", **reply, **hint})
        self._send(client, {"Event": "ExtensionStateListComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(hints))})

    def _presence_state_list(self, client: _Client, reply: dict[str, Any]) -> None:
        states = list(self.presence.values())
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "Presence State Changes will follow"})
        for state in states:
            self._send(client, {"Event": "PresenceStateChange", **reply, **state})
        self._send(client, {"Event": "PresenceStateListComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(states))})

    def contact_list(self) -> list[dict[str, str]]:
        """The registered contacts as ``ContactList`` items: each phone whose device is known and not
        unavailable (``sip:101@127.0.0.1:5101``, as the fixtures' phones), then those a
        ``ContactStatus`` replayed set (they win)."""
        contacts: dict[str, dict[str, str]] = {}
        for device, state in self.devices.items():
            phone = _PHONE.match(device)
            if phone is not None and state.upper() not in ("UNAVAILABLE", "INVALID"):
                name = phone.group(1)
                port = f"5{name}" if name.isdigit() and len(name) == 3 else "5060"
                contacts[f"sip:{name}@127.0.0.1:{port}"] = {"Endpoint": name, "Status": "Reachable",
                                                            "RoundtripUsec": "1000", "UserAgent": ""}
        for uri, status in self.contacts.items():
            contacts[uri] = {"Endpoint": status["EndpointName"] or status["AOR"],
                             "Status": status["ContactStatus"], "RoundtripUsec": status["RoundtripUsec"],
                             "UserAgent": status["UserAgent"]}
        items = []
        for uri, contact in contacts.items():
            host, _, port = uri.partition("@")[2].partition(":")
            items.append({
                "ObjectType": "contact", "ObjectName": f"{contact['Endpoint']}/{uri}", "ViaAddr": host,
                "ViaPort": port or "5060", "QualifyTimeout": "3.000000", "CallId": "", "RegServer": "",
                "PruneOnBoot": "false", "Path": "", "Endpoint": contact["Endpoint"],
                "AuthenticateQualify": "false", "Uri": uri, "QualifyFrequency": "60",
                "UserAgent": contact["UserAgent"], "ExpirationTime": "0", "OutboundProxy": "",
                "Status": contact["Status"], "RoundtripUsec": contact["RoundtripUsec"] or "0",
            })
        return items

    def _pjsip_show_contacts(self, client: _Client, reply: dict[str, Any]) -> None:
        contacts = self.contact_list()
        self._send(client, {"Response": "Success", **reply, "EventList": "start",
                            "Message": "A listing of Contacts follows, presented as ContactList events"})
        for contact in contacts:
            self._send(client, {"Event": "ContactList", **reply, **contact})
        self._send(client, {"Event": "ContactListComplete", **reply, "EventList": "Complete",
                            "ListItems": str(len(contacts))})


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def leave_recording(folder: Path, name: str) -> Path | None:
    """The recording ``name`` (its base name) in ``folder``, made there if missing: one of the demo
    dialogues, for an inbound or an outbound call as the name says (Asterisk's ``inbound-…``/
    ``outbound-…``), the same one for the same name. A hard link to the dialogue's copy in the folder
    (a symbolic link out of it would not be served), or a copy where links are not possible."""
    base = Path(name.replace("\\", "/")).name
    if base in ("", ".", ".."):
        return None
    target = folder / base
    if target.exists():
        return target
    direction = "outbound" if base.startswith("outbound") else "inbound"
    clips = sorted(DEMO_RECORDINGS.glob(f"{direction}-*.wav"))
    if not clips:
        return None
    clip = clips[zlib.crc32(base.encode()) % len(clips)]
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / f".demo-{clip.name}"
    if not source.exists():
        shutil.copyfile(clip, source)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return target


def originate_rewriter(action: dict[str, Any]) -> Rewriter:
    """The click-to-call trace's replay for an ``Originate``: from the phone of its ``Channel``
    (``PJSIP/102``) to the number of its ``Exten`` (E.164), in place of the trace's 101 and number."""
    agent = _PHONE.match(str(action.get("Channel", "")))
    exten = str(action.get("Exten", ""))
    numbers = {TRACE_E164_DIGITS: exten[1:]} if exten[:1] == "+" and exten[1:].isdigit() else {}
    return DemoRewriter(numbers, agent.group(1) if agent else TRACE_AGENT)


def scenarios(fixtures: Path = TRACES) -> Iterable[str]:
    return sorted({p.name.split(".")[0] for p in fixtures.glob("*.jsonl*")})


# ------------------------------------------------------------------ the demo PBX's calls
# scenario → whether one agent is rung (swapped to a random demo agent) or a queue rings 101 and 102
DEMO_SCENARIOS = {
    "inbound_answered": True, "inbound_missed": True, "inbound_abandoned": True,
    "click_to_call": True, "queue_answered": False, "queue_abandoned": False,
}
TRACE_NUMBER = "9161234567"  # the external party of every demo trace (+7 916 123-45-67), national digits
TRACE_E164_DIGITS = "7" + TRACE_NUMBER  # as it appears in the traces: +79161234567, 79161234567
TRACE_AGENT = "101"          # the agent's extension in the single-agent traces
_AGENT = re.compile(r"(?<=[/-])101(?=[-@/]|$)")
_RECORDING_STAMP = re.compile(r"(?<=bound-)\d{8}-\d{6}(?=-)")  # inbound-…, outbound-…


class DemoRewriter(Rewriter):
    """A replay's rewriter that also gives the call to another agent's extension and dates its
    recording's name (``inbound-20261123-164016-…``) now, as Asterisk's dialplan would."""

    def __init__(self, numbers: dict[str, str] | None = None, agent: str = TRACE_AGENT) -> None:
        super().__init__(numbers)
        self.agent = agent
        self.stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.now))

    def _value(self, value: str) -> str:
        value = super()._value(value)
        if "bound-" in value:
            value = _RECORDING_STAMP.sub(self.stamp, value)
        if self.agent == TRACE_AGENT:
            return value
        return self.agent if value == TRACE_AGENT else _AGENT.sub(self.agent, value)


PickNumber = Callable[[], Awaitable[str | None]]


async def demo_call(sim: AmiSimulator, number: str, *, rng: random.Random,
                    agents: Sequence[str] = ("101", "102"), speed: float = 1.0) -> Replay:
    """One random demo scenario, the caller ``number`` (10 national digits) in place of the trace's."""
    scenario = rng.choice(sorted(DEMO_SCENARIOS))
    agent = rng.choice(list(agents)) if DEMO_SCENARIOS[scenario] and agents else TRACE_AGENT
    rewriter = DemoRewriter({TRACE_NUMBER: number}, agent)
    log.info("demo PBX: %s from %s to %s", scenario, number,
             agent if DEMO_SCENARIOS[scenario] else "the queue")
    return await sim.push(scenario, speed=speed, rewriter=rewriter)


async def run_demo_calls(sim: AmiSimulator, pick_number: PickNumber, *,
                         interval: tuple[float, float] = (20, 40), unknown_share: float = 0.25,
                         agents: Sequence[str] = ("101", "102"), rng: random.Random | None = None) -> None:
    """Every ``interval`` seconds (a random pick between the bounds) a call: a known client's number from
    ``pick_number()`` (10 national digits) or, ``unknown_share`` of the time, an unknown one."""
    rng = rng or random.Random()
    while True:
        await asyncio.sleep(rng.uniform(*interval))
        try:
            number = None if rng.random() < unknown_share else await pick_number()
            if not number or not (number.isdigit() and len(number) == 10):
                number = "9" + "".join(rng.choice("0123456789") for _ in range(9))
            await demo_call(sim, number, rng=rng, agents=agents)
        except Exception:
            log.exception("demo PBX: a call could not be played")
