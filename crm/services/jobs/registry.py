"""The modules that define jobs. The worker imports every one, so each job is registered with
the queue before the first message is read. Add a line when you add a module with @job."""
from __future__ import annotations

import importlib

# Keep the list sorted so parallel additions merge cleanly.
TASK_MODULES = [
    "crm.services.campaigns.jobs",
    "crm.services.email.jobs",
    "crm.services.flows.jobs",
    "crm.services.orders.importing.jobs",
    "crm.services.jobs.builtin",
    "crm.services.jobs.maintenance",
    "crm.services.segments.jobs",
]


def import_task_modules() -> None:
    """Import every module in TASK_MODULES (registering its jobs)."""
    for name in TASK_MODULES:
        importlib.import_module(name)
