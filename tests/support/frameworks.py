"""The frameworks environments at the repository root, for the framework matrix
(``tests/frameworks``): tokentrace installed editable beside the exact framework releases pinned
in a requirements file, which the main environment cannot hold.

- ``.venv-frameworks`` (``tests/frameworks/requirements.txt``): every framework but one case
  (llama-index-llms-openai and litellm need openai<3);
- ``.venv-frameworks-pydantic-ai`` (``tests/frameworks/requirements-pydantic-ai.txt``):
  pydantic-ai's AnthropicModel: the pydantic-ai that can call anthropic 2 (2.78) needs openai 3
  for its OpenAI models, and llama-index-llms-openai needs openai<3.

    python -m tests.support.frameworks install [pydantic-ai]   # creates it, or reuses it; prints its python
    "$(python -m tests.support.frameworks install)" -m pytest -n0 tests/frameworks

Each environment is reused while its requirements file and pyproject.toml are unchanged (a stamp
holds their hash); otherwise pip brings it up to date in place.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# name: (the environment's folder, its requirements file)
ENVIRONMENTS = {
    "frameworks": (ROOT / ".venv-frameworks", ROOT / "tests" / "frameworks" / "requirements.txt"),
    "pydantic-ai": (
        ROOT / ".venv-frameworks-pydantic-ai",
        ROOT / "tests" / "frameworks" / "requirements-pydantic-ai.txt",
    ),
}
VENV, REQUIREMENTS = ENVIRONMENTS["frameworks"]


def python(name: str = "frameworks") -> Path:
    """The environment's interpreter."""
    return ENVIRONMENTS[name][0] / "bin" / "python"


def _digest(requirements: Path) -> str:
    # tokentrace's own dependencies and entry points (pyproject.toml) are fixed at install time too.
    return hashlib.sha256(requirements.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()


def install(name: str = "frameworks") -> Path:
    """Create the environment ``name`` (or reuse it while its requirements are unchanged); return
    its interpreter."""
    venv, requirements = ENVIRONMENTS[name]
    stamp = venv / "requirements.sha256"
    exe = python(name)
    if exe.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == _digest(requirements):
        return exe
    started = time.monotonic()
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # The estimate extra: the matrix checks that streams sent without asking for usage are
    # estimated, which needs the offline tokenizers.
    editable = f"{ROOT}[estimate]"
    subprocess.run([*pip, "-e", editable, "-r", str(requirements)], check=True, stdout=sys.stderr)
    stamp.write_text(_digest(requirements), encoding="utf-8")
    print(f"{name} environment installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return exe


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] != "install" or len(args) > 2 or (len(args) == 2 and args[1] not in ENVIRONMENTS):
        names = " | ".join(ENVIRONMENTS)
        print(f"usage: python -m tests.support.frameworks install [{names}]", file=sys.stderr)
        raise SystemExit(2)
    print(install(*args[1:]))
