# eac_parts.py plus what a drop-in config adds to a wheel config that imports
# no modules of its own: mmeac's import, and DDP's flag for nested dropout
# (cores outside a step's budget get no gradient). A wheel config with its
# own custom_imports (mmseg's Mask2Former imports mmdet.models) takes
# eac_parts.py and lists both imports itself.
_base_ = './eac_parts.py'
custom_imports = dict(imports=['mmeac'], allow_failed_imports=False)
find_unused_parameters = True
