"""``tokentrace ui`` in a real browser (headless Chromium through Playwright), and ``report --html``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tokentrace._cli.common import dollars
from tokentrace.ledger import _writer as _ledger
from tokentrace.ledger._schema import CALL_COLUMNS

CHROMIUM = os.environ.get("TOKENTRACE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL = "install them with: apt-get install -y chromium && pip install 'tokentrace[test]' (playwright)"


def tokentrace(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tokentrace", *args], capture_output=True, text=True, timeout=120
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def report_json(ledger: Path, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        tokentrace("report", "--ledger", str(ledger), "--format", "json", *args).stdout
    )
    return rows


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ledger = tmp_path_factory.mktemp("ui") / "demo.db"
    ledger.with_suffix(".out").write_text(tokentrace("demo", "--ledger", str(ledger)).stdout)
    return ledger


class Server:
    def __init__(self, ledger: Path, *args: str) -> None:
        self.ledger = ledger
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tokentrace", "ui", "--ledger", str(ledger), "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the socket is bound
        found = re.search(r"http://\S+/", line)
        if not found:
            self.stop()
            raise AssertionError(f"no URL from tokentrace ui: {line!r} {self.proc.stderr.read()!r}")  # type: ignore[union-attr]
        self.url = found.group(0)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=20)


@pytest.fixture
def server(demo: Path, tmp_path: Path) -> Iterator[Server]:
    ledger = tmp_path / "ledger.db"
    shutil.copy(demo, ledger)
    running = Server(ledger, "--refresh", "0.3")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(f"Playwright is not installed: {INSTALL}")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # Tall enough for every section to be in view: the page loads a section when it comes into view.
    context = browser.new_context(viewport={"width": 1280, "height": 5000})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert not errors, errors


def loaded(page: Any) -> None:
    """Wait until the dashboard's script has loaded every section and the filters' choices."""
    page.wait_for_selector("main#content[aria-busy=false]", state="attached")


def visit(page: Any, url: str) -> None:
    """Open the dashboard at ``url`` and wait for its sections."""
    page.goto(url)
    loaded(page)


def total_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in rows if "TOTAL" in r.values())


def test_totals_equal_the_reports(server: Server, page: Any) -> None:
    """The page's total and each breakdown row are the JSON report's amounts, to the last digit."""
    visit(page, server.url)
    total = total_of(report_json(server.ledger))
    cost = page.locator("#total-cost")
    assert cost.get_attribute("data-usd") == total["cost_usd"]
    assert cost.inner_text() == dollars(Decimal(total["cost_usd"]))
    assert page.locator("#total-calls").inner_text() == f"{total['calls']:,}"
    for dim in ("task", "feature", "user", "tenant", "model"):
        rows = [r for r in report_json(server.ledger, "--by", dim) if "TOTAL" not in r.values()]
        shown = page.locator(f"#by-{dim} tbody tr:not(.more)").all()
        assert len(shown) == len(rows)
        for row, tr in zip(rows, shown, strict=True):
            assert tr.locator("td.key").inner_text() == (row[dim] if row[dim] is not None else "-")
            assert tr.locator(".usd").first.get_attribute("data-usd") == row["cost_usd"]


def test_sections_below_the_window_load_when_scrolled_to(server: Server, browser: Any) -> None:
    """In an ordinary window the first screen's sections load at once and the others when they
    come into view; each asks the server for its section alone."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        tab = context.new_page()
        asked: list[str] = []
        tab.on(
            "request",
            lambda r: (
                asked.append(r.url.split("/section/")[1].split("?")[0]) if "/section/" in r.url else None
            ),
        )
        tab.goto(server.url)
        loaded(tab)
        first = set(asked)
        assert {"kpis", "success", "time", "by-task", "waste"} <= first
        assert not {"by-tenant", "by-model", "runs", "outcomes"} & first
        assert tab.locator('.slot[data-section="outcomes"] #outcomes').count() == 0
        tab.locator('.slot[data-section="outcomes"]').scroll_into_view_if_needed()
        tab.locator("#outcomes").wait_for()
        assert "outcomes" in asked
        assert len(asked) == len(set(asked))
    finally:
        context.close()


