"""port-for's own command line, pointed at ``$PORT_FOR_CONFIG`` instead of ``/etc/port-for.conf``.

port-for's CLI has no option for its store's path; this does exactly what its console
script does (import ``port_for.cmd`` and call ``main``) after changing that default.
"""

import os
import sys

from port_for import cmd, store

store.PortStore.__init__.__defaults__ = (os.environ["PORT_FOR_CONFIG"],)
sys.exit(cmd.main())
