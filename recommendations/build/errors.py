"""Provides the exceptions of the build."""


class BuildAlreadyRunning(Exception):
    """Raised when a full build is asked for while another one holds the lock."""


class BuildError(Exception):
    """Raised when a build cannot run (no data, a broken artifact…)."""
