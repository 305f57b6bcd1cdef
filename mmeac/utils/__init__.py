"""mmeac.utils: helpers of the tools (:mod:`mmeac.utils.toolkit`).

Nothing is imported here, so that ``import mmeac.utils.toolkit`` stays
light.
"""
