"""mmeac.utils: writing files atomically (:mod:`mmeac.utils.fileio`), the
tools' shared command-line options (:mod:`mmeac.utils.cli`) and helpers
(:mod:`mmeac.utils.toolkit`).

Nothing is imported here. ``import mmeac`` imports :mod:`~.fileio` (the
checkpoint writers use it) but not :mod:`~.toolkit`: the tools import it
themselves, in ``main()``.
"""
