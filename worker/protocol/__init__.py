"""What lives in Redis and on the wire: keys, the JSON envelope and its bounds, the records jobq writes,
the Redis connection, permissions, webhook signing and the Lua scripts.

Layer: above ``process`` and the base modules; imported by everything that talks to Redis.
"""
