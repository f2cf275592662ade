"""``python -m user_control ...``: see :mod:`user_control.cli`."""

import logging

from user_control.cli import main

# The shared JSON-RPC client logs every connection retry as a warning; on a terminal the
# final one-line error says it all, so only errors get through.
logging.getLogger("maosic.hardware").setLevel(logging.ERROR)

raise SystemExit(main())
