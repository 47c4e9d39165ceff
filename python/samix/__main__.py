"""``python -m samix info``: print version, library path, BLAS and thread count;
``python -m samix --version``: print ``samix <version>``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print("usage: python -m samix info | --version\n\n  info        print version, library path, BLAS and "
              "thread count\n  --version   print the package version")
        return 0 if args else 2
    if args[0] in ("--version", "-V"):
        from ._version import __version__

        print(f"samix {__version__}")
        return 0
    if args[0] != "info":
        print(f"python -m samix: unknown command {args[0]!r} (try: info)", file=sys.stderr)
        return 2
    import numpy

    from . import info

    d = info()
    print(f"samix        {d['version']} (library {d['library_version']}, ABI {d['abi_version']})")
    print(f"library      {d['library']}")
    print(f"BLAS         {d['blas']}")
    print(f"threads      {d['threads']}")
    print(f"numpy        {numpy.__version__}")
    print(f"python       {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
