"""Print the slowest tasks of a playbook run: where a scenario's converge time goes.

Enabled for the Molecule scenarios by the Makefile (ANSIBLE_CALLBACKS_ENABLED); the test
harness's own, not shipped (galaxy.yml leaves tests/ out).
"""

from __future__ import annotations

import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: task_times
    type: aggregate
    short_description: the slowest tasks of a run
    description: At the end of a playbook, the ten tasks that took longest (wall clock,
      from the task's start to the next task's start), for the test harness.
    requirements:
      - enabled in callbacks_enabled
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._times = {}
        self._current = None
        self._since = None
        self._started = time.monotonic()

    def _close(self):
        if self._current is not None:
            self._times[self._current] = (self._times.get(self._current, 0.0)
                                          + time.monotonic() - self._since)
            self._current = None

    def _open(self, task):
        self._close()
        self._current = f"{task.get_name()} ({task.get_path() or '?'})"
        self._since = time.monotonic()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._open(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._open(task)

    def v2_playbook_on_stats(self, stats):
        self._close()
        total = time.monotonic() - self._started
        slowest = sorted(self._times.items(), key=lambda item: -item[1])[:10]
        self._display.display(f"task_times: {total:.0f} s in all; the slowest tasks:")
        for name, seconds in slowest:
            self._display.display(f"task_times: {seconds:7.1f} s  {name}")
