"""The worker process: the arq ``Worker`` subclass, claims and leases, the executor and the end of each try,
health, probes, wake-ups, and the assembly of a worker from the settings (the only package that imports
``arq.worker``).

The words for one run of a job, used the same way in every name here:

- **try**: one run of a job on one worker, from its claim to its recorded end (arq's "job try"). The
  engine owns each through a :class:`~worker.engine.try_handle.TryHandle` (lease token, begun,
  ending, why it was cancelled); :mod:`~worker.engine.running` holds the running ones and
  :mod:`~worker.engine.stopping` ends them at shutdown.
- **claim**: the script that leases a due job and starts its try (:mod:`~worker.engine.leases`); a
  try has no other start.
- **execution**: :class:`~worker.engine.executor.JobExecutor` carries a try from its claim to its end:
  decodes the job (:mod:`~worker.engine.try_records`: the executor's config, the job of the try, the
  records its end writes), applies the policies, runs the attempt.
- **attempt**: the call of the task itself inside a try, under its slots and timeout
  (:mod:`~worker.engine.attempt`).
- **outcome**: how a try ended (:class:`~worker.states.Outcome`); every end takes one path,
  :class:`~worker.engine.outcomes.TryEnds`, and is counted once (:func:`~worker.states.tally_of`).
- **finish**: the fenced scripts that write a try's end (:mod:`~worker.engine.finish`,
  :mod:`~worker.engine.finish_batch`).

Layer: above ``client``; only the CLI, the HTTP API and the demo import it.
"""
