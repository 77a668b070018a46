"""The ``tokentrace`` command on damaged ledgers and bad arguments: one line on stderr saying what
is wrong and what to do, exit code 2, never a traceback. Each case runs the installed command in
a subprocess, on real SQLite files damaged for real."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.proc import ROOT, run_python
from tests.test_cli import EXE
from tests.test_ledger import AGENT

Arg = str | bytes


def run(*args: Arg, strict: bool = False) -> subprocess.CompletedProcess[str]:
    """``tokentrace ARGS`` (bytes pass as raw argv bytes), in production mode unless ``strict``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "TOKENTRACE_"))}
    if strict:
        env["TOKENTRACE_STRICT"] = "1"
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, errors="replace", env=env, cwd=ROOT, timeout=120
    )


def refused(*args: Arg) -> str:
    """The one line ``tokentrace ARGS`` writes to stderr, checking it exits 2 with nothing else."""
    proc = run(*args)
    assert (proc.returncode, proc.stdout) == (2, ""), proc.stderr
    assert proc.stderr.startswith("tokentrace: "), proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    return proc.stderr.rstrip("\n")


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "agent.db"
    run_python(AGENT, env={"TOKENTRACE_LEDGER": str(path)})
    return path


@pytest.fixture(scope="module")
def task_id(ledger: Path) -> str:
    with sqlite3.connect(ledger) as conn:
        (found,) = conn.execute("SELECT task_id FROM tasks WHERE parent_id IS NULL LIMIT 1").fetchone()
    return str(found)


def damaged(ledger: Path, folder: Path, name: str, *sql: str) -> Path:
    """A copy of ``ledger`` changed by ``sql`` (run by SQLite itself, so the file stays valid)."""
    copy = folder / name
    shutil.copy(ledger, copy)
    conn = sqlite3.connect(copy)
    for statement in sql:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return copy


