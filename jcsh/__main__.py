"""`python -m jcsh` is `jcsh`."""

import sys

from jcsh.shell.entry import main

sys.exit(main())
