"""The call engine: what an integration describes (integration), the patches and their registry
(registry), one call in flight (call) and its attempts (attempts), the wrappers that record it
(engine), stream proxies (streams), deferred-send helpers (deferred), the budget gate before a
request is sent (gate), what is worked out from a request (requests), opt-in content capture
(content) and instrument() itself (api).
"""
