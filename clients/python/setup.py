"""Generates the gRPC stubs from proto/ into the package as it is built.

`pip install ./clients/python` runs this from the repository's clients/python folder, so the
proto is read from ../../proto; set TIMBRE_PROTO_DIR to build from elsewhere.
"""

import os
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PROTO_DIR = Path(os.environ.get("TIMBRE_PROTO_DIR", HERE.parent.parent / "proto")).resolve()
PROTO_FILE = "timbre/v1/timbre.proto"


class BuildWithStubs(build_py):
    def run(self):
        super().run()
        generate(Path(self.build_lib))


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    source = PROTO_DIR / PROTO_FILE
    if not source.is_file():
        raise SystemExit(f"timbre-client: {source} not found; set TIMBRE_PROTO_DIR to the folder holding {PROTO_FILE}")
    include = Path(grpc_tools.__file__).parent / "_proto"
    # The proto package is timbre.v1, so the stubs land in timbre/v1/ inside this package and
    # import each other as `timbre.v1.timbre_pb2`, exactly as generated.
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(source),
        ]
    )
    if code != 0:
        raise SystemExit(f"timbre-client: protoc failed on {source}")
    (out / "timbre" / "v1" / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithStubs})
