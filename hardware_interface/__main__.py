"""`python -m hardware_interface [--sim] [--config lab.json] [--port 8888] ...`"""

import sys

from hardware_interface.server import main

sys.exit(main(sys.argv[1:]))
