"""Every attribute, event and metric name that tokentrace emits, in one place.

OpenTelemetry GenAI semantic-convention names (``gen_ai.*``) are used where the convention
defines them; everything else is in the ``tokentrace.*`` namespace.
"""

from __future__ import annotations

from typing import Final

# --- OTel GenAI semantic conventions (call spans and metrics) -------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: Final = "gen_ai.usage.cache_write.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: Final = "gen_ai.usage.reasoning.output_tokens"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
GEN_AI_REQUEST_STREAM: Final = "gen_ai.request.stream"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
ERROR_TYPE: Final = "error.type"
HTTP_RESPONSE_STATUS_CODE: Final = "http.response.status_code"
EVENT_EXCEPTION: Final = "exception"
EXCEPTION_TYPE: Final = "exception.type"
"""The exception event's one attribute while content capture is off: no ``exception.message`` or
``exception.stacktrace``, which can echo a prompt or a key (see ``_exception_events``)."""
SERVER_ADDRESS: Final = "server.address"

# --- OTel GenAI agent conventions (task spans) ----------------------------------------------
GEN_AI_AGENT_NAME: Final = "gen_ai.agent.name"
GEN_AI_WORKFLOW_NAME: Final = "gen_ai.workflow.name"
GEN_AI_CONVERSATION_ID: Final = "gen_ai.conversation.id"
"""On a task opened with ``conversation_id=`` and on the call spans of its calls."""
OPERATION_INVOKE_AGENT: Final = "invoke_agent"
OPERATION_INVOKE_WORKFLOW: Final = "invoke_workflow"
TASK_OPERATIONS: Final = frozenset({OPERATION_INVOKE_AGENT, OPERATION_INVOKE_WORKFLOW})
"""The ``gen_ai.operation.name`` values of task spans; any other value is a call span's."""

# --- proposed GenAI cost attributes (semantic-conventions-genai PR #443, not merged) ---------
# Emitted on call spans, beside the stable tokentrace.cost.* names, only with
# OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental.
GEN_AI_USAGE_COST_AMOUNT: Final = "gen_ai.usage.cost.amount"
GEN_AI_USAGE_COST_CURRENCY: Final = "gen_ai.usage.cost.currency"
GEN_AI_USAGE_COST_SOURCE: Final = "gen_ai.usage.cost.source"
COST_CURRENCY_USD: Final = "USD"
COST_SOURCE_PROVIDER: Final = "provider"
"""The provider or gateway reported what the call cost."""
COST_SOURCE_LOCAL: Final = "local"
"""tokentrace priced the call from its token counts."""
OPENAI_RESPONSE_SERVICE_TIER: Final = "openai.response.service_tier"
"""The OpenAI convention's attribute: set only when the call was served at a tier other than
``default`` (``flex``, ``priority``, ``scale``)."""

SERVICE_TIER: Final = "tokentrace.service_tier"
"""The service tier another provider served the call at (Gemini's ``flex``, ``priority``), set
only when it is not the standard one; OpenAI's calls use ``openai.response.service_tier``."""

