"""python -m nst_core.bench"""

from . import main

main()
