"""The one exception type a user can cause. The CLI prints its message and exits; never a traceback."""


class UserError(Exception):
    """Bad input a user can fix. ``exit_code``: 1 = invalid input, 2 = usage."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code