# --- tokentrace: call spans ---------------------------------------------------------------
COST_USD: Final = "tokentrace.cost.usd"
COST_USD_EXACT: Final = "tokentrace.cost.usd_exact"
"""The exact cost as a decimal string, only when a double cannot carry it (over 15 digits)."""
COST_STATUS: Final = "tokentrace.cost.status"
COST_SOURCE: Final = "tokentrace.cost.source"
RETRIES: Final = "tokentrace.retries"
ATTEMPTS: Final = "tokentrace.attempts"
USAGE_CACHE_WRITE_1H: Final = "tokentrace.usage.cache_write_1h.input_tokens"
USAGE_WEB_SEARCHES: Final = "tokentrace.usage.web_search_requests"
USAGE_FILE_SEARCHES: Final = "tokentrace.usage.file_search_requests"
USAGE_MODALITIES: Final = {
    "audio_input": "tokentrace.usage.audio.input_tokens",
    "audio_cache_read": "tokentrace.usage.audio.cache_read.input_tokens",
    "audio_output": "tokentrace.usage.audio.output_tokens",
    "image_input": "tokentrace.usage.image.input_tokens",
    "image_cache_read": "tokentrace.usage.image.cache_read.input_tokens",
    "image_output": "tokentrace.usage.image.output_tokens",
    "video_input": "tokentrace.usage.video.input_tokens",
    "video_cache_read": "tokentrace.usage.video.cache_read.input_tokens",
    "video_output": "tokentrace.usage.video.output_tokens",
}
"""``Usage.modalities``' counts (subsets of the ``gen_ai.usage.*`` totals), each set only when
the provider reported it and it is not zero."""
USAGE_ESTIMATED: Final = "tokentrace.usage.estimated"
BASE_URL: Final = "tokentrace.base_url"
"""The base URL a call with usage was sent to, without any query or credentials, when it is not
its provider's own API: a gateway's, a proxy's or a self-hosted server's URL can change the
price, so re-pricing reads it too."""
USAGE_ITERATIONS: Final = "tokentrace.usage.iterations"
"""The further inferences a call is billed for (Anthropic's compaction and advisor iterations),
as JSON: each one's model (null: the call's own) and counts. Their tokens are in the totals."""
USAGE_BILLED_INPUT: Final = "tokentrace.usage.billed.input_tokens"
USAGE_BILLED_OUTPUT: Final = "tokentrace.usage.billed.output_tokens"
"""The tokens a provider bills, when it reports them apart from those it processed (Cohere)."""
COUNTED_INPUT_TOKENS: Final = "tokentrace.counted.input_tokens"
USAGE_PROBLEM: Final = "tokentrace.usage.problem"
STREAM_END: Final = "tokentrace.stream.end"

# attempt events on call spans
EVENT_ATTEMPT: Final = "tokentrace.attempt"
ATTEMPT_NUMBER: Final = "tokentrace.attempt.number"
ATTEMPT_OUTCOME: Final = "tokentrace.attempt.outcome"

# --- tokentrace: attribution, on task spans and call spans ---------------------------------
TASK_NAME: Final = "tokentrace.task.name"
TASK_ID: Final = "tokentrace.task.id"
TASK_PARENT_ID: Final = "tokentrace.task.parent_id"
TASK_ROOT_ID: Final = "tokentrace.task.root_id"
USER_ID: Final = "tokentrace.user_id"
FEATURE: Final = "tokentrace.feature"
TENANT: Final = "tokentrace.tenant"

# --- tokentrace: roll-up on task spans (never gen_ai.usage.* here) ------------------------
TASK_INPUT_TOKENS: Final = "tokentrace.task.input_tokens"
TASK_OUTPUT_TOKENS: Final = "tokentrace.task.output_tokens"
TASK_CACHE_READ_TOKENS: Final = "tokentrace.task.cache_read_tokens"
TASK_CACHE_WRITE_TOKENS: Final = "tokentrace.task.cache_write_tokens"
TASK_REASONING_TOKENS: Final = "tokentrace.task.reasoning_tokens"
TASK_COST_USD: Final = "tokentrace.task.cost.usd"
TASK_COST_USD_EXACT: Final = "tokentrace.task.cost.usd_exact"
TASK_ROOT_NAME: Final = "tokentrace.task.root_name"
TASK_LLM_CALLS: Final = "tokentrace.task.llm_calls"
TASK_RETRIES: Final = "tokentrace.task.retries"
TASK_UNPRICED_CALLS: Final = "tokentrace.task.unpriced_calls"
TASK_ESTIMATED_CALLS: Final = "tokentrace.task.estimated_calls"
TASK_OUTCOME: Final = "tokentrace.task.outcome"
TASK_MODELS: Final = "tokentrace.task.models"
TASK_DUPLICATE_CALLS: Final = "tokentrace.task.duplicate_calls"
TASK_DUPLICATE_COST_USD: Final = "tokentrace.task.duplicate_cost.usd"
TASK_RETRY_WASTE_TOKENS: Final = "tokentrace.task.retry_waste.tokens"
TASK_RETRY_WASTE_COST_USD: Final = "tokentrace.task.retry_waste.cost.usd"
# The task's cost by token kind (they add up to tokentrace.task.cost.usd).
TASK_COST_INPUT_USD: Final = "tokentrace.task.cost.input.usd"
TASK_COST_CACHE_READ_USD: Final = "tokentrace.task.cost.cache_read.usd"
TASK_COST_CACHE_WRITE_USD: Final = "tokentrace.task.cost.cache_write.usd"
TASK_COST_OUTPUT_USD: Final = "tokentrace.task.cost.output.usd"
TASK_COST_OTHER_USD: Final = "tokentrace.task.cost.other.usd"
TASK_UNITS_PREFIX: Final = "tokentrace.task.units."
"""Followed by the unit's name: ``tokentrace.task.units.document`` = 3."""
TASK_BUDGET_EXCEEDED: Final = "tokentrace.task.budget_exceeded"
TASK_BUDGET_BLOCKED_CALLS: Final = "tokentrace.task.budget.blocked_calls"
TASK_BUDGET_MAX_COST_USD: Final = "tokentrace.task.budget.max_cost.usd"
TASK_BUDGET_MAX_TOKENS: Final = "tokentrace.task.budget.max_tokens"
TASK_BUDGET_MAX_LLM_CALLS: Final = "tokentrace.task.budget.max_llm_calls"

