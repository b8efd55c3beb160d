"""``python -m inpaint_utils.cli``: the ``inpaint`` command without installing."""
import sys

from .command import main

sys.exit(main())
