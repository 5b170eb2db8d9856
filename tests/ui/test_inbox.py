"""The web approval inbox in a real headless browser: Debian's Chromium driven by Playwright.
An approval given in the browser unblocks a waiting CLI run, a rejection ends it, a viewer
gets no enabled button, a destructive plan is approved only after its name is typed, and a
live run's timeline updates without a reload. With RAYDEPLOY_SCREENSHOTS=1 each page is
saved to docs/screenshots/ (for the README).

Skipped, with the reason, when Chromium or Playwright is missing (``make browser``)."""
from __future__ import annotations

import os
import shutil
from contextlib import contextmanager

import pytest
import requests

from tests.api_server.conftest import awaiting
from tests.conftest import ROOT, ApiServer, base_config, clean_env, spawn_cli, wait_until, write_config

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
TOKENS = ("root:admin:admin-token-0123456789,vera:viewer:viewer-token-0123456789,"
          "olga:operator:operator-token-01234567,bob:approver:bob-token-012345678901")
BOB, VERA = "bob-token-012345678901", "viewer-token-0123456789"
SHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed (make browser: Debian's package)")
    playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    tab = context.new_page()
    errors = []
    tab.on("pageerror", lambda e: errors.append(str(e)))
    yield tab
    context.close()
    assert errors == [], errors  # no script error on any page


@pytest.fixture
def server(tmp_path):
    config = write_config(tmp_path / "c.yaml", base_config(
        tmp_path / "state", approvals={"required": ["project_setup"]}))
    api = ApiServer(config, env=clean_env(RAYDEPLOY_API_TOKENS=TOKENS))
    yield api, config
    api.stop()


def sign_in(page, api, token):
    page.goto(f"{api.url}/ui/")
    page.fill("#token", token)
    page.click("#signin")
    page.wait_for_selector("#who:has-text('(')")


def shot(page, name):
    if os.environ.get("RAYDEPLOY_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"))


@contextmanager
def waiting_run(api, config):
    """A CLI run waiting at its project_setup gate; killed at the end if still running."""
    run = spawn_cli("--checkpoint", "project_setup", config=config)
    try:
        headers = {"Authorization": f"Bearer {BOB}"}
        wait_until(lambda: requests.get(f"{api.url}/api/v1/approvals/project_setup",
                                        headers=headers, timeout=5).json()["awaiting"]
                   or run.poll() is not None, 30, "the CLI run to wait at its gate", interval=0.2)
        assert run.poll() is None, run.stdout.read()
        yield run
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()


def test_an_approval_in_the_browser_unblocks_a_waiting_cli_run(page, server):
    api, config = server
    with waiting_run(api, config) as run:
        sign_in(page, api, BOB)
        card = page.locator("article.gate[data-checkpoint=project_setup]")
        card.wait_for()
        assert "create project" in card.inner_text() and "0 of 1 approval" in card.inner_text()
        card.locator("input.reason").fill("checked the plan")
        card.locator("button.approve").click()
        page.wait_for_selector("article.gate .result:has-text('approved by bob')")
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 0 and "approved by bob" in output, output


def test_a_rejection_in_the_browser_ends_the_run(page, server):
    api, config = server
    with waiting_run(api, config) as run:
        sign_in(page, api, BOB)
        card = page.locator("article.gate[data-checkpoint=project_setup]")
        card.locator("input.reason").fill("not tonight")
        card.locator("button.reject").click()
        output, _ = run.communicate(timeout=60)
        assert run.returncode == 4 and "not tonight" in output, output


def test_a_viewer_sees_no_enabled_approve_button(page, server):
    api, _ = server
    from store import Store
    awaiting(Store(api_state(server)), checkpoint="worker_launch", requester="olga")
    sign_in(page, api, VERA)
    card = page.locator("article.gate[data-checkpoint=worker_launch]")
    card.wait_for()
    assert card.locator("button.approve").is_disabled()
    assert card.locator("button.reject").is_disabled()
    assert "viewers cannot decide" in card.inner_text()


def test_a_destructive_plan_is_approved_only_after_its_name_is_typed(page, server):
    api, _ = server
    from store import Store
    store = Store(api_state(server))
    awaiting(store, checkpoint="worker_launch", requester="olga")
    sign_in(page, api, BOB)
    card = page.locator("article.gate[data-checkpoint=worker_launch]")
    card.wait_for()
    assert "DESTRUCTIVE" in card.inner_text() and "delete worker w-2" in card.inner_text()
    shot(page, "inbox")
    approve = card.locator("button.approve")
    assert approve.is_disabled()
    card.locator("input.confirm").fill("worker_lunch")
    assert approve.is_disabled()
    card.locator("input.confirm").fill("worker_launch")
    assert approve.is_enabled()
    approve.click()
    page.wait_for_selector("article.gate .result:has-text('approved by bob')")
    record = store.approvals.decisions()[0]
    assert record.approver == "bob" and record.acknowledge_risks and record.source == "api"


def test_the_inbox_decides_only_on_the_run_and_plan_it_shows(page, server):
    """Another run's request at the same gate (here even with the same fingerprint) closes
    the one on screen: approving the card then is refused (409, naming both runs), and
    nothing is recorded for either run."""
    api, _ = server
    from store import Store
    store = Store(api_state(server))
    first = awaiting(store, checkpoint="worker_launch", fingerprint="fp-same", requester="olga")
    sign_in(page, api, BOB)
    card = page.locator("article.gate[data-checkpoint=worker_launch]")
    card.wait_for()
    assert f"run {first}" in card.inner_text() and "plan fp-same" in card.inner_text()
    second = awaiting(store, checkpoint="worker_launch", fingerprint="fp-same",
                      requester="olga")  # closes the first run's request
    card.locator("input.confirm").fill("worker_launch")
    card.locator("button.approve").click()
    refused = card.locator(".result.error")
    refused.wait_for()
    assert first in refused.inner_text() and second in refused.inner_text()
    assert store.approvals.decisions() == []
    assert [e.result for e in store.audit_log.audit_events(action="approval")] == ["refused"]


