"""Errors about a user's input (data, images) that tools print as one line.

They derive from ``ValueError``; ``tools/train.py`` and ``tools/test.py``
catch :class:`InputError` from inside the runner and print its message as
``<tool>: error: <message>`` with a non-zero exit.
"""


class InputError(ValueError):
    """Bad input: the message names the file(s) and what is wrong."""


class DataError(InputError):
    """A dataset sample that the pipeline cannot turn into a model input."""


class NonFiniteInputError(InputError):
    """An image tensor holding NaN or infinity."""


def one_line(err: BaseException) -> str:
    """The message of ``err`` as one line.

    An error raised in a ``DataLoader`` worker comes back as ``Caught X in
    DataLoader worker process N. Original Traceback ...``; its last line
    holds the original message.
    """
    lines = [ln for ln in str(err).strip().splitlines() if ln.strip()]
    if not lines:
        return type(err).__name__
    if len(lines) > 1 and lines[0].startswith('Caught '):
        last = lines[-1]
        name = type(err).__name__
        if f'{name}: ' in last:
            last = last.split(f'{name}: ', 1)[1]
        return last.strip()
    return ' '.join(ln.strip() for ln in lines)
