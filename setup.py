"""Build of the C extension icalign._core (the rest of the metadata is in pyproject.toml).

The extension is compiled with OpenMP when the compiler supports it; otherwise it
is built single-threaded and icalign says so once at import. Vector code for
AVX2/AVX-512 is selected at run time (function target attributes), so the
default build is portable: no -march=native.
"""
import os
import sys
import tempfile
from pathlib import Path

import numpy
import setuptools
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# pyproject.toml gives its license as an SPDX expression, which setuptools reads from
# version 77 on (its [build-system] asks for that). pip builds in an isolated
# environment that has it; an in-place build (python setup.py build_ext --inplace)
# uses this environment's setuptools, and an older one fails with a puzzling message.
MIN_SETUPTOOLS = 77
if int(setuptools.__version__.split(".")[0]) < MIN_SETUPTOOLS:
    sys.exit(f"building icalign needs setuptools >= {MIN_SETUPTOOLS}, this environment has "
             f"{setuptools.__version__}: pip install 'setuptools>={MIN_SETUPTOOLS}'")

CSRC = Path("csrc")
SOURCES = sorted(str(p) for p in CSRC.glob("*.c"))
# -ffp-contract=off: a * b + c stays two roundings whatever the compiler and CFLAGS
# (clang fuses it by default), so a build reproduces the committed results bit for bit
BASE_FLAGS = ["-std=c11", "-O3", "-fno-math-errno", "-ffp-contract=off", "-Wall",
              "-Wno-unknown-pragmas"]
# ICALIGN_SANITIZE=1: AddressSanitizer + UndefinedBehaviorSanitizer, any finding aborts
# (run Python with the ASan runtime preloaded; see tests/sanitize.sh)
SANITIZE_FLAGS = ["-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
                  "-fno-sanitize-recover=all"]


def compiler_supports_openmp(compiler) -> bool:
    """Try to compile and link a tiny OpenMP program with -fopenmp."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "omp_probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=["-fopenmp"])
            compiler.link_executable(objs, os.path.join(tmp, "omp_probe"),
                                     extra_postargs=["-fopenmp"])
            return True
        except Exception:
            return False


class BuildExt(build_ext):
    def build_extensions(self):
        use_openmp = (os.environ.get("ICALIGN_NO_OPENMP") != "1"
                      and compiler_supports_openmp(self.compiler))
        if not use_openmp:
            print("icalign: building without OpenMP (single-threaded)", file=sys.stderr)
        for ext in self.extensions:
            ext.extra_compile_args = BASE_FLAGS + (["-fopenmp"] if use_openmp else [])
            ext.extra_link_args = ["-fopenmp"] if use_openmp else []
            if os.environ.get("ICALIGN_DEBUG") == "1":  # debugger builds
                ext.extra_compile_args += ["-O0", "-g"]
            if os.environ.get("ICALIGN_SANITIZE") == "1":  # tests/sanitize.sh
                ext.extra_compile_args += SANITIZE_FLAGS
                ext.extra_link_args += SANITIZE_FLAGS
        super().build_extensions()


setup(
    ext_modules=[
        Extension(
            "icalign._core",
            sources=SOURCES,
            include_dirs=[numpy.get_include(), str(CSRC)],
            depends=[str(p) for p in CSRC.glob("*.h")],
        )
    ],
    cmdclass={"build_ext": BuildExt},
)
