"""Exceptions a job function may raise (or the runtime raises into it)."""


class JobError(Exception):
    """An expected failure; its message is shown to the person who started the job."""


class JobCancelled(Exception):
    """The job was cancelled while running; raised from ``Progress.update``."""


class JobLost(Exception):
    """This attempt no longer owns the job (it was re-assigned after a stale heartbeat)."""
