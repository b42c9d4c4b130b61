"""How fast ``hub.mail.parse.parse`` reads a letter, in one process and without I/O.

    python bench/mail_parse.py [--runs 5]

Best of ``--runs`` for each of the fixture letters of ``tests/fixtures/mail`` (every charset, HTML,
inline images, bounces) as one batch, for ``08_attachment_2mb.eml`` alone (issue 6's figure: under
0.5 s), and for a letter with a 20 MB attachment built here (a quadratic copy would show as far
more than ten times the 2 MB time). Human lines first; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.mail.parse import parse  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "mail"


def best(runs: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return min(times)


def big_letter(size: int) -> bytes:
    letter = EmailMessage()
    letter["From"], letter["To"], letter["Subject"] = "a@example.ru", "b@example.ru", "Большое вложение"
    letter.set_content("Во вложении архив.")
    letter.add_attachment(os.urandom(size), maintype="application", subtype="zip", filename="архив.zip")
    return bytes(letter)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    letters = [p.read_bytes() for p in sorted(FIXTURES.glob("*.eml")) if not p.name.startswith("08_")]
    two_mb = next(FIXTURES.glob("08_*.eml")).read_bytes()
    twenty_mb = big_letter(20 * 1024 * 1024)

    t_batch = best(args.runs, lambda: [parse(raw) for raw in letters])
    t_2mb = best(args.runs, lambda: parse(two_mb))
    t_20mb = best(max(1, args.runs // 2), lambda: parse(twenty_mb))
    figures = {
        "fixture_letters": len(letters),
        "fixture_letters_per_s": round(len(letters) / t_batch),
        "attachment_2mb_seconds": round(t_2mb, 4),
        "attachment_20mb_seconds": round(t_20mb, 4),
        "ratio_20mb_to_2mb": round(t_20mb / t_2mb, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    for key, value in figures.items():
        print(f"{key:28} {value}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
