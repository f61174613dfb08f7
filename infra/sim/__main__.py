"""`python -m infra.sim --port N`."""

import sys

from infra.sim.server import main

sys.exit(main())
