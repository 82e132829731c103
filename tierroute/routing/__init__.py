"""Routing quality: the local router's features, model, training, evaluation and calibration.

The classifiers in `tierroute.classifiers` use `model` and `store` at run time; the
rest (training, evaluation, calibration, datasets) serve the `tierroute train`,
`tierroute eval` and `tierroute calibrate` commands.
"""
