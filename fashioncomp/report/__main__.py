"""`python -m fashioncomp.report --run R`: see `fashioncomp.report`."""
from fashioncomp.report import main

raise SystemExit(main())