def test_charts_render(server: Server, page: Any) -> None:
    """The cost-over-time chart has a bar per model with spend, and the tables have share bars."""
    visit(page, server.url)
    bars = page.locator("#chart-time rect.bar")
    models = [r for r in report_json(server.ledger, "--by", "hour,model") if "TOTAL" not in r.values()]
    priced = [r for r in models if r["cost_usd"] != "0"]
    assert bars.count() == len(priced) > 0
    assert {b.get_attribute("data-usd") for b in bars.all()} == {r["cost_usd"] for r in priced}
    assert page.locator("#chart-time").bounding_box()["height"] > 100
    page.select_option("select[name=bucket]", "hour")
    page.wait_for_url(re.compile(r"bucket=hour"))
    loaded(page)
    assert page.locator("#chart-time rect.bar").count() == len(priced)


def test_filters_change_the_numbers(server: Server, page: Any) -> None:
    """Picking a feature and a time range shows what the report gives for the same filters."""
    visit(page, server.url)
    everything = page.locator("#total-cost").get_attribute("data-usd")
    features = page.locator("select[name=feature] option").all_inner_texts()[1:]
    assert features == sorted(r["feature"] for r in report_json(server.ledger, "--by", "feature")[:-1])
    totals = {f: total_of(report_json(server.ledger, "--where", f"feature={f}")) for f in features}
    feature = next(f for f in features if totals[f]["cost_usd"] != everything)
    page.select_option("select[name=feature]", feature)
    page.wait_for_url(re.compile(r"feature="))
    loaded(page)
    assert page.locator("#total-cost").get_attribute("data-usd") == totals[feature]["cost_usd"]
    page.fill("input[name=since]", "2100-01-01")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"since="))
    loaded(page)
    assert page.locator("#total-cost").get_attribute("data-usd") == "0"
    assert "No calls" in page.locator("#chart-time").text_content()


def test_whatif_equals_the_command(server: Server, page: Any) -> None:
    """A what-if model gives the totals ``tokentrace whatif`` gives."""
    visit(page, server.url + "?whatif=gpt-4o-mini")
    rows = json.loads(
        tokentrace(
            "whatif", "--ledger", str(server.ledger), "--model", "gpt-4o-mini", "--format", "json"
        ).stdout
    )
    total = total_of(rows)
    cells = page.locator("#whatif tfoot .usd").all()
    assert [c.get_attribute("data-usd") for c in cells] == [
        total["current_usd"],
        total["whatif_usd"],
        total["difference_usd"],
    ]


def test_a_run_tree_opens(server: Server, page: Any) -> None:
    """The costliest run opens as the tree ``tokentrace show`` draws, each branch with its cost."""
    visit(page, server.url)
    run = page.locator("details.run").first
    task_id = run.get_attribute("data-task-id")
    assert not run.locator("li.call").first.is_visible()
    run.locator("summary").click()
    assert run.locator("li.call").first.is_visible()
    tree = json.loads(tokentrace("show", task_id, "--ledger", str(server.ledger), "--format", "json").stdout)

    def branches(node: dict[str, Any]) -> list[str]:
        return [node["branch_cost_usd"], *(c for child in node["children"] for c in branches(child))]

    shown = run.locator("li.task > .usd").all()
    assert [s.get_attribute("data-usd") for s in shown] == branches(tree)
    assert run.locator("li.call").count() == tree["branch_llm_calls"]


def test_it_refreshes_while_the_application_writes(server: Server, page: Any) -> None:
    """A call written while the page is open shows up without a reload, and an open run stays open."""
    visit(page, server.url)
    page.locator("details.run summary").first.click()
    before = report_json(server.ledger)
    conn = _ledger.connect(server.ledger)
    try:
        row = dict(
            zip(CALL_COLUMNS, conn.execute("SELECT * FROM calls WHERE cost_pico > 0").fetchone(), strict=True)
        )
        row.update(span_id="f" * 16, cost_pico=row["cost_pico"] * 7, cost_usd=None, feature="late")
        _ledger.write(conn, [tuple(row[c] for c in CALL_COLUMNS)], [])
        after = total_of(report_json(server.ledger))
        assert after["cost_usd"] != total_of(before)["cost_usd"]
        page.wait_for_function(
            "usd => document.querySelector('#total-cost').dataset.usd === usd",
            arg=after["cost_usd"],
            timeout=10_000,
        )
        assert page.locator("details.run[open]").count() == 1
    finally:
        conn.close()


