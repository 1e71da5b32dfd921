"""Checks the release wheel as installed in a clean venv (run by xtask/src/wheel.rs).

Usage: python wheel_check.py DISTRIBUTION LICENSE_EXPRESSION REQUIRES_PYTHON VERSIONS
(VERSIONS: the supported CPython versions, comma-separated). Prints one line per problem
and exits 1 if there is any.
"""

import importlib.metadata
import os
import sys

import numpy as np

import dlpack
import dlpack._native


def section_names(path):
    """The section names of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path} is not a 64-bit little-endian ELF file")

    def u(offset, size):
        return int.from_bytes(data[offset:offset + size], "little")

    shoff, shentsize, shnum, shstrndx = u(0x28, 8), u(0x3A, 2), u(0x3C, 2), u(0x3E, 2)
    headers = [shoff + i * shentsize for i in range(shnum)]
    strtab = u(headers[shstrndx] + 0x18, 8)
    names = []
    for h in headers:
        start = strtab + u(h, 4)
        names.append(data[start:data.index(b"\0", start)].decode())
    return names


def main():
    dist, license_expression, requires_python, versions = sys.argv[1:5]
    versions = versions.split(",")
    problems = []
    meta = importlib.metadata.metadata(dist)
    for field, want in [("Name", dist), ("License-Expression", license_expression),
                        ("Requires-Python", requires_python)]:
        if meta.get(field) != want:
            problems.append(f"{field}: {meta.get(field)!r}, expected {want!r}")
    for field in ("Summary", "Description-Content-Type", "Project-URL"):
        if not meta.get(field):
            problems.append(f"{field} is missing")
    licenses = meta.get_all("License-File") or []
    if sorted(licenses) != ["LICENSE-APACHE", "LICENSE-MIT"]:
        problems.append(f"License-File: {licenses}, expected LICENSE-MIT and LICENSE-APACHE")
    shipped = {os.path.basename(str(f)) for f in importlib.metadata.files(dist) or ()}
    problems += [f"{name} is not in the wheel" for name in licenses if name not in shipped]
    classifiers = set(meta.get_all("Classifier") or [])
    running = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for version in dict.fromkeys(versions + [running]):
        if f"Programming Language :: Python :: {version}" not in classifiers:
            problems.append(f"no classifier for Python {version}")

    # The import is the installed wheel's, not a source tree's.
    if not os.path.abspath(dlpack.__file__).startswith(os.path.abspath(sys.prefix) + os.sep):
        problems.append(f"dlpack imported from {dlpack.__file__}, outside {sys.prefix}")
    # The extension carries no symbol table or debug info.
    native = dlpack._native.__file__
    extra = [s for s in section_names(native) if s == ".symtab" or s.startswith(".debug")]
    if extra:
        problems.append(f"{os.path.basename(native)} is not stripped: {extra}")
    # A zero-copy exchange works.
    a = np.arange(6.0)
    r = np.from_dlpack(dlpack.asdlpack(a))
    if r.ctypes.data != a.ctypes.data or r.tolist() != a.tolist():
        problems.append("np.from_dlpack(dlpack.asdlpack(a)) is not a zero-copy view of a")

    for problem in problems:
        print(f"wheel check: {problem}")
    if not problems:
        print(f"wheel check: {dist} {meta.get('Version')} on Python {running}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
