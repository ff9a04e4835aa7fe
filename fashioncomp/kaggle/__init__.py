"""Run fashioncomp on Kaggle: the pipeline as one offline kernel script, and its upload.

    python -m fashioncomp.kaggle build --config FILE --competition SLUG --kernel-id OWNER/SLUG ...
    python -m fashioncomp.kaggle build-inference --run runs/NAME --dataset-id OWNER/SLUG ...
    python -m fashioncomp.kaggle push [--path build/kaggle ...]
    python -m fashioncomp.kaggle status|output|submit ...       (after the push: loop_commands)

Modules: bundle (the script's payload and text), build (kernel folders), weights (a run as a
dataset and back), push (the uploads), kernel_script (the template the kernel runs),
attached_folds (finished folds from earlier kernels' outputs, inside a kernel); names
(Kaggle's name limits), cli_runner (runs the Kaggle CLI), cli_reply (reads its replies),
status, output and submit (after the push).
See docs/kaggle.md.
"""
