"""One training run, no Ray: `python -m elgan_ray.train` (__main__.py), and what the sweep's trials call.

loop.py         train(): pre-train G (the baseline), pre-train D, alternate G and D; g_step, d_step; top to bottom
losses.py       the paper's equations (1)-(5): tensors in, scalar out
health.py       D's health figures: patch accuracy, embedding distance, adversarial against fit gradient
validation.py   G's maps of the validation frames, scored through evaluate/maps.py; line widths
batches.py      which frames each step trains on; the next batch prepared while a step runs
checkpoint.py   save, load and check a run's checkpoint.pt
run_log.py      a run's record as it trains: evals.jsonl rows, TensorBoard, previews, final maps, status
timing.py       how long each kind of step takes here: for the sweep's dry run and the bench
device.py       the default device (a GPU when torch sees one) and the check of one asked for
"""
