import sys

from orch.cli import main

sys.exit(main())
