"""mmeac.utils: helpers of the tools (:mod:`mmeac.utils.toolkit`).

Nothing is imported here, and ``import mmeac`` does not import this package:
the tools import :mod:`mmeac.utils.toolkit` themselves, in ``main()``.
"""
