"""`python -m comfyui_nst.nodes WORKFLOW.json ...` is the same as `nst-run`."""
import sys

from .cli import main

sys.exit(main())
