"""The one exception type users see for bad input: its message is a single line naming the field."""


class NasforgeError(ValueError):
    """Bad input (a name, a value, a file): the message names the field and the allowed values."""
