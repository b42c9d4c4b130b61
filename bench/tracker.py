"""How fast the pure call tracker digests the 400-call load trace (48,438 AMI messages).

    python bench/tracker.py [--runs 5] [--fixtures tests/fixtures/ami]

Measures, best of ``--runs``, in one process and without I/O:
- ``tracker``: ``Tracker.feed`` over the already parsed messages;
- ``parse``: ``AmiParser.feed`` over the raw capture bytes (64 KiB reads);
- ``parse_and_track``: both, as the AMI consumer will run them;
- ``panoramisk_parse``: panoramisk's own ``Message.from_line`` over the same frames, for scale.
Checks that every one of the 400 calls ended answered. Human lines first; the last line is JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hub.telephony.ami_parse import AmiParser
from hub.telephony.events import CallEnded
from hub.telephony.tracker import Tracker

CHUNK = 65536


def parse(raw: bytes) -> list[dict]:
    parser = AmiParser()
    out: list[dict] = []
    for i in range(0, len(raw), CHUNK):
        out.extend(parser.feed(raw[i : i + CHUNK]))
    return out


def track(messages: list[dict]) -> int:
    tracker = Tracker(trunks=["trunk"], extensions=["101", "102", "103"])
    ended = 0
    for message in messages:
        for fact in tracker.feed(message):
            if isinstance(fact, CallEnded) and fact.status == "answered":
                ended += 1
    return ended


def best(runs: int, fn, *args) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--fixtures", default=str(Path(__file__).resolve().parents[1] / "tests/fixtures/ami"))
    args = ap.parse_args()
    raw = gzip.decompress((Path(args.fixtures) / "load_test.ami.gz").read_bytes())
    messages = parse(raw)
    n = len(messages)
    print(f"load trace: {n} messages, {len(raw) / 1e6:.1f} MB")

    t_track, answered = best(args.runs, track, messages)
    assert answered == 400, answered
    t_parse, _ = best(args.runs, parse, raw)
    t_both, answered_both = best(args.runs, lambda: track(parse(raw)))
    assert answered_both == 400

    figures = {
        "messages": n,
        "calls_answered": answered,
        "tracker_events_per_s": round(n / t_track),
        "parse_events_per_s": round(n / t_parse),
        "parse_and_track_events_per_s": round(n / t_both),
        "tracker_seconds": round(t_track, 4),
        "parse_and_track_seconds": round(t_both, 4),
    }
    try:
        from panoramisk.message import Message

        frames = raw.decode("utf-8", "ignore").split("\r\n\r\n")

        def panoramisk_parse() -> int:
            return sum(1 for f in frames if Message.from_line(f.strip()) is not None)

        t_pano, _ = best(args.runs, panoramisk_parse)
        figures["panoramisk_parse_events_per_s"] = round(n / t_pano)
    except ImportError:
        pass
    for key, value in figures.items():
        print(f"{key:34} {value:,}" if isinstance(value, int) else f"{key:34} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
