"""Packaging for mmeac.

The OpenMMLab stack (mmcv with compiled ops in particular) is not installed
through ``install_requires``: mmcv 2.1.0 must be built against the installed
torch. Use ``bash tools/setup_env.sh``, which installs torch, the stack and
then this package in editable mode.
"""
import os.path as osp
import re
from typing import Dict, List

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_version() -> str:
    """Read ``__version__`` from ``mmeac/version.py`` without importing it."""
    with open(osp.join(HERE, 'mmeac', 'version.py'), encoding='utf-8') as f:
        match = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(),
                          re.M)
    if match is None:
        raise RuntimeError('mmeac/version.py defines no __version__')
    return match.group(1)


def parse_requirements(name: str) -> List[str]:
    """Return the requirement lines of ``requirements/<name>``.

    Comments, blank lines and ``-r`` includes are dropped.
    """
    reqs = []
    with open(osp.join(HERE, 'requirements', name), encoding='utf-8') as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line and not line.startswith('-'):
                reqs.append(line)
    return reqs


def read_long_description() -> str:
    readme = osp.join(HERE, 'README.md')
    if not osp.exists(readme):
        return ''
    with open(readme, encoding='utf-8') as f:
        return f.read()


extras: Dict[str, List[str]] = {
    'tests': parse_requirements('tests.txt'),
    'mim': parse_requirements('mminstall.txt'),
    'torch': parse_requirements('torch.txt'),
    'build': parse_requirements('build.txt'),
}
extras['all'] = sorted(set(extras['tests'] + extras['mim'] + extras['torch']))

setup(
    name='mmeac',
    version=read_version(),
    description='Elastic Attention Cores (EAC) ViT backbones for OpenMMLab '
    'segmentation, detection and classification',
    long_description=read_long_description(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests', 'docs')),
    include_package_data=True,
    python_requires='>=3.8,<3.13',
    install_requires=parse_requirements('runtime.txt'),
    extras_require=extras,
    classifiers=[
        'Programming Language :: Python :: 3',
        'Operating System :: POSIX :: Linux',
        'License :: OSI Approved :: Apache Software License',
    ],
    zip_safe=False,
)
