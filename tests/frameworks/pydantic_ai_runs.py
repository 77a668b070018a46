"""A one-turn Pydantic AI agent run each way the matrix covers (both pydantic-ai environments)."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_ai import Agent


async def _stream(agent: Agent[None, str]) -> None:
    async with agent.run_stream("Hello!") as result:
        async for _ in result.stream_text(delta=True):
            pass


def run(agent: Agent[None, str], mode: str) -> Any:
    """``run_sync``, ``run``, ``run_stream_sync`` or ``run_stream``, by the matrix's mode."""
    if mode == "sync":
        return agent.run_sync("Hello!")
    if mode == "async":
        return asyncio.run(agent.run("Hello!"))
    if mode == "stream":
        for _ in agent.run_stream_sync("Hello!").stream_text(delta=True):
            pass
        return None
    return asyncio.run(_stream(agent))
