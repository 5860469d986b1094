"""``python -m symcost`` and the ``symcost`` console script.

The command line's modules (typer, sympy) are imported inside :func:`main`, so that Ctrl-C at any
moment, start-up included, exits with status 130 and no traceback (128 + SIGINT, the shell's own
convention for a command stopped by Ctrl-C).
"""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as run

        run()
    except KeyboardInterrupt:
        if "--debug" in sys.argv[1:]:
            raise
        sys.exit(130)


if __name__ == "__main__":
    main()
