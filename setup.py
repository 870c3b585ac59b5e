"""Builds gpuinit's one compiled piece, the CPU fill engine (gpuinit.kernels._cpu).

Everything else is in pyproject.toml. The extension is optional: without a C++ compiler the
install goes on, and gpuinit fills on the CPU with its NumPy implementation, which gives the
same numbers, more slowly.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# No contraction and no fast-math: the stream contract rounds every operation separately.
UNIX_FLAGS = ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-fast-math", "-fno-math-errno", "-pthread"]
MSVC_FLAGS = ["/O2", "/std:c++17", "/fp:precise"]


class BuildExt(build_ext):
    def build_extensions(self):
        flags = MSVC_FLAGS if self.compiler.compiler_type == "msvc" else UNIX_FLAGS
        for ext in self.extensions:
            ext.extra_compile_args = flags
            if self.compiler.compiler_type != "msvc":
                ext.extra_link_args = ["-pthread"]
        super().build_extensions()


setup(
    ext_modules=[Extension("gpuinit.kernels._cpu", sources=["gpuinit/kernels/cpu_engine.cpp"],
                           include_dirs=["gpuinit/kernels"], depends=["gpuinit/kernels/philox.cuh", "gpuinit/kernels/host_simd.h"],
                           language="c++", optional=True)],
    cmdclass={"build_ext": BuildExt},
)
