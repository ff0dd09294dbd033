"""The worker process: the arq ``Worker`` subclass, claims and leases, the executor and the end of each try,
health, probes, wake-ups, and the assembly of a worker from the settings (the only package that imports
``arq.worker``).

Layer: above ``client``; only the CLI, the HTTP API and the demo import it.
"""
