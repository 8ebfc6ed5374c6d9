"""The one exception type the CLI turns into a clear message and exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (spec, recipe, data, address): shown without a traceback."""
