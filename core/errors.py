"""The one exception type a user sees as a one-line message (no traceback)."""


class HizkitError(Exception):
    """A problem with the user's input or configuration, worded for the user.

    The CLI prints ``error: <message>`` and exits with status 2. Raise it for anything a user
    can fix (a bad file, an unknown plugin name, a bad option value); let genuine bugs raise
    ordinary exceptions so that they keep their traceback.
    """
