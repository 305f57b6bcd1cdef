"""Packaging for mmeac.

The OpenMMLab stack (mmcv with compiled ops in particular) is not installed
through ``install_requires``: mmcv 2.1.0 must be built against the installed
torch. Use ``bash tools/setup_env.sh``, which installs torch, the stack and
then this package in editable mode.

mmeac's own CPU kernels (``mmeac/ops/csrc``) are compiled into ``mmeac._C``
when torch is importable at build time (``pip install --no-build-isolation``).
They are built for the vector instructions of the machine that builds them,
as mmcv's ops are. Environment variables:

* ``MMEAC_WITH_OPS=0`` skips them (mmeac then runs the op's plain path);
  ``MMEAC_WITH_OPS=1`` makes a failed build an error (default: a warning).
* ``MMEAC_CPU_ISA=avx512|avx2|default`` overrides the detected instruction
  set.
"""
import os
import os.path as osp
import platform
import re
from setuptools import find_packages, setup
from typing import Dict, List

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


def cpu_isa() -> str:
    """Vector instruction set for the CPU kernels: ``MMEAC_CPU_ISA`` if set,
    else the best of avx512 / avx2 that this machine's CPU reports."""
    isa = os.getenv('MMEAC_CPU_ISA')
    if isa:
        if isa not in ('avx512', 'avx2', 'default'):
            raise ValueError(f'MMEAC_CPU_ISA must be avx512, avx2 or default, '
                             f'got {isa!r}')
        return isa
    if platform.machine() not in ('x86_64', 'AMD64'):
        return 'default'
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            flags = set(
                re.findall(r'^flags\s*:(.*)$', f.read(), re.M)[0].split())
    except (OSError, IndexError):
        return 'default'
    if {'avx512f', 'avx512dq', 'avx512vl', 'avx512bw', 'fma'} <= flags:
        return 'avx512'
    if {'avx2', 'fma'} <= flags:
        return 'avx2'
    return 'default'


ISA_FLAGS = {
    'avx512': [
        '-mavx512f', '-mavx512dq', '-mavx512vl', '-mavx512bw', '-mfma',
        '-DCPU_CAPABILITY=AVX512', '-DCPU_CAPABILITY_AVX512'
    ],
    'avx2':
    ['-mavx2', '-mfma', '-DCPU_CAPABILITY=AVX2', '-DCPU_CAPABILITY_AVX2'],
    'default': [],
}


def get_extensions() -> list:
    """``mmeac._C`` (the CPU kernels), or nothing without torch."""
    with_ops = os.getenv('MMEAC_WITH_OPS', '')
    if with_ops == '0':
        return []
    try:
        from torch.utils.cpp_extension import CppExtension
    except ImportError:
        if with_ops == '1':
            raise RuntimeError('MMEAC_WITH_OPS=1 but torch is not importable '
                               '(install torch first and build with '
                               '--no-build-isolation)')
        return []
    csrc = osp.join('mmeac', 'ops', 'csrc')
    sources = [osp.join(csrc, 'ops.cpp')] + sorted(
        osp.join(csrc, 'cpu', f)
        for f in os.listdir(osp.join(HERE, csrc, 'cpu')) if f.endswith('.cpp'))
    return [
        CppExtension(
            'mmeac._C',
            sources,
            extra_compile_args=[
                '-O3', '-std=c++20', '-fopenmp', '-Wno-maybe-uninitialized'
            ] + ISA_FLAGS[cpu_isa()],
            extra_link_args=['-fopenmp'],
            optional=with_ops != '1')
    ]


def get_cmdclass() -> dict:
    ext_modules = get_extensions()
    if not ext_modules:
        return dict(ext_modules=[], cmdclass={})
    from torch.utils.cpp_extension import BuildExtension
    return dict(
        ext_modules=ext_modules, cmdclass={'build_ext': BuildExtension})


extras: Dict[str, List[str]] = {
    'tests': parse_requirements('tests.txt'),
    'mim': parse_requirements('mminstall.txt'),
    'torch': parse_requirements('torch.txt'),
    'build': parse_requirements('build.txt'),
    'onnx': parse_requirements('onnx.txt'),
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
    **get_cmdclass(),
)
