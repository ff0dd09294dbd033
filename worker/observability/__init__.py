"""Seeing what jobq does: structured logs, Prometheus metrics and Sentry.

Layer: above ``taskdef``; the client, the engine and the HTTP API report through it.
"""
