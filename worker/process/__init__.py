"""Processes jobq starts and runs on: the event loop, the supervisor of ``--processes N``, the embedded
Redis, and stopping children by pid.

Layer: just above the base modules (``errors``, ``states``, ``policy``, ``settings``).
"""
