"""python3 -m vaccel info — a readable report of the backend and devices."""
import sys

from . import report


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cmd = argv[0] if argv else "info"
    if cmd in ("info", "--info"):
        print(report())
        return 0
    print("usage: python3 -m vaccel info", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
