"""The errors poselift explains in one line: bad input, configuration or files, named with what was expected.

The command line turns exactly these into ``poselift <subcommand>: error: <message>`` and exit status 2; anything
else (a bug, running out of memory) keeps its traceback. Each subclasses the built-in type callers already
catch (a missing file is a ``FileNotFoundError``, a bad value a ``ValueError``).
"""


class PoseliftError(Exception):
    """Base of every error whose message alone tells the user what is wrong and what was expected."""


class InputError(PoseliftError, ValueError):
    """A value, shape, file content or option that cannot be used."""


class MissingKeyError(PoseliftError, KeyError):
    """A key, subject, action or name that is not there; the message lists what is."""

    def __str__(self) -> str:  # KeyError would show the message quoted, as a repr
        return str(self.args[0]) if self.args else ""


class MissingFileError(PoseliftError, FileNotFoundError):
    """A file or folder that does not exist."""


class RunFolderError(PoseliftError, OSError):
    """A run folder that cannot be written."""
