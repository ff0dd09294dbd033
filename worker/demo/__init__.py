"""``jobq demo``: workers and a producer push a real batch through an embedded Redis.

Layer: top, beside ``http``; only the CLI imports it.
"""
