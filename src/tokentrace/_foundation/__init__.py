"""The ground every layer stands on: the one error boundary (``safety``) and the one module of
attribute and metric names (``semconv``).
"""
