#!/usr/bin/env bash
# A separate environment with the peer instrumentations, for `benchmarks/overhead.py --peers`.
# They patch the same SDKs as tokentrace, so they never go into the project's own environment.
# The pins are the versions that install beside openai 3.x / anthropic 2.x (on httpx2).
#
#   bash benchmarks/peers.sh [.bench-peers]      then      .bench-peers/bin/python benchmarks/overhead.py --peers
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.bench-peers}"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[all]' pyyaml \
    httpx \
    "opentelemetry-instrumentation-openai-v2==2.4b0" "opentelemetry-util-genai==1.1b0" \
    "opentelemetry-instrumentation-openai==0.62.4" "opentelemetry-instrumentation-anthropic==0.62.4" \
    "openinference-instrumentation-openai==0.1.66" "openinference-instrumentation-anthropic==3.1.0" \
    "logfire==5.2.0"
# OpenLIT is left out: see docs/performance.md for why.
echo "peers installed in $VENV"
