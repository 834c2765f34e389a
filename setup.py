"""Install ccop_plugin, an OpenMMLab 2.0 plugin for object-level
self-supervised pre-training for detection (CCOP and related methods)."""
import os
import os.path as osp
import re
import shutil

from setuptools import find_packages, setup


def parse_requirements(fname: str) -> list:
    """Read a requirements file, following ``-r`` includes, skipping comments."""
    reqs = []
    with open(fname) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            if line.startswith('-r '):
                reqs += parse_requirements(
                    osp.join(osp.dirname(fname), line[3:].strip()))
            else:
                reqs.append(line)
    return reqs


def get_version() -> str:
    with open(osp.join('ccop_plugin', 'version.py')) as f:
        return re.search(r"__version__ = '([^']+)'", f.read()).group(1)


def add_mim_extension() -> None:
    """Put ``configs/`` and ``tools/`` under ``ccop_plugin/.mim``.

    The layout of mmpretrain and mmdet: ``mim train`` and the library
    (:func:`ccop_plugin.utils.get_config_path`) find the configs there, in a
    checkout, an editable install and a regular one alike. In a source tree
    they are symbolic links (committed; re-created here when missing), which
    setuptools follows when it builds a wheel or an sdist, so those contain
    real files; where links cannot be made, the folders are copied. Building
    from an sdist (no top-level ``configs/``) leaves ``.mim`` as it is.
    """
    here = osp.dirname(osp.abspath(__file__))
    mim_root = osp.join(here, 'ccop_plugin', '.mim')
    for name in ('configs', 'tools'):
        src = osp.join(here, name)
        if not osp.isdir(src):
            continue  # an sdist: .mim already holds the files
        tar = osp.join(mim_root, name)
        if osp.islink(tar) and osp.realpath(tar) == osp.realpath(src):
            continue
        if osp.islink(tar) or osp.isfile(tar):
            os.remove(tar)  # a broken link or a checkout without links
        elif osp.isdir(tar):
            shutil.rmtree(tar)  # an earlier copy
        os.makedirs(mim_root, exist_ok=True)
        try:
            os.symlink(osp.join('..', '..', name), tar)
        except OSError:
            shutil.copytree(src, tar)


add_mim_extension()

setup(
    name='ccop_plugin',
    version=get_version(),
    description='Object-level self-supervised pre-training for detection '
    '(CCOP, heat-map proposals, PLRC, MCL) for OpenMMLab 2.0',
    long_description=open('README.md').read() if osp.exists('README.md') else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    # configs and tools for `mim train` and get_config_path (see MANIFEST.in)
    package_data={
        'ccop_plugin': [
            '.mim/configs/**/*.py', '.mim/tools/*.py', '.mim/tools/*.sh'
        ]
    },
    python_requires='>=3.8',
    license='Apache License 2.0',
    install_requires=parse_requirements('requirements/runtime.txt'),
    extras_require={
        'mim': parse_requirements('requirements/mminstall.txt'),
        'tests': parse_requirements('requirements/tests.txt'),
    },
    zip_safe=False,
)
