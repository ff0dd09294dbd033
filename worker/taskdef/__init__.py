"""What a task module declares: ``@task``/``TaskDef``, ``JobContext``, ``Limit``, ``Schedule`` and ``@resource``.

Layer: above ``protocol``; a task module needs nothing else from jobq.
"""
