"""The error every motion-capture reader and converter raises for bad input."""

from components.errors import InputError


class MocapFormatError(InputError):
    """A motion-capture file, mapping, manifest or camera rig that cannot be used; the message names the file,
    line, joint or key and what was expected."""
