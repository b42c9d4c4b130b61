"""An import-linter contract type for part of an external package: ``forbidden_submodules``.

import-linter's ``forbidden`` contract forbids external packages only whole (``aiohttp``, not
``aiohttp.web``: the graph squashes an external package into one node), but the channel adapters may
use aiohttp's HTTP client and must not use its web server. This contract reads the source of every
module under ``source_modules`` (``ast``: every ``import`` and ``from … import``, in functions and
``TYPE_CHECKING`` blocks too) and fails on an import of a module matching ``forbidden_modules``
(``fnmatch`` patterns: ``aiohttp.web``, ``aiohttp.web_*``). ``from aiohttp import web`` counts as
importing ``aiohttp.web``. ``ignore_modules`` are exempted by name (with their descendants).

Registered in pyproject.toml (``contract_types``); lint-imports puts the working directory on the path.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib.util
from pathlib import Path
from typing import Any

from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, module) of every absolute import; ``from a import b`` gives ``a`` and ``a.b``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return found


class ForbiddenSubmodulesContract(Contract):
    source_modules = fields.ListField(subfield=fields.StringField())
    forbidden_modules = fields.ListField(subfield=fields.StringField())
    ignore_modules = fields.ListField(subfield=fields.StringField(), required=False)

    def _ignored(self, module: str) -> bool:
        return any(module == name or module.startswith(name + ".") for name in self.ignore_modules or ())

    def check(self, graph: Any, verbose: bool) -> ContractCheck:
        violations: list[str] = []
        for source in self.source_modules:
            for module in sorted({source, *graph.find_descendants(source)}):
                if self._ignored(module):
                    continue
                spec = importlib.util.find_spec(module)
                if spec is None or not spec.origin or not spec.origin.endswith(".py"):
                    continue
                tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
                for line, name in _imported(tree):
                    pattern = next((p for p in self.forbidden_modules if fnmatch.fnmatchcase(name, p)), None)
                    if pattern is not None:
                        violations.append(f"{module} (l. {line}) imports {name}")
        return ContractCheck(kept=not violations, metadata={"violations": violations})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for violation in check.metadata["violations"]:
            output.print_error(violation, bold=False)
            output.new_line()
