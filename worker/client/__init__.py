"""The producer: ``Client`` and ``SyncClient``, job handles and results, abort, dead letters and queue stats.

Layer: above ``observability``; a producer imports this package (through ``worker``), never the engine.
"""
