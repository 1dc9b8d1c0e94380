"""Build the sample project: run its tests, then pack it into dist/.

Usage: python build.py [--seconds N] [--output DIR]

N: pretend the build takes a while. DIR: where calc.zip goes (default: dist/).
"""

import argparse
import hashlib
import pathlib
import sys
import time
import unittest
import zipfile

HERE = pathlib.Path(__file__).resolve().parent


def run_tests() -> bool:
    suite = unittest.defaultTestLoader.discover(str(HERE), pattern="test_*.py")
    result = unittest.TextTestRunner(stream=sys.stdout, verbosity=2).run(suite)
    return result.wasSuccessful()


def pack(output: pathlib.Path) -> pathlib.Path:
    output.mkdir(parents=True, exist_ok=True)
    target = output / "calc.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for source in sorted(HERE.glob("calc*.py")):
            # A fixed date: the same source gives the same bytes on every server.
            entry = zipfile.ZipInfo(source.name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(entry, source.read_bytes(), zipfile.ZIP_DEFLATED)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    print(f"packed {target.name}: {target.stat().st_size} bytes, sha256 {digest}")
    return target


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--output", type=pathlib.Path, default=HERE / "dist")
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        print("compiling...", flush=True)
        time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
    if not run_tests():
        print("tests failed", file=sys.stderr)
        return 1
    pack(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
