"""The RQ scheduler every worker runs: moves retries whose back-off is over back onto a queue.

One scheduler per queue at a time holds `rq:scheduler-lock:<queue>`; the others wait for it.
RQ 3.0's `RQScheduler` has two habits that stall back-off retries, and `ClipScheduler`
changes both:

- its lock lives 61 s (`interval + 60`) past the last heartbeat, and a running scheduler
  that holds only some of its queues' locks looks for the others every 120 s, so after a
  scheduler dies no other one schedules for one to three minutes. Here the lock is cut to
  `LOCK_TTL_SECONDS` after every acquire and heartbeat (the heartbeat runs each second), a
  running scheduler looks for free locks every `REACQUIRE_SECONDS`, and a worker whose
  scheduler holds none tries again at every maintenance pass (`workers.worker.process`);
- its process ends on the first Redis error (`rq.scheduler: … raised an exception …
  ConnectionError`). Here a Redis error is logged and the loop starts over once Redis
  answers; the worker still restarts a scheduler process that died of anything else.

It also dies with its worker (PR_SET_PDEATHSIG): a SIGKILLed worker leaves no scheduler
holding the lock behind.
"""

from __future__ import annotations

import os
import time
from datetime import datetime
from typing import Any

from redis.exceptions import RedisError
from rq.scheduler import RQScheduler

from clipper.lifetime import die_with_parent

#: How long a scheduler lock outlives its holder's last heartbeat (RQ: 61 s).
LOCK_TTL_SECONDS = 15
#: How often a scheduler missing some of its queues' locks tries to take them (RQ: 120 s).
REACQUIRE_SECONDS = 5
#: Pause before the scheduler loop starts over after a Redis error.
REDIS_RETRY_SECONDS = 1.0

# Shorten only locks this scheduler still owns (compare-and-expire).
_SHORTEN_LOCKS = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('EXPIRE', key, ARGV[2]) end
end
return 1
"""


class ClipScheduler(RQScheduler):
    """RQScheduler with a short lock that survives Redis outages (see the module doc)."""

    #: The worker process that starts this scheduler (set by it before the fork).
    worker_pid = 0

    @property
    def should_reacquire_locks(self) -> bool:
        """True when some lock is missing and the last try is `REACQUIRE_SECONDS` old."""
        if self._queue_names == self.acquired_locks:
            return False
        if not self.lock_acquisition_time:
            return True
        return (datetime.now() - self.lock_acquisition_time).total_seconds() > REACQUIRE_SECONDS

    def acquire_locks(self, auto_start: bool = False) -> Any:
        """Acquire or refresh the locks like RQ, then cut their lifetime short."""
        locks = super().acquire_locks(auto_start=auto_start)
        self._shorten_locks()
        return locks

    def heartbeat(self) -> None:
        """RQ's heartbeat (refreshes the locks for 61 s), then the short lifetime again."""
        super().heartbeat()
        self._shorten_locks()

    def _shorten_locks(self) -> None:
        names = sorted(self._acquired_locks)
        if names:
            keys = [self.get_locking_key(name) for name in names]
            self.connection.eval(_SHORTEN_LOCKS, len(keys), *keys, self.name, LOCK_TTL_SECONDS)

    def work(self) -> None:
        """RQ's scheduling loop, started over after Redis errors until a stop is requested."""
        die_with_parent()
        if self.worker_pid and os.getppid() != self.worker_pid:
            return  # the worker died before prctl took effect
        while True:
            try:
                super().work()
                return
            except RedisError as exc:
                self.log.warning(
                    "Scheduler: Redis unavailable (%s); starting over", type(exc).__name__
                )
                self._connection = None  # a fresh pool once Redis is back
                time.sleep(REDIS_RETRY_SECONDS)
                if self._stop_requested:
                    return
