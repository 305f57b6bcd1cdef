"""Version of mmeac."""
__version__ = '0.1.0'


def _parse(version: str) -> tuple:
    return tuple(int(p) for p in version.split('.') if p.isdigit())


version_info = _parse(__version__)
