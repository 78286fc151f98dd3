"""Install the `mirage` Python package; `python setup.py build_nif` builds the NIF.

The NIF (priv/mirage_nif.so) is normally built by `mix compile`, which runs
c_src/build.py with the same interpreter; the command here is the same build for
Python-side tooling.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import ClassVar

from setuptools import Command, setup

ROOT = Path(__file__).resolve().parent


class BuildNif(Command):
    description = "stage priv/python and build priv/mirage_nif.so (needs Erlang's erl_nif.h)"
    user_options: ClassVar = [("erts-include=", None, "directory holding erl_nif.h")]

    def initialize_options(self) -> None:
        self.erts_include: str | None = None

    def finalize_options(self) -> None:
        if self.erts_include is None:
            self.erts_include = subprocess.run(
                [
                    "erl",
                    "-noshell",
                    "-eval",
                    'io:format("~s/erts-~s/include", '
                    "[code:root_dir(), erlang:system_info(version)]), halt().",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout

    def run(self) -> None:
        script = str(ROOT / "c_src" / "build.py")
        subprocess.run([sys.executable, script, "stage"], check=True)
        subprocess.run(
            [sys.executable, script, "nif", "--erts-include", str(self.erts_include)], check=True
        )


setup(
    name="mirage",
    version="0.1.0",
    description="Image decoding, resizing and encoding on Pillow, for Python and the BEAM",
    packages=["mirage"],
    python_requires=">=3.10",
    install_requires=["Pillow>=10.1", "cffi>=1.17", "isal>=1.7"],
    extras_require={
        "dev": ["pytest>=8", "ruff>=0.6", "mypy>=1.10", "hypothesis>=6", "atheris>=2.3"]
    },
    cmdclass={"build_nif": BuildNif},
)
