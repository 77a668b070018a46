"""The framework matrix runs in environments of its own (see ``tests/support/frameworks.py``):
``.venv-frameworks`` runs every file but one, ``.venv-frameworks-pydantic-ai`` runs
``test_pydantic_ai_anthropic.py`` alone. A run in neither skips this folder whole, saying how
to run it."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.frameworks import matrix

_FRAMEWORKS = ("litellm", "dspy", "langchain_openai", "langchain_anthropic", "llama_index.llms.openai")
_FRAMEWORKS += ("pydantic_ai", "agents")
# The one file of the pydantic-ai environment (pydantic-ai 2.78, whose OpenAI models need openai 3).
_PYDANTIC_AI = "test_pydantic_ai_anthropic.py"


def _missing() -> list[str]:
    missing = []
    for name in _FRAMEWORKS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def _pydantic_ai_environment() -> bool:
    try:
        version = importlib.metadata.version("pydantic-ai-slim")
    except importlib.metadata.PackageNotFoundError:
        return False
    return version == "2.78.0" and importlib.util.find_spec("anthropic") is not None


_MISSING = _missing()
_REASON = (
    f"the framework matrix needs its own environments ({', '.join(_MISSING)} not installed): "
    '"$(python -m tests.support.frameworks install)" -m pytest -n0 tests/frameworks, and '
    '"$(python -m tests.support.frameworks install pydantic-ai)" -m pytest -n0 tests/frameworks'
)
_SKIPPED = False

if not _MISSING:
    collect_ignore = [_PYDANTIC_AI]
elif _pydantic_ai_environment():
    _KEPT = (_PYDANTIC_AI, "test_page.py")
    collect_ignore = [path.name for path in Path(__file__).parent.glob("test_*.py") if path.name not in _KEPT]
else:
    collect_ignore_glob = ["test_*.py"]
    _SKIPPED = True


class _Skipped(pytest.Item):
    def runtest(self) -> None:
        pytest.skip(_REASON)

    def reportinfo(self) -> tuple[str, int, str]:
        return str(Path(__file__).parent), 0, "tests/frameworks"


# Frameworks read these at import or call time: no telemetry, no price-list downloads.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")


def pytest_collection_modifyitems(session: pytest.Session, items: list[pytest.Item]) -> None:
    """Without the frameworks, say once, with the reason, that the folder was skipped (never
    silently); with them, run the page check after every case (it reads what they measured)."""
    if _SKIPPED:
        items.append(_Skipped.from_parent(session, name="tests/frameworks"))
    else:
        items.sort(key=lambda item: item.path.name == "test_page.py")


@pytest.fixture(scope="session", autouse=True)
def _results() -> Iterator[None]:
    """The run's results, for scripts/frameworks_table.py (docs/frameworks.md)."""
    yield
    matrix.write()
