"""Build step of a wheel that is the whole product (the metadata is in pyproject.toml).

Besides the Python code, the templates and our static files (package data), a wheel carries
- the translations compiled to ``messages.mo`` (the ``.po`` sources stay out: the hub reads a ``.po``
  in preference, so a wheel that had both would compile them at every start);
- the front-end libraries the pages load, with their licence files, copied from
  ``hub/webui/node_modules`` as ``hub/webui/vendor.json`` lists them.

Build with ``pip wheel --no-deps -w dist .`` (or ``python -m build --wheel``) after
``npm ci --prefix hub/webui`` (``scripts/setup`` runs it); a build without those files fails
rather than yielding a hub whose pages lack their scripts. An editable install (``pip install -e``)
needs neither: it serves the source tree as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

WEBUI = Path(__file__).resolve().parent / "hub" / "webui"
LANGUAGES = ("ru", "en")


def _vendor_files() -> list[str]:
    """Paths inside node_modules: every served file and its licences."""
    manifest = json.loads((WEBUI / "vendor.json").read_text(encoding="utf-8"))
    return [rel for entry in manifest["files"].values() for rel in (entry["path"], *entry["licences"])]


class BuildWithWebAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "hub" / "webui"
        self._compile_catalogs(target / "locale")
        self._copy_vendor_files(target / "node_modules")

    def _compile_catalogs(self, target: Path) -> None:
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for language in LANGUAGES:
            source = WEBUI / "locale" / language / "LC_MESSAGES" / "messages.po"
            with source.open("rb") as f:
                catalog = read_po(f, locale=language, domain="messages")
            compiled = target / language / "LC_MESSAGES" / "messages.mo"
            self.mkpath(str(compiled.parent))
            with compiled.open("wb") as f:
                write_mo(f, catalog, use_fuzzy=False)

    def _copy_vendor_files(self, target: Path) -> None:
        node_modules = WEBUI / "node_modules"
        absent = [rel for rel in _vendor_files() if not (node_modules / rel).is_file()]
        if absent:
            raise SystemExit(f"front-end libraries missing in {node_modules}: {', '.join(absent)}; "
                             "run `npm ci --prefix hub/webui` (scripts/setup does) before building a wheel")
        for rel in _vendor_files():
            self.mkpath(str((target / rel).parent))
            self.copy_file(str(node_modules / rel), str(target / rel))


setup(cmdclass={"build_py": BuildWithWebAssets})