def garbled(ledger: Path, folder: Path) -> Path:
    """A copy of ``ledger`` whose pages after the meta table's, up to the last, are garbage bytes."""
    copy = folder / "garbled.db"
    shutil.copy(ledger, copy)
    with sqlite3.connect(copy) as conn:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (pages,) = conn.execute("PRAGMA page_count").fetchone()
        (meta_last,) = conn.execute(
            "SELECT MAX(rootpage) FROM sqlite_master WHERE tbl_name = 'meta'"
        ).fetchone()
    conn.close()
    assert pages - meta_last >= 4  # pages of calls and tasks lie between the meta table and the end
    with copy.open("r+b") as file:
        for page in range(meta_last + 1, pages):  # 1-based page numbers; the last page is left
            file.seek((page - 1) * page_size)
            file.write(b"\xde\xad\xbe\xef" * (page_size // 4))
    return copy


CORRUPT = (
    "database disk image is malformed; the file is damaged: restore it from a backup, or rescue its rows "
    "with the sqlite3 shell's .recover"
)
NOT_LEDGER = (
    "it lacks tables or columns of a tokentrace ledger (another program's file, or changed by hand): "
    "check --ledger"
)
READERS = [
    ("report",),
    ("outcomes",),
    ("tasks",),
    ("show", "{task}"),
    ("whatif", "--model", "gpt-4o-mini"),
    ("export",),
    ("export", "--table", "tasks"),
]


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_ledger_with_garbage_pages_gets_one_line(
    command: tuple[str, ...], ledger: Path, task_id: str, tmp_path: Path
) -> None:
    """Every command that reads a ledger whose middle pages are garbage says it is damaged and how to
    recover it, with exit code 2."""
    path = garbled(ledger, tmp_path)
    args = [a.format(task=task_id) for a in command]
    assert refused(*args, "--ledger", str(path)) == f"tokentrace: cannot read ledger {path}: {CORRUPT}"


@pytest.mark.parametrize(
    ("sql", "command", "reason"),
    [
        ("DROP TABLE tasks", ("tasks",), "no such table: tasks"),
        ("DROP TABLE tasks", ("outcomes",), "no such table: tasks"),
        ("DROP TABLE tasks", ("show", "{task}"), "no such table: tasks"),
        ("DROP TABLE calls", ("report",), "no such table: calls"),
        ("DROP TABLE calls", ("export",), "no such table: calls"),
        ("ALTER TABLE calls DROP COLUMN cost_pico", ("report",), "no such column: cost_pico"),
        (
            "ALTER TABLE calls DROP COLUMN cost_usd",
            ("whatif", "--model", "gpt-4o"),
            "no such column: cost_usd",
        ),
        ("ALTER TABLE calls DROP COLUMN cost_pico", ("show", "{task}"), "no such column: cost_pico"),
        ("ALTER TABLE tasks DROP COLUMN units", ("outcomes",), "no such column: units"),
    ],
)
def test_a_ledger_missing_a_table_or_column_gets_one_line(
    sql: str, command: tuple[str, ...], reason: str, ledger: Path, task_id: str, tmp_path: Path
) -> None:
    """A ledger missing a table or column tokentrace reads is named, with what SQLite missed."""
    path = damaged(ledger, tmp_path, "altered.db", sql)
    args = [a.format(task=task_id) for a in command]
    assert (
        refused(*args, "--ledger", str(path))
        == f"tokentrace: cannot read ledger {path}: {reason}; {NOT_LEDGER}"
    )


@pytest.mark.parametrize("command", READERS, ids=" ".join)
def test_a_ledger_whose_schema_version_is_not_a_number_gets_one_line(
    command: tuple[str, ...], ledger: Path, task_id: str, tmp_path: Path
) -> None:
    """schema_version='three' in the meta table is named as such, and the file left unchanged."""
    path = damaged(
        ledger, tmp_path, "three.db", "UPDATE meta SET value = 'three' WHERE key = 'schema_version'"
    )
    before = path.read_bytes()
    args = [a.format(task=task_id) for a in command]
    assert refused(*args, "--ledger", str(path)) == (
        f"tokentrace: cannot open ledger {path}: its meta table gives schema_version 'three', not a version "
        "number: restore the file from a backup, or point --ledger at another one"
    )
    assert path.read_bytes() == before


def test_strict_mode_keeps_the_traceback_of_a_ledger_error(ledger: Path, tmp_path: Path) -> None:
    """With TOKENTRACE_STRICT (tokentrace's own test suite) a SQLite error shows its traceback, so a
    bug in tokentrace's SQL is never passed off as a damaged ledger."""
    path = damaged(ledger, tmp_path, "altered.db", "DROP TABLE calls")
    proc = run("report", "--ledger", str(path), strict=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("Traceback")
    assert proc.stderr.rstrip().endswith("sqlite3.OperationalError: no such table: calls")


# Arguments: (argv after the command's --ledger, the whole of stderr). "{ledger}" is the ledger's path.
HELP = "(see: tokentrace {0} --help)"
BAD_ARGUMENTS: list[tuple[tuple[Arg, ...], str]] = [
    # No command, an unknown option, a bad choice.
    ((), "tokentrace: the following arguments are required: COMMAND (see: tokentrace --help)"),
    (("report", "--colour"), "tokentrace: unrecognized arguments: --colour (see: tokentrace --help)"),
    (
        ("report", "--format", "xml"),
        "tokentrace: argument --format: invalid choice: 'xml' (choose from 'table', 'json', 'csv') "
        + HELP.format("report"),
    ),
    (
        ("export", "--table", "runs"),
        "tokentrace: argument --table: invalid choice: 'runs' (choose from 'calls', 'tasks') "
        + HELP.format("export"),
    ),
    (
        ("report", "--since"),
        "tokentrace: argument --since: expected one argument " + HELP.format("report"),
    ),
    (
        ("report", "--ledger", ""),
        "tokentrace: argument --ledger: empty: give a file path " + HELP.format("report"),
    ),
    # Empty strings.
    *(
        ((command, option, ""), f"tokentrace: argument {option}: empty: give a value " + HELP.format(command))
        for command, option in [
            ("report", "--since"),
            ("report", "--until"),
            ("report", "--where"),
            ("report", "--by"),
            ("outcomes", "--by"),
            ("tasks", "--name"),
            ("whatif", "--model"),
            ("whatif", "--provider"),
            ("prices", "--service-tier"),
        ]
    ),
    *(
        (
            (command, "--ledger", " "),
            "tokentrace: argument --ledger: empty: give a file path " + HELP.format(command),
        )
        for command in ("report", "outcomes", "tasks", "whatif", "export", "demo")
    ),
    (
        ("whatif", "--prices", ""),
        "tokentrace: argument --prices: empty: give a file path " + HELP.format("whatif"),
    ),
    (("show", ""), "tokentrace: argument task_id: empty: give a value " + HELP.format("show")),
    (("prices", ""), "tokentrace: argument model: empty: give a value " + HELP.format("prices")),
    (
        ("report", "--by", ","),
        "tokentrace: --by ',' names no dimension: give one or more, separated by commas",
    ),
    # Text that is not UTF-8, passed as raw bytes.
    *(
        (
            (command, option, value),
            f"tokentrace: argument {option}: {value!r} is not UTF-8 text: give it in UTF-8, the ledger's "
            "encoding " + HELP.format(command),
        )
        for command, option, value in [
            ("report", "--where", b"user=\xff"),
            ("outcomes", "--where", b"user=\xe9l\xe8ve"),
            ("export", "--where", b"feature=\xff"),
            ("whatif", "--where", b"user=\xff"),
            ("tasks", "--name", b"r\xe9sum\xe9"),
            ("report", "--by", b"\xff"),
            ("report", "--since", b"\xff"),
            ("whatif", "--model", b"gpt-\xff"),
            ("prices", "--provider", b"open\xff"),
            ("prices", "--service-tier", b"fl\xe9x"),
        ]
    ),
    (
        ("show", b"\xff"),
        "tokentrace: argument task_id: b'\\xff' is not UTF-8 text: give it in UTF-8, the ledger's encoding "
        + HELP.format("show"),
    ),
    # Limits.
    *(
        (
            ("tasks", "--limit", value),
            f"tokentrace: argument --limit: {value!r} is not a number of rows: give a whole number from 1 up "
            + HELP.format("tasks"),
        )
        for value in ("-1", "0", "ten", "1.5", "-99999999999999999999999999999")
    ),
    # Durations and dates.
    *(
        (
            ("report", f"--since={value}"),
            f"tokentrace: cannot read time {value!r}: use a date (2026-11-01), a date and time "
            "(2026-11-01T12:00) or a span back from now (30m, 24h, 7d, 2w)",
        )
        for value in ("last tuesday", "5x", "-5d", "2026-13-01", "2026-02-30", "2026-01-01T25:00")
    ),
    (
        ("whatif", "--model", "gpt-4o-mini", "--until", "7y"),
        "tokentrace: cannot read time '7y': use a date (2026-11-01), a date and time "
        "(2026-11-01T12:00) or a span back from now (30m, 24h, 7d, 2w)",
    ),
    # --by and --where keys.
    *(
        (
            (*command, "--by", "colour"),
            "tokentrace: cannot group by colour: use any of task, root, feature, user, tenant, model, "
            "provider, environment, service, operation, day, hour",
        )
        for command in [("report",), ("whatif", "--model", "gpt-4o-mini")]
    ),
    (
        ("outcomes", "--by", "task,model"),
        "tokentrace: cannot group outcomes by model: use any of task, root, feature, user, tenant, "
        "environment, service, day",
    ),
    *(
        (
            (command, "--where", item),
            f"tokentrace: --where {item!r}: use DIMENSION=VALUE with one of task, root, feature, user, "
            "tenant, model, provider, environment, service, operation, day, hour ('-' for none)",
        )
        for command, item in [("report", "colour=red"), ("report", "feature"), ("export", "=x")]
    ),
    (
        ("outcomes", "--where", "model=gpt-4o"),
        "tokentrace: --where model=...: outcomes filter on task, root, feature, user, tenant, environment, "
        "service, day",
    ),
    *(
        (
            (*command, "--where", "model=gpt-4o"),
            f"tokentrace: --where model=...: {' '.join(command)} filters task runs on task, root, feature, "
            "user, tenant, environment, service, day",
        )
        for command in [("tasks",), ("export", "--table", "tasks")]
    ),
    # Unknown models and task ids.
    (
        ("whatif", "--model", "no-such-model"),
        "tokentrace: no price for 'no-such-model' (provider openai or anthropic): check the name with "
        "'tokentrace prices no-such-model', or name the provider with --provider, or give the rates with "
        "--prices FILE",
    ),
    (
        ("whatif", "--model", "gpt-4o", "--provider", "no-such-provider"),
        "tokentrace: no price for 'gpt-4o' (provider no-such-provider): check the name with "
        "'tokentrace prices gpt-4o', or name the provider with --provider, or give the rates with "
        "--prices FILE",
    ),
    (("whatif",), "tokentrace: whatif needs --model MODEL, --prices FILE, or both"),
    (("show", "%"), "tokentrace: no task run with id '%' in this ledger (see: tokentrace tasks)"),
    (("show", "_"), "tokentrace: no task run with id '_' in this ledger (see: tokentrace tasks)"),
    # Files.
    (
        ("whatif", "--prices", "{ledger}.missing.json"),
        "tokentrace: cannot read price file {ledger}.missing.json: No such file or directory",
    ),
]
_NO_LEDGER = {"prices", "demo"}


def _case_id(case: tuple[tuple[Arg, ...], str]) -> str:
    return " ".join(a if isinstance(a, str) else repr(a) for a in case[0]) or "(none)"


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=[_case_id(c) for c in BAD_ARGUMENTS])
def test_a_bad_argument_gets_one_line_and_exit_code_2(
    argv: tuple[Arg, ...], message: str, ledger: Path
) -> None:
    """Each option of each command refuses an empty, non-UTF-8, out-of-range or unknown value with
    one line saying what is wrong and what to do."""
    args = [a.format(ledger=ledger) if isinstance(a, str) else a for a in argv]
    if args and args[0] not in _NO_LEDGER and "--ledger" not in args:
        args[1:1] = ["--ledger", str(ledger)]
    assert refused(*args) == message.format(ledger=ledger)


def test_a_missing_or_foreign_ledger_file_gets_one_line(ledger: Path, tmp_path: Path) -> None:
    """A missing file, a folder and a file that is not SQLite are each named with what to do."""
    assert refused("report", "--ledger", str(tmp_path / "none.db")) == (
        f"tokentrace: no ledger at {tmp_path / 'none.db'}: run an instrumented program first, "
        "or pass --ledger"
    )
    text = tmp_path / "notes.txt"
    text.write_text("not a database, but long enough to be read as one's header\n" * 20)
    assert refused("tasks", "--ledger", str(text)) == (
        f"tokentrace: cannot open ledger {text}: file is not a database; it is not a SQLite database: "
        "check --ledger"
    )


def test_a_ledger_damaged_where_opening_reads_gets_what_to_do(ledger: Path, tmp_path: Path) -> None:
    """A ledger whose first pages are garbage fails when it is opened, not later: the one line
    still says what to do."""
    damaged = tmp_path / "damaged.db"
    data = bytearray(ledger.read_bytes())
    data[4096 * 2 : 4096 * 4] = b"\xff" * 8192
    damaged.write_bytes(bytes(data))
    assert refused("report", "--ledger", str(damaged)) == (
        f"tokentrace: cannot open ledger {damaged}: database disk image is malformed; the file is "
        "damaged: restore it from a backup, or rescue its rows with the sqlite3 shell's .recover"
    )


def _json(*args: Arg) -> Any:
    proc = run(*args, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_span_back_before_the_year_1_means_the_whole_ledger(ledger: Path) -> None:
    """--since 999999999d (further back than a date can be) reports every call, as a date before 1970
    does; --until 999999999d reports none."""
    everything = _json("report", "--ledger", str(ledger))
    assert everything[-1]["calls"] == 10
    for since in ("999999999d", "99999999999999999999999w", "1" * 5000 + "m", "0001-01-01"):
        assert _json("report", "--ledger", str(ledger), "--since", since) == everything
    assert _json("report", "--ledger", str(ledger), "--until", "999999999d") == []


def test_a_limit_beyond_sqlites_integers_lists_every_run(ledger: Path) -> None:
    """tasks --limit 10**30 (more than SQLite's integers hold) lists every run, as a large limit does."""
    every = _json("tasks", "--ledger", str(ledger), "--limit", "1000")
    assert len(every) == 4
    assert _json("tasks", "--ledger", str(ledger), "--limit", str(10**30)) == every
    assert _json("tasks", "--ledger", str(ledger), "--limit", "1" * 5000) == every


def test_tasks_and_export_of_tasks_apply_where(ledger: Path) -> None:
    """--where filters task runs by their own columns in tasks and export --table tasks (it was ignored)."""
    runs = _json("tasks", "--ledger", str(ledger), "--where", "task=autocomplete")
    assert [r["name"] for r in runs] == ["autocomplete"]
    lines = run("export", "--ledger", str(ledger), "--table", "tasks", "--where", "root=autocomplete").stdout
    assert [json.loads(line)["name"] for line in lines.splitlines()] == ["autocomplete"]


def test_repeated_dimensions_are_grouped_once(ledger: Path) -> None:
    """report --by task,task is report --by task (its cells used to slide under the wrong headings)."""
    once, twice = (run("report", "--ledger", str(ledger), "--by", by) for by in ("task", "task,task"))
    assert (twice.returncode, twice.stdout) == (0, once.stdout)
