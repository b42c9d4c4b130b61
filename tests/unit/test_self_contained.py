"""The repository stands alone: no code, test, bench or script reads a path outside it.

A user's clone lives anywhere and has no workspace folders beside it, so an absolute path to a home
or workspace folder, or a walk up to a ``shared`` folder next to the clone, is a defect here.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("hub", "tests", "bench", "scripts", ".ci", "hub/webui/templates", "hub/webui/static")
TOP_FILES = ("pyproject.toml", "setup.py", "README.md")
SKIPPED_PARTS = {"node_modules", "__pycache__", "fixtures"}
SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".html", ".js", ".css", ".md", ".mako", ".txt", ""}
OUTSIDE = re.compile(
    r"""(?:^|["'`(\s=:])/(?:work|home|root|Users|mnt|tmp/bash_jobs)[/.]"""  # an absolute workspace path
    r"""|\.\./shared\b"""  # the workspace's shared folder beside the clone
    r"""|["']shared["']\s*/\s*["']fixtures["']""",  # ... spelt with pathlib
    re.MULTILINE,
)


def _files() -> list[Path]:
    found = [ROOT / name for name in TOP_FILES if (ROOT / name).is_file()]
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            relative = path.relative_to(ROOT)
            if path.is_file() and path.suffix in SUFFIXES and not SKIPPED_PARTS & set(relative.parts):
                found.append(path)
    return found


def test_no_path_outside_the_repository() -> None:
    this = Path(__file__).resolve()
    offenders = []
    for path in _files():
        if path == this:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in OUTSIDE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            offenders.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0).strip()}")
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_finds_what_it_is_for() -> None:
    for bad in ('FIXTURES = Path("/work/shared/fixtures/ami")', "see ../shared/fixtures",
                'root / "shared" / "fixtures"', "open('/home/user/x')", 'cwd="/root/hub"'):
        assert OUTSIDE.search(bad), bad
    for fine in ('home={self.root}/home/%u', "/static/vendor/htmx.min.js", "tests/fixtures/ami",
                 'url = "/api/v1/clients"'):
        assert not OUTSIDE.search(fine), fine


def test_the_fixtures_are_in_the_repository() -> None:
    for folder, sample in (("ami", "inbound_answered.ami"), ("ami", "load_test.ami.gz"),
                           ("mail", "expected.json"), ("telegram", "getUpdates.json"),
                           ("twilio", "signatures.json")):
        assert (ROOT / "tests" / "fixtures" / folder / sample).is_file(), (folder, sample)
        assert (ROOT / "tests" / "fixtures" / folder / "README.md").is_file(), folder
