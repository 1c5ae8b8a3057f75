"""TuSimple-format lane data, read the same way whether real or synthetic. `python -m elgan_ray.data synth|show`
(__main__.py).

  labels.py       label files (bounded, checked) and the rendering of lanes into training maps
  tusimple.py     the torch Dataset over a TuSimple-layout folder: frames decoded, resized, labels rendered
  synthetic.py    writes a synthetic set in TuSimple's exact layout; the embedded default set
  scene.py        a synthetic road scene's parameters and its lanes' labels
  render.py       a synthetic scene's pixels
"""
