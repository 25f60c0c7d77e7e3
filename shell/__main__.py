"""`python -m shell` is `jcsh`."""

import sys

from shell.cli import main

sys.exit(main())
