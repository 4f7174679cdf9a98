"""``python -m fastdl``: the command line (``fastdl.cli``)."""

import sys

from fastdl.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
