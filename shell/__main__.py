"""`python -m shell` is `jcsh`."""

import sys

from shell.entry import main

sys.exit(main())
