"""The frameworks environment, ``.venv-frameworks`` at the repository root, for the framework
matrix (``tests/frameworks``): tokentrace installed editable beside the exact framework releases
pinned in ``tests/frameworks/requirements.txt``, which the main environment cannot hold
(llama-index-llms-openai needs openai<3).

    python -m tests.support.frameworks install   # creates it, or reuses it; prints its python
    "$(python -m tests.support.frameworks install)" -m pytest -n0 tests/frameworks

The environment is reused while the requirements file and pyproject.toml are unchanged (a stamp
holds their hash); otherwise pip brings it up to date in place.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-frameworks"
REQUIREMENTS = ROOT / "tests" / "frameworks" / "requirements.txt"
_STAMP = VENV / "requirements.sha256"


def python() -> Path:
    """The environment's interpreter."""
    return VENV / "bin" / "python"


def _digest() -> str:
    # tokentrace's own dependencies and entry points (pyproject.toml) are fixed at install time too.
    return hashlib.sha256(REQUIREMENTS.read_bytes() + (ROOT / "pyproject.toml").read_bytes()).hexdigest()


def install() -> Path:
    """Create ``.venv-frameworks`` (or reuse it while its requirements are unchanged); return its
    interpreter."""
    exe = python()
    if exe.exists() and _STAMP.exists() and _STAMP.read_text(encoding="utf-8") == _digest():
        return exe
    started = time.monotonic()
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(exe), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    # The estimate extra: the matrix checks that streams sent without asking for usage are
    # estimated, which needs the offline tokenizers.
    editable = f"{ROOT}[estimate]"
    subprocess.run([*pip, "-e", editable, "-r", str(REQUIREMENTS)], check=True, stdout=sys.stderr)
    _STAMP.write_text(_digest(), encoding="utf-8")
    print(f"frameworks environment installed in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return exe


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        raise SystemExit("usage: python -m tests.support.frameworks install")
    print(install())
