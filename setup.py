"""Build the Cython extensions of core/ and shards/.

Every core/*.pyx and shards/*.pyx becomes an extension module core.<name> / shards.<name>
(shards/fastpath.pyx cimports picows' own .pxd, found on sys.path). `make build` runs
`python setup.py build_ext --inplace` so the repository itself is importable without install.
Each compiled module's Python-visible API is typed in a .pyi next to its .pyx, shipped as package data.
"""

import os
from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent

extensions = [
    Extension(
        f"{pyx.parent.name}.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for package in ("core", "shards")
    for pyx in sorted((HERE / package).glob("*.pyx"))
]

setup(
    name="mexc-pump-scanner",
    version="0.1.0",
    python_requires=">=3.11",
    packages=["core", "shards", "supervisor", "bot", "sim", "common", "detectors", "replay", "venues", "venues.mexc", "store", "trading"],
    # The stubs type the compiled modules for callers (tests/test_core_stubs.py keeps them in step).
    package_data={"core": ["*.pyi"], "shards": ["*.pyi"]},
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
            "embedsignature": True,
        },
        annotate=False,
    ),
    # One C compiler per CPU: the ten modules build in ~40 s instead of ~70 s on 2 cores (make build,
    # deploy.sh and the Dockerfile all run this; `build_ext -j N` on the command line still wins).
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
    zip_safe=False,
)
