"""fashioncomp: a cross-validated multi-task pipeline for Kaggle-style fashion image competitions."""
import time as _time

# when this process started working (the package is the first thing every command imports):
# stage timings count their imports of torch and timm too, which a budget has to pay for
STARTED = _time.perf_counter()
