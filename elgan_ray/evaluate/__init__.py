"""The TuSimple evaluator, identical to the official benchmark (docs/tusimple-metric.md); no torch, no Ray.
`python -m elgan_ray.evaluate` (__main__.py: the flags, --per-image, --oracle, the summary line).

  score.py        score a prediction file against a label file (the fast path, else the plain one); the oracle
  metric.py       the official metric, vectorised over lanes and images
  reference.py    the plain port of the official loop, the yardstick metric.py is tested against
  jsonl.py        TuSimple's JSON-lines files: bounded reading, the plain reader and the fast one (msgspec, numpy)
  postprocess.py  a lane probability map -> TuSimple lanes: basic and basic++, and our optional filters
  maps.py         a stack of maps scored with every post-processing; the val_maps.npz a run keeps
"""