def test_the_ledger_is_not_written(demo: Path, tmp_path: Path, page: Any) -> None:
    """Browsing every view leaves the ledger byte for byte as it was, with no file beside it."""
    ledger = tmp_path / "ledger.db"
    shutil.copy(demo, ledger)
    before = digest(ledger)
    running = Server(ledger)
    try:
        visit(page, running.url)
        page.locator("details.run summary").first.click()
        visit(page, running.url + "?bucket=hour&split=feature&whatif=gpt-4o-mini&since=7d")
        assert page.locator("#chart-time rect.bar").count() > 0
    finally:
        running.stop()
    assert digest(ledger) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.db"]


def test_html_report_is_one_file(demo: Path, tmp_path: Path, page: Any) -> None:
    """``report --html`` writes one file with no external URL, whose numbers are the report's."""
    out = tmp_path / "report.html"
    tokentrace("report", "--ledger", str(demo), "--html", str(out))
    html = out.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<script" not in html
    assert "<link" not in html
    page.route(
        "**/*",
        lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_(),
    )
    page.goto(out.as_uri())
    total = total_of(report_json(demo))
    assert page.locator("#total-cost").get_attribute("data-usd") == total["cost_usd"]
    assert page.locator("#chart-time rect.bar").count() > 0
    page.locator("details.run summary").first.click()
    assert page.locator("details.run li.call").first.is_visible()


def test_html_report_keeps_the_filters(demo: Path, tmp_path: Path) -> None:
    """``--where`` and ``--since`` narrow the HTML report as they narrow the table."""
    out = tmp_path / "report.html"
    tokentrace("report", "--ledger", str(demo), "--html", str(out), "--where", "model=gpt-4o-2024-08-06")
    total = total_of(report_json(demo, "--where", "model=gpt-4o-2024-08-06"))
    assert f'id="total-cost" data-usd="{total["cost_usd"]}"' in out.read_text()
    assert "has no model" in out.read_text()  # runs are per task run: said, not shown wrong


def test_a_public_bind_needs_the_flag(demo: Path) -> None:
    """Another interface than loopback is refused without the flag, and warned about with it."""
    refused = tokentrace("ui", "--ledger", str(demo), "--host", "0.0.0.0", ok=False)
    assert refused.returncode == 2
    assert "--i-know-this-exposes-spend" in refused.stderr
    running = Server(demo, "--host", "0.0.0.0", "--i-know-this-exposes-spend")
    try:
        assert running.url.startswith("http://0.0.0.0:")
    finally:
        running.stop()
    assert running.proc.stderr is not None
    assert "WARNING" in running.proc.stderr.read()


def test_loopback_answers_loopback_names_only(server: Server) -> None:
    """Bound to 127.0.0.1, the server refuses another Host (a rebound DNS name)."""
    import http.client

    port = int(server.url.rsplit(":", 1)[1].strip("/"))
    for host, status in (("127.0.0.1", 200), ("localhost", 200), ("attacker.example", 400)):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/", headers={"Host": host})
        assert conn.getresponse().status == status, host
        conn.close()


def test_without_the_extra(demo: Path) -> None:
    """Without its libraries, ``tokentrace ui`` says what to install and exits 2; the core never
    imports them."""
    code = (
        "import sys; sys.modules['starlette'] = None; sys.modules['uvicorn'] = None\n"
        "from tokentrace._cli.main import main\n"
        f"sys.exit(main(['ui', '--ledger', {str(demo)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "pip install 'tokentrace[ui]'" in proc.stderr
    check = (
        "import sys, tokentrace, tokentrace._cli.main; assert not {'starlette', 'uvicorn'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", check], check=True, timeout=60)


def test_demo_points_to_the_dashboard(demo: Path) -> None:
    """The demo ends by saying how to see its ledger as charts."""
    said = demo.with_suffix(".out").read_text()
    assert "pip install 'tokentrace[ui]' && tokentrace ui" in said.replace("\\\n", "")
