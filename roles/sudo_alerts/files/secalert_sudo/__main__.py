"""``python3 -I <version dir>/secalert_sudo --check CONFIG | --self-test``: see cli.py."""

import os
import sys

# Run as a directory, Python puts the package directory itself first on sys.path; the
# package is imported from its parent (the version directory), and from nowhere else.
sys.path[0] = os.path.dirname(os.path.abspath(sys.path[0]))

from secalert_sudo.cli import main  # noqa: E402 - after the path is set

sys.exit(main(sys.argv))
