from fashioncomp.cli import main

raise SystemExit(main())
