"""mmeac.utils: writing files atomically (:mod:`mmeac.utils.fileio`) and
the helpers of the tools (:mod:`mmeac.utils.toolkit`).

Nothing is imported here. ``import mmeac`` imports :mod:`~.fileio` (the
checkpoint writers use it) but not :mod:`~.toolkit`: the tools import it
themselves, in ``main()``.
"""
