"""The HTTP API (``jobq api``): routes, request reading, error answers, the OpenAPI document, the server's
bounds, and the dashboard (``static/dashboard.html``).

Layer: top, beside ``demo``; only the CLI imports it.
"""
