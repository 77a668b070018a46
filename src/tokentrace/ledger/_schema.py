"""The ledger's schema: version 1 as created, and the migrations that bring it to the current
version (documented in docs/ledger.md). Column lists are read from here, the one place they
are written.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 6

SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    span_id TEXT PRIMARY KEY,
    trace_id TEXT NOT NULL,
    task_id TEXT,
    task_name TEXT,
    root_id TEXT,
    root_name TEXT,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    day TEXT NOT NULL,
    operation TEXT,
    provider TEXT,
    request_model TEXT,
    response_model TEXT,
    model TEXT NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cache_read_tokens INTEGER,
    cache_write_tokens INTEGER,
    cache_write_1h_tokens INTEGER,
    reasoning_tokens INTEGER,
    cost_usd TEXT,
    cost_pico INTEGER,
    cost_status TEXT NOT NULL,
    cost_source TEXT,
    usage_estimated INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    attempts TEXT,
    error_type TEXT,
    stream_end TEXT,
    feature TEXT,
    user_id TEXT,
    tenant TEXT,
    service TEXT,
    environment TEXT
);
CREATE INDEX IF NOT EXISTS calls_task ON calls (task_id);
CREATE INDEX IF NOT EXISTS calls_start ON calls (start_ns);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    parent_id TEXT,
    root_id TEXT NOT NULL,
    root_name TEXT,
    name TEXT NOT NULL,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    day TEXT NOT NULL,
    outcome TEXT,
    error_type TEXT,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd TEXT NOT NULL DEFAULT '0',
    llm_calls INTEGER NOT NULL DEFAULT 0,
    retries INTEGER NOT NULL DEFAULT 0,
    unpriced_calls INTEGER NOT NULL DEFAULT 0,
    estimated_calls INTEGER NOT NULL DEFAULT 0,
    feature TEXT,
    user_id TEXT,
    tenant TEXT,
    service TEXT,
    environment TEXT,
    attributes TEXT
);
CREATE INDEX IF NOT EXISTS tasks_root ON tasks (root_id);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks (parent_id);
CREATE INDEX IF NOT EXISTS tasks_start ON tasks (start_ns);
"""

# Migrations from version N to N+1, applied in order inside one transaction each. A new
# ledger is created at version 1 and migrated, so every ledger has the same columns in order.
MIGRATIONS: dict[int, str] = {
    # 2: waste, the cost split by token kind, units of work and budgets (docs/ledger.md).
    1: """
ALTER TABLE calls ADD COLUMN duplicate INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN units TEXT;
ALTER TABLE tasks ADD COLUMN duplicate_calls INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN duplicate_cost_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN retry_waste_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN retry_waste_cost_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN cost_input_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN cost_cache_read_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN cost_cache_write_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN cost_output_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN cost_other_usd TEXT NOT NULL DEFAULT '0';
ALTER TABLE tasks ADD COLUMN budget_exceeded INTEGER;
ALTER TABLE tasks ADD COLUMN budget_blocked_calls INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS tasks_name ON tasks (name)
""",
    # 3: what a call's usage has beyond the token buckets, for re-pricing (docs/ledger.md).
    2: """
ALTER TABLE calls ADD COLUMN web_search_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN file_search_requests INTEGER NOT NULL DEFAULT 0;
ALTER TABLE calls ADD COLUMN modalities TEXT
""",
    # 4: the rest of what pricing a call reads, so that re-pricing one under its own model gives
    # back what was recorded (docs/ledger.md).
    3: """
ALTER TABLE calls ADD COLUMN base_url TEXT;
ALTER TABLE calls ADD COLUMN service_tier TEXT;
ALTER TABLE calls ADD COLUMN iterations TEXT;
ALTER TABLE calls ADD COLUMN billed_input_tokens INTEGER;
ALTER TABLE calls ADD COLUMN billed_output_tokens INTEGER
""",
    # 5: indexes for a report or a dashboard narrowed to one feature, user or tenant, which
    # would otherwise read every call (docs/ledger.md); no column changes.
    4: """
CREATE INDEX IF NOT EXISTS calls_feature ON calls (feature);
CREATE INDEX IF NOT EXISTS calls_user ON calls (user_id);
CREATE INDEX IF NOT EXISTS calls_tenant ON calls (tenant)
""",
    # 6: the counters of limits across replicas (docs/guards.md): one row per limit, value of its
    # dimension and fixed window, updated in place, so a reservation is one row's update.
    5: """
CREATE TABLE IF NOT EXISTS limit_usage (
    limit_key TEXT NOT NULL,
    value TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    calls INTEGER NOT NULL DEFAULT 0,
    tokens INTEGER NOT NULL DEFAULT 0,
    cost_pico INTEGER NOT NULL DEFAULT 0,
    reserved_tokens INTEGER NOT NULL DEFAULT 0,
    reserved_pico INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (limit_key, value, window_start)
)
""",
}


def _columns(table: str) -> tuple[str, ...]:
    """The columns of ``table`` in order (read from the schema and its migrations, where they are written)."""
    body = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\);", SCHEMA_V1, re.S)
    assert body is not None
    names = [line.split()[0] for line in body.group(1).strip().splitlines()]
    for version in sorted(MIGRATIONS):
        names += re.findall(rf"ALTER TABLE {table} ADD COLUMN (\w+)", MIGRATIONS[version])
    return tuple(names)


def _added_defaults(table: str) -> dict[str, str]:
    """The columns migrations add to ``table``, with the SQL value their migration gives old rows."""
    added: dict[str, str] = {}
    for version in sorted(MIGRATIONS):
        for name, rest in re.findall(rf"ALTER TABLE {table} ADD COLUMN (\w+) ([^;\n]*)", MIGRATIONS[version]):
            default = re.search(r"DEFAULT ('[^']*'|\S+)", rest)
            added[name] = default.group(1) if default else "NULL"
    return added


CALL_COLUMNS = _columns("calls")
TASK_COLUMNS = _columns("tasks")
ADDED_DEFAULTS = {"calls": _added_defaults("calls"), "tasks": _added_defaults("tasks")}
"""Per table, each column a migration adds and the value it gives the rows already there."""
