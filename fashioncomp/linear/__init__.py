"""A linear model on colour and thumbnail features, the recipe's second family of model.

Logistic regression on 24 px thumbnails plus HSV colour histograms (`features`, `model`) is the
reference every recipe must beat (fashioncomp.baselines.logreg). It sees images differently from
a convnet (absolute colour, the whole silhouette at once), so its errors differ, and the pipeline
can blend its probabilities into the networks' (`linear.enabled`): the weight per task is chosen
on out-of-fold predictions (`blend`), and the stage (`stage`) writes `<run>/linear.npz`.
"""
