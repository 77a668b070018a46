"""An application with no tokentrace code at all, for zero-code instrumentation.

    pip install 'tokentrace[otel]'
    opentelemetry-instrument python examples/zero_code_app.py

``opentelemetry-instrument`` loads tokentrace through its ``opentelemetry_instrumentor`` entry
point: every OpenAI call below is recorded and priced, and goes where the ``OTEL_*`` and
``TOKENTRACE_*`` variables say (by default, the local ledger: ``tokentrace report``). It calls the
API at ``OPENAI_BASE_URL`` with ``OPENAI_API_KEY``, as the openai SDK always does.
"""

from __future__ import annotations

import openai


def main() -> None:
    client = openai.OpenAI()
    for ticket in ("My invoice shows two charges.", "The export button does nothing."):
        reply = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": f"Classify: {ticket}"}]
        )
        print(reply.choices[0].message.content)


if __name__ == "__main__":
    main()
