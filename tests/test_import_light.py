"""``import mmeac`` registers everything but imports only what it needs."""
import sys
import textwrap

from _tool_helpers import REPO, run

CODE = textwrap.dedent('''
    import inspect
    import sys

    import mmeac
    from mmengine.registry import MODELS, TRANSFORMS

    loaded = [m for m in ('mmseg.models', 'mmdet.models',
                          'mmpretrain.models', 'mmeac.testing',
                          'mmeac.analysis', 'mmeac.utils.toolkit')
              if m in sys.modules]
    assert not loaded, loaded
    assert 'EACViT' in MODELS and 'RandomPatchMask' in TRANSFORMS
    # the head is a lazy builder until its first build ...
    assert inspect.isfunction(MODELS.get('LinearProbeSegHead'))
    from mmseg.registry import MODELS as SEG_MODELS
    head = SEG_MODELS.build(
        dict(type='LinearProbeSegHead', in_channels=8, num_classes=3))
    # ... which imports and registers the class itself
    from mmeac.models.heads import LinearProbeSegHead
    from mmeac.models.heads.linear_probe_seg_head import \\
        LinearProbeSegHead as Cls
    assert LinearProbeSegHead is Cls and type(head) is Cls
    assert MODELS.get('LinearProbeSegHead') is Cls
    assert head.conv_seg.in_channels == 16 and head.num_classes == 3
    print('ok')
''')


def test_import_mmeac_is_light_and_the_head_builds_lazily():
    proc = run([sys.executable, '-c', CODE], cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == 'ok'
