"""What docs/architecture.md promises about the code, checked: every wait paced by the clock
module, modules small enough to read, and every path the docs name exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PRODUCT = ("api_server", "checkpoints", "cli", "cluster", "core", "store", "validation")
TOOLS = ("cml_simulator", "lab", "jobs")
MAX_LINES = 400


def modules(*packages: str) -> list[Path]:
    found = [p for package in packages for p in (ROOT / package).rglob("*.py")]
    return sorted(found + [ROOT / "deploy_master.py"])


def sleeps(tree: ast.AST) -> list[int]:
    """Lines that sleep without a clock: ``time.sleep(...)`` or ``from time import sleep``."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and node.attr == "sleep"
                and isinstance(node.value, ast.Name) and node.value.id == "time"):
            lines.append(node.lineno)
        if isinstance(node, ast.ImportFrom) and node.module == "time" and \
                any(a.name == "sleep" for a in node.names):
            lines.append(node.lineno)
    return lines


def test_every_wait_goes_through_the_clock_module():
    """A wait paced by ``core.timing`` (a Clock, or poll_until) is one a test can run on a
    fake clock; ``time.sleep`` in the product is one it cannot."""
    elsewhere = {ROOT / "core" / "timing.py",  # the clock itself
                 ROOT / "cluster" / "platforms" / "ssh" / "remote_helper.py"}  # runs on a host
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in modules(*PRODUCT)
                 if path not in elsewhere
                 for line in sleeps(ast.parse(path.read_text()))]
    assert offenders == [], "sleep through a Clock (core.timing) instead: " + ", ".join(offenders)


def test_no_module_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in modules(*PRODUCT, *TOOLS)
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"split these (at most {MAX_LINES} lines a module): {long}"


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
NAMED = re.compile(r"`([A-Za-z_][\w.-]*(?:/[\w.-]+)+)`")  # `dir/file.py`, `pkg/mod.attr`


def exists(name: str) -> bool:
    """``a/b.py``, a directory, or ``a/b.attr`` (an attribute of module a/b.py)."""
    path = ROOT / name.rstrip("/")
    if path.exists():
        return True
    module, _, attr = name.rpartition(".")
    source = ROOT / f"{module}.py"
    return bool(module) and source.is_file() and re.search(
        rf"^\s*(def|class)\s+{re.escape(attr)}\b|^\s*{re.escape(attr)}\s*[:=]",
        source.read_text(), re.M) is not None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_path_the_docs_name_exists(doc):
    tops = {p.name for p in ROOT.iterdir() if not p.name.startswith(".")}
    named = {m.group(1).split(":")[0] for m in NAMED.finditer(doc.read_text())}
    missing = sorted(n for n in named if n.split("/")[0] in tops and not exists(n))
    assert missing == [], f"{doc.name} names what is not there: {missing}"


# Each kind of record (a repository of the store) is written by its domain operations only
# (the modules named here): a second writer is how a rule gets worked out twice and drifts.
WRITERS = {
    "runs": ({"create_run", "update_run", "set_run_status_if", "update_result"},
             {"checkpoints/orchestrator.py", "checkpoints/runs.py", "checkpoints/background.py"}),
    "approvals": ({"open_approval_request", "close_approval_requests", "add_approval"},
                  {"checkpoints/approvals.py", "checkpoints/orchestrator.py", "checkpoints/runs.py"}),
    "audit_log": ({"audit"}, {"checkpoints/audit.py"}),
    "events": ({"add_event"}, {"checkpoints/base.py", "checkpoints/runs.py",
                               "checkpoints/orchestrator.py", "checkpoints/approvals.py",
                               "checkpoints/background.py"}),
    "leases": ({"acquire_lease", "renew_lease", "clear_leases", "release_lease"},
               {"checkpoints/orchestrator.py", "checkpoints/background.py"}),
    "platform_records": ({"put_app", "delete_app", "put_job", "put_run"},
                         {"cluster/platforms/local.py", "cluster/platforms/ssh/platform.py",
                          "cluster/platforms/recorded_jobs.py"}),
    "idempotency": ({"claim", "answer", "release"}, {"api_server/idempotency.py"}),
    "deliveries": ({"add_delivery", "update_delivery"}, {"checkpoints/notifications.py"}),
}


def store_writes(tree: ast.AST) -> set[tuple[str, str]]:
    """(repository, method) of the calls a module makes on a store's repositories
    (``store.runs.create_run(...)``, ``self.store.kv.set(...)``, ``ctx.store...``)."""
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and isinstance(node.func.value, ast.Attribute):
            repository = node.func.value
            owner = repository.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name == "store":
                called.add((repository.attr, node.func.attr))
    return called


@pytest.mark.parametrize("kind", WRITERS)
def test_each_kind_of_record_has_its_writers_only(kind):
    methods, allowed = WRITERS[kind]
    writers = {str(path.relative_to(ROOT)) for path in modules(*PRODUCT)
               if not str(path.relative_to(ROOT)).startswith("store/")
               and {m for repo, m in store_writes(ast.parse(path.read_text()))
                    if repo == kind} & methods}
    assert writers <= allowed, f"{kind} written from {sorted(writers - allowed)}: go through " \
                               f"{sorted(allowed)}"


def test_the_writers_check_sees_the_calls_it_checks():
    calls = store_writes(ast.parse("ctx.store.approvals.add_approval(x)\nstore.kv.set(1, 2)\n"
                                   "self.store.runs.get_run(r)\n"))
    assert calls == {("approvals", "add_approval"), ("kv", "set"), ("runs", "get_run")}


# -- no code outside a platform's own modules names a platform ------------------------------
PLATFORM_NAMES = re.compile(r"\b(cml|cdsw)", re.IGNORECASE)
# names a contract keeps (with why): the seed tool's API fields its clients read
KEPT = {("api_server/resources/nodes/schemas.py", "cml_app_id"),
        ("api_server/resources/nodes/schemas.py", "cml_app_name")}


def platform_names(tree: ast.AST) -> set[str]:
    """Identifiers, attributes, imports and string constants (not docstrings, not comments)
    that name a platform."""
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                                       ast.AsyncFunctionDef))
                  and ast.get_docstring(node, clean=False) is not None}
    found = set()
    for node in ast.walk(tree):
        text = (node.value if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docstrings else
                node.id if isinstance(node, ast.Name) else
                node.attr if isinstance(node, ast.Attribute) else
                node.module if isinstance(node, ast.ImportFrom) else None)
        if text and PLATFORM_NAMES.search(text):
            found.add(text)
    return found


def test_no_code_outside_a_platforms_modules_names_a_platform():
    """Checkpoints, the engine, the API, the CLI and the launcher ask a platform what it can
    do and where its facts are (``cluster/platforms/base.py``), never which one it is."""
    named = {}
    for path in modules(*PRODUCT):
        where = str(path.relative_to(ROOT))
        if where.startswith("cluster/platforms/"):
            continue
        names = {n for n in platform_names(ast.parse(path.read_text())) if (where, n) not in KEPT}
        if names:
            named[where] = sorted(names)
    assert named == {}, f"ask the platform instead: {named}"
