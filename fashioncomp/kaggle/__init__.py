"""Run fashioncomp on Kaggle: the pipeline as one offline kernel script, and its upload.

    python -m fashioncomp.kaggle build --config FILE --competition SLUG --kernel-id OWNER/SLUG ...
    python -m fashioncomp.kaggle build-inference --run runs/NAME --dataset-id OWNER/SLUG ...
    python -m fashioncomp.kaggle push [--path build/kaggle ...]

Modules: bundle (the script's payload and text), build (kernel folders), weights (a run as a
dataset and back), push (the Kaggle CLI), kernel_script (the template the kernel runs).
See docs/kaggle.md.
"""
