"""Work functions for process-pool tests (importable by a spawned worker)."""

from __future__ import annotations

import os

import tokentrace
from tests.support.clients import Repeat, openai_client, recorded, request_kwargs

CALL = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"  # o3-mini, $0.0001452


def one_call(i: int) -> tuple[int, int]:
    """One recorded call inside a task of this worker; returns (i, worker pid)."""
    (interaction,) = recorded(CALL)
    client = openai_client(Repeat(interaction))
    with tokentrace.task("item"):
        client.chat.completions.create(**request_kwargs(interaction, "openai"))
    return i, os.getpid()


def bare_call(i: int) -> int:
    """One recorded call outside any task of this worker."""
    (interaction,) = recorded(CALL)
    openai_client(Repeat(interaction)).chat.completions.create(**request_kwargs(interaction, "openai"))
    return i
