"""A run's final generator on every frame of a split, written as a TuSimple submission file.
`python -m elgan_ray.predict RUN_DIR` (__main__.py); the sweep's `--predict SPLIT` calls it for every finished run.

  submission.py   predictions of a split from a finished run's checkpoint, in the official format, and their scores
"""
