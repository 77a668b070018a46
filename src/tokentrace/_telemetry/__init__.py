"""Telemetry: the settings configure() validates and applies (config), tokentrace's own tracer and
meter providers (providers), the bounded exporters and the exit flush (export), what an exception
leaves on a span (exception_events) and task attribution carried in OpenTelemetry baggage across
processes (propagation).
"""
