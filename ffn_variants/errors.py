"""The error a user can fix: its message is one line that says what is wrong and how to fix it."""


class UserInputError(Exception):
    """Bad config, data or paths. Entry points print the message alone and exit with code 2."""