# --- tokentrace: budgets and waste, on call spans and events ----------------------------------
DUPLICATE: Final = "tokentrace.duplicate"
BUDGET_BLOCKED: Final = "tokentrace.budget.blocked"
BUDGET_ESTIMATED_INPUT_TOKENS: Final = "tokentrace.budget.estimate.input_tokens"
BUDGET_ESTIMATED_OUTPUT_TOKENS: Final = "tokentrace.budget.estimate.output_tokens"
BUDGET_ESTIMATED_COST_USD: Final = "tokentrace.budget.estimate.cost.usd"
BUDGET_LIMIT: Final = "tokentrace.budget.limit"
BUDGET_LIMIT_VALUE: Final = "tokentrace.budget.limit_value"
BUDGET_SPENT: Final = "tokentrace.budget.spent"
BUDGET_PROJECTED: Final = "tokentrace.budget.projected"
BUDGET_ACTION: Final = "tokentrace.budget.action"
EVENT_BUDGET_BLOCKED: Final = "tokentrace.budget.blocked"
EVENT_BUDGET_WARNING: Final = "tokentrace.budget.warning"
EVENT_BUDGET_EXCEEDED: Final = "tokentrace.budget.exceeded"

# --- tokentrace: limits across replicas, on call spans and task events ----------------------
LIMIT_KEY: Final = "tokentrace.limit.key"
"""The limit that refused the call (``Limit.key``: its per, window and filters)."""
LIMIT_SCOPE_VALUE: Final = "tokentrace.limit.value"
"""The value of the limit's ``per`` dimension that has run out (``acme``)."""
LIMIT_WINDOW_START: Final = "tokentrace.limit.window_start"
"""The start of the limit's current window, Unix seconds."""
LIMIT_UNAVAILABLE: Final = "tokentrace.limit.unavailable"
"""Why the limits' store could not be reached (the call went ahead unchecked, or was refused)."""
EVENT_LIMIT_BLOCKED: Final = "tokentrace.limit.blocked"

# --- metrics --------------------------------------------------------------------------------
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_COST: Final = "tokentrace.cost"
METRIC_TASK_COST: Final = "tokentrace.task.cost"
METRIC_UNPRICED_CALLS: Final = "tokentrace.unpriced_calls"
METRIC_TASK_UNITS: Final = "tokentrace.task.units"
UNIT: Final = "tokentrace.unit"
METRIC_BUFFERED: Final = "tokentrace.metrics.buffered"

# Bucket boundaries that the GenAI conventions advise.
TOKEN_USAGE_BUCKETS: Final = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)
DURATION_BUCKETS: Final = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
TASK_COST_BUCKETS: Final = (
    0.0001,
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
    50.0,
    100.0,
)

INSTRUMENTATION_SCOPE: Final = "tokentrace"
