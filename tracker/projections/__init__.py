"""Projections: views of the event log (allegation list, statistics, reviewer queues).

A projector follows the log from its tracked position (`runner`), one module holds each view
(`allegations`) and the queries over them (`listing`, `stats`); `Views` is the read side.
"""

from tracker.projections.filters import Filters
from tracker.projections.listing import reviewer_queue
from tracker.projections.runner import Projector, rebuild, run_projector, start_thread, status
from tracker.projections.schema import ensure as ensure_schema
from tracker.projections.tracking import wait_for_position
from tracker.projections.views import Views

__all__ = ["Filters", "Projector", "Views", "ensure_schema", "rebuild", "reviewer_queue",
           "run_projector", "start_thread", "status", "wait_for_position"]
