import sys

from astrogate.cli.main import main

sys.exit(main())
