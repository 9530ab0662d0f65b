import sys

from neuralplay.cli import main

sys.exit(main())
