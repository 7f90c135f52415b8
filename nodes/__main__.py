"""`python -m comfyui_nst.nodes WORKFLOW.json ...` is the same as `nst-run` (nodes/headless/cli.py)."""
import sys

from .headless.cli import main

sys.exit(main())
