"""A plugin's configuration from the job file."""

from .errors import Fatal


class Config:
    """The plugin's settings as key/value strings; tables and arrays arrive
    as JSON text."""

    def __init__(self, entries=()):
        if isinstance(entries, dict):
            entries = entries.items()
        self._entries = [(str(k), str(v)) for k, v in entries]

    def get(self, key, default=None):
        """The value of `key`, or `default` when unset."""
        for k, v in self._entries:
            if k == key:
                return v
        return default

    def require(self, key):
        """The value of `key`, or a fatal error naming it."""
        value = self.get(key)
        if value is None:
            raise Fatal(f"missing config key `{key}`")
        return value

    def list(self, key):
        """The value of `key` as a comma-separated list (empty if unset)."""
        value = self.get(key)
        if value is None:
            return []
        return [item.strip() for item in value.split(",") if item.strip()]

    def __repr__(self):
        return f"Config({self._entries!r})"
