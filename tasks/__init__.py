"""jobq's built-in tasks, one domain per module; each uses only ``worker``'s public API.

The worker imports this package and all its submodules when ``JOBQ_TASK_MODULES`` names it
(the default).
"""
