import sys

from astrogate.main import main

sys.exit(main())
