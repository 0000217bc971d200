import sys

from timbre_autodj import main

sys.exit(main())