def test_the_inbox_shows_what_a_plan_changes_a_setting_a_line(page, server):
    from checkpoints.plan import Action, Kind, Plan
    from store import Store
    store = Store(api_state(server))
    run = store.runs.create_run("deploy", ["serve_deploy"], "olga", "cli", status="awaiting_approval")
    plan = Plan("serve_deploy", (Action(Kind.UPDATE, "app", "hello", {
        "import_path": "examples.apps.hello:app", "route_prefix": "/hello",
        "changes": {"args.greeting": '"hi" -> "hello"',
                    "runtime_env.env_vars.API_TOKEN": "changed"}}),))
    store.approvals.open_approval_request(run.id, "serve_deploy", plan.fingerprint, plan.to_dict(), False,
                                ["approvals.required lists this checkpoint"], "olga")
    api, _ = server
    sign_in(page, api, BOB)
    card = page.locator("article.gate[data-checkpoint=serve_deploy]")
    card.wait_for()
    lines = card.locator("ul.actions li .change").all_inner_texts()
    assert lines == ['args.greeting: "hi" -> "hello"', "runtime_env.env_vars.API_TOKEN: changed"]
    assert "changes=" not in card.inner_text()


def test_a_page_whose_data_comes_late_does_not_replace_the_page_opened_after_it(page, server):
    """The inbox asks the API once per waiting gate: slow, it must not replace the run page
    the user went on to (seen: a run's timeline replaced by the inbox under load)."""
    api, _ = server
    from store import Store
    run = Store(api_state(server)).runs.create_run("deploy", ["project_setup"], "olga", "cli")
    sign_in(page, api, BOB)
    page.evaluate("""() => {  // the inbox's first call answers 1.5 s late
        const plain = window.fetch;
        window.fetch = (url, options) => String(url).includes("state=pending")
            ? new Promise((done) => setTimeout(done, 1500)).then(() => plain(url, options))
            : plain(url, options);
    }""")
    page.evaluate("location.hash = '#/inbox'")
    page.evaluate(f"location.hash = '#/runs/{run.id}'")
    page.locator(f"h1:has-text('Run {run.id}')").wait_for()
    page.wait_for_timeout(2500)  # the inbox's answer came meanwhile
    assert page.locator(f"h1:has-text('Run {run.id}')").count() == 1
    assert page.locator("h1:has-text('Approvals waiting')").count() == 0


def test_a_live_runs_timeline_updates_without_reload(page, server):
    api, config = server
    with waiting_run(api, config) as run:
        run_id = requests.get(f"{api.url}/api/v1/deployments?limit=1", timeout=5, headers={
            "Authorization": f"Bearer {BOB}"}).json()["deployments"][0]["id"]
        sign_in(page, api, BOB)
        page.goto(f"{api.url}/ui/#/runs/{run_id}")
        row = page.locator("#timeline tr[data-checkpoint=project_setup]")
        row.locator("td:has-text('awaiting_approval')").wait_for()
        page.evaluate("window.__same_page = true")  # gone if the page reloads
        gate = requests.get(f"{api.url}/api/v1/approvals/project_setup", timeout=5,
                            headers={"Authorization": f"Bearer {BOB}"}).json()
        decided = requests.post(f"{api.url}/api/v1/approvals/project_setup", timeout=10,
                                json={"decision": "approve", "run_id": gate["run_id"],
                                      "plan_fingerprint": gate["plan_fingerprint"]},
                                headers={"Authorization": f"Bearer {BOB}"})
        assert decided.status_code == 201
        row.locator("td:has-text('succeeded')").wait_for(timeout=60_000)
        page.locator("#run-status:has-text('succeeded')").wait_for(timeout=60_000)
        assert page.evaluate("window.__same_page") is True
        assert "approval" in page.inner_text("#events")
        shot(page, "run-timeline")
        page.goto(f"{api.url}/ui/#/runs")
        page.locator(f"#runs a:has-text('{run_id}')").wait_for()
        page.goto(f"{api.url}/ui/#/audit?action=approval")
        page.locator("#audit td:has-text('approval.approve')").wait_for()
        shot(page, "audit")
        run.communicate(timeout=30)


def test_the_pages_send_a_strict_content_security_policy(server):
    api, _ = server
    for path in ("/ui/", "/ui/app.js"):
        answer = requests.get(api.url + path, timeout=5)
        assert answer.status_code == 200
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
    escape = requests.get(api.url + "/ui/..%2f..%2f..%2fREADME.md", timeout=5)  # no way out
    assert escape.status_code == 404 and "raydeploy" not in escape.text
    assert requests.get(api.url + "/api/v1/whoami", timeout=5).status_code == 401


def api_state(server):
    _, config = server
    return config.parent / "state"


def test_the_cluster_page_shows_nodes_and_serve_replicas(page, cluster):
    api = ApiServer(cluster.config_path)  # loopback, no tokens: no sign-in
    try:
        page.goto(f"{api.url}/ui/#/cluster")
        page.locator("#nodes td:has-text('ALIVE')").first.wait_for()
        rows = page.locator("#nodes tr").count() - 1
        assert rows == len(cluster.alive_nodes()) == 3
        app = page.locator("div.app:has-text('hello')")
        app.wait_for()
        assert "RUNNING" in app.inner_text()
        app.locator("li.replica:has-text('RUNNING')").first.wait_for()  # its replica, by node
        shot(page, "cluster")
    finally:
        api.stop()
