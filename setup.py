"""Build the Cython extensions of core/.

Every core/*.pyx becomes an extension module core.<name>. `make build` runs
`python setup.py build_ext --inplace` so the repository itself is importable without install.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent

extensions = [
    Extension(
        f"core.{pyx.stem}",
        [str(pyx.relative_to(HERE))],
        include_dirs=[numpy.get_include()],
        extra_compile_args=["-O3"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
    for pyx in sorted((HERE / "core").glob("*.pyx"))
]

setup(
    name="mexc-pump-scanner",
    version="0.1.0",
    python_requires=">=3.11",
    packages=["core", "shards", "supervisor", "bot", "sim", "common"],
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
    zip_safe=False,
)
