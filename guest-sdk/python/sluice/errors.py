"""Typed plugin errors: each tells the host what to do next."""


class PluginError(Exception):
    """Base of the errors a plugin raises; any other exception is fatal."""


class Fatal(PluginError):
    """The job must stop."""


class Transient(PluginError):
    """A retry of the same batch may succeed."""


class InvalidInput(PluginError):
    """The input is bad: the host sends the rows to the dead-letter output.

    `rows` are indexes of the rejected input rows; empty means the whole batch.
    """

    def __init__(self, message, rows=()):
        super().__init__(message)
        self.rows = list(rows)
