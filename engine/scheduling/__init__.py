"""Scheduling: cron with DST semantics, report periods, jobs, the planner."""
