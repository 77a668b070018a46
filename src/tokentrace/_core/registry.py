"""``instrument()`` and ``uninstrument()``: applying integrations' patches, and undoing them exactly.

Integrations are found through the ``tokentrace.integrations`` entry-point group; the built-ins
are registered there too, and also listed here so that a source checkout that was never
installed still finds them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import sys
import threading
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import wrapt

from tokentrace._core import attempts as _attempts
from tokentrace._core import deferred as _deferred
from tokentrace._core import engine as _engine
from tokentrace._core import relay as _relay
from tokentrace._core.integration import Integration, ProviderIntegration, RelayIntegration
from tokentrace._foundation.safety import renew_after_fork
from tokentrace.exceptions import IntegrationError

logger = logging.getLogger("tokentrace")

ENTRY_POINT_GROUP = "tokentrace.integrations"
_BUILTINS = {
    "openai": "tokentrace.integrations.openai:OpenAIIntegration",
    "anthropic": "tokentrace.integrations.anthropic:AnthropicIntegration",
    "threading": "tokentrace.integrations.threading:ThreadingIntegration",
    "httpx": "tokentrace.integrations.httpx:HttpxIntegration",
    "httpx2": "tokentrace.integrations.httpx:Httpx2Integration",
    "litellm": "tokentrace.integrations.litellm:LiteLLMIntegration",
    "requests": "tokentrace.integrations.requests:RequestsIntegration",
    "lm15": "tokentrace.integrations.lm15:Lm15Integration",
    "dspy": "tokentrace.integrations.lm15:DspyIntegration",
    "botocore": "tokentrace.integrations.botocore:BotocoreIntegration",
    "aiohttp": "tokentrace.integrations.aiohttp:AiohttpIntegration",
}


@dataclass
class _Applied:
    integration: Integration
    patched: list[tuple[str, str, Any]]
    """(module, qualname, the wrapt FunctionWrapper we installed)"""
    counts_attempts: bool = False
    """Whether per-attempt hooks were installed (a call with no attempt was then never sent)."""


_applied: dict[str, _Applied] = {}
# Integrations waiting for their SDK's first import (instrument() with no names).
_pending: dict[str, Integration] = {}
_lock = threading.RLock()

renew_after_fork(globals(), "_lock", threading.RLock)


def _targets() -> dict[str, str]:
    found = dict(_BUILTINS)
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def available() -> list[str]:
    """Names of every registered integration (installed SDK or not)."""
    return sorted(_targets())


def _load(name: str, target: str) -> Integration:
    module_name, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    integration = cls()
    if not isinstance(integration, Integration):
        raise IntegrationError(f"entry point {name!r} ({target}) is not a tokentrace Integration")
    return integration


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _missing_reason(integration: Integration) -> str | None:
    dist = integration.distribution
    if dist is None:
        return None
    try:
        version = metadata.version(dist)
    except metadata.PackageNotFoundError:
        return f"the {dist!r} package is not installed (pip install 'tokentrace[{dist}]')"
    if integration.min_version and _version_tuple(version) < integration.min_version:
        need = ".".join(map(str, integration.min_version))
        return f"{dist} {version} is older than the {need} that tokentrace supports (pip install -U {dist})"
    return None


def _wrap(module: str, qualname: str, wrapper: Any, optional: bool) -> Any | None:
    try:
        wrapt.wrap_function_wrapper(module, qualname, wrapper)
    except (ImportError, AttributeError) as exc:
        if not optional:
            raise
        logger.debug("tokentrace: %s.%s not found (%s); skipped", module, qualname, exc)
        return None
    _parent, _attr, installed = wrapt.resolve_path(module, qualname)
    return installed


def _unwrap(module: str, qualname: str, installed: Any) -> None:
    parent, attr, current = wrapt.resolve_path(module, qualname)
    if current is installed:
        setattr(parent, attr, getattr(installed, "__wrapped__"))  # noqa: B009  # wrapt's typing hides it
    else:
        # Someone wrapped on top of us since; leave their wrapper, ours passes through from now.
        logger.warning(
            "tokentrace: %s.%s was wrapped again by another library; tokentrace's wrapper stays "
            "beneath it but is inactive.",
            module,
            qualname,
        )


def _apply(integration: Integration) -> _Applied:
    provider = integration if isinstance(integration, ProviderIntegration) else None
    if integration.methods and provider is None:
        raise IntegrationError(
            f"integration {integration.name!r} lists LLM methods but is not a ProviderIntegration, "
            "so tokentrace cannot read their usage"
        )
    patched: list[tuple[str, str, Any]] = []
    hooked = False
    try:
        for method in integration.methods:
            assert isinstance(integration, ProviderIntegration)  # checked above
            if method.sends_on_enter:
                wrapper = _deferred.on_enter_wrapper(integration, method)
            elif isinstance(integration, RelayIntegration):
                wrapper = _relay.call_wrapper(integration, method)
            else:
                wrapper = _engine.call_wrapper(integration, method)
            installed = _wrap(method.module, method.qualname, wrapper, method.optional)
            if installed is not None:
                patched.append((method.module, method.qualname, installed))
        for hook in integration.attempt_hooks:
            installed = _wrap(hook.module, hook.qualname, _attempts.attempt_wrapper(hook), True)
            if installed is not None:
                patched.append((hook.module, hook.qualname, installed))
                hooked = True
        for patch in integration.patches():
            installed = _wrap(patch.module, patch.qualname, patch.wrapper, True)
            if installed is not None:
                patched.append((patch.module, patch.qualname, installed))
    except (ImportError, AttributeError) as exc:
        for module, qualname, installed in reversed(patched):
            _unwrap(module, qualname, installed)
        raise IntegrationError(
            f"cannot instrument {integration.name!r}: {exc}. Its SDK version may be unsupported."
        ) from exc
    return _Applied(integration, patched, counts_attempts=bool(hooked))


def instrument(*names: str) -> list[str]:
    """Patch the named integrations, or every available one whose SDK is installed.

    Idempotent. Returns the names instrumented by this call.
    """
    targets = _targets()
    for name in names:
        if not isinstance(name, str) or name not in targets:
            raise IntegrationError(f"unknown integration {name!r}; available: {', '.join(sorted(targets))}")
    return _instrument(names or tuple(targets), targets, explicit=bool(names))


def instrument_installed(names: Iterable[str] | None = None, *, exclude: Collection[str] = ()) -> list[str]:
    """``instrument()`` with no names (installed SDKs only, each patched at its first import),
    limited to ``names`` when given, leaving out ``exclude``. Unknown names are skipped."""
    targets = _targets()
    chosen = tuple(n for n in (targets if names is None else names) if n in targets and n not in exclude)
    return _instrument(chosen, targets, explicit=False)


def requirement(name: str) -> str | None:
    """The distribution and oldest version integration ``name`` needs, as a pip requirement
    (``"openai >= 1.40"``), or ``None`` when it needs none (threading, processes)."""
    integration = _load(name, _targets()[name])
    dist = integration.distribution
    if dist is None:
        return None
    if not integration.min_version:
        return dist
    return f"{dist} >= {'.'.join(map(str, integration.min_version))}"


def _instrument(names: Iterable[str], targets: dict[str, str], explicit: bool) -> list[str]:
    done: list[str] = []
    with _lock:
        for name in names:
            if name in _applied or (name in _pending and not explicit):
                continue
            try:
                integration = _load(name, targets[name])
            except ImportError as exc:
                if explicit:
                    raise IntegrationError(f"cannot load integration {name!r}: {exc}") from exc
                logger.debug("tokentrace: integration %s not loadable: %s", name, exc)
                continue
            reason = _missing_reason(integration)
            if reason is not None:
                if explicit:
                    raise IntegrationError(f"cannot instrument {name!r}: {reason}")
                logger.debug("tokentrace: skipping %s: %s", name, reason)
                continue
            module = integration.module
            if not explicit and module is not None and module not in sys.modules:
                # Patch the SDK when the application first imports it, not now.
                if name not in _pending:
                    _pending[name] = integration
                    wrapt.register_post_import_hook(functools.partial(_on_import, name), module)
                done.append(name)
                continue
            _pending.pop(name, None)
            _activate(name, integration)
            done.append(name)
    return done


def _activate(name: str, integration: Integration) -> None:
    applied = _applied[name] = _apply(integration)
    _engine.switch_on(name, counts_attempts=applied.counts_attempts)


def _on_import(name: str, _module: object) -> None:
    """An SDK that ``instrument()`` was waiting for has been imported: patch it now."""
    with _lock:
        integration = _pending.pop(name, None)
        if integration is None or name in _applied:
            return  # uninstrumented meanwhile, or instrumented by name
        try:
            _activate(name, integration)
        except IntegrationError as exc:  # never break the application's import
            logger.warning("tokentrace: %s", exc)


def uninstrument(*names: str) -> None:
    """Restore the original SDK methods (all instrumented integrations when none is named)."""
    with _lock:
        for name in names or (*_applied, *_pending):
            _pending.pop(name, None)
            applied = _applied.pop(name, None)
            if applied is None:
                continue
            _engine.switch_off(name)
            for module, qualname, installed in reversed(applied.patched):
                _unwrap(module, qualname, installed)


def instrumented() -> list[str]:
    """Names of the integrations currently instrumented (or waiting for their SDK's import)."""
    return sorted({*_applied, *_pending})
