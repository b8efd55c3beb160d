"""``python -m inpaint_utils.data {download,list,source}``."""
import sys

from .command import main

sys.exit(main())
