"""``python -m gpuinit report [options]``: the memory report (see ``gpuinit.report``)."""

import sys

from .report import main


def _dispatch(argv) -> int:
    if not argv or argv[0] != "report":
        print("usage: python -m gpuinit report [--model NAME] [--device DEV] [--json] ...", file=sys.stderr)
        return 2
    return main(argv[1:])


if __name__ == "__main__":
    sys.exit(_dispatch(sys.argv[1:]))
