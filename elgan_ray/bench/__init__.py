"""The measurements of `python -m elgan_ray.bench` (the command is __main__.py), one module per group of stages.

  harness.py      the Bench (scratch folder, repetitions, step times), median timings, the machine, the log
  evaluator.py    evaluator: the evaluate command against the plain port of the official loop
  label_maps.py   postprocess, render: basic++ post-processing and label rendering per map
  step.py         step, pretrain_sharing: loader against training step, FLOP/s, shared pre-training's saving
                  loader: the share of a first epoch the loop waits for its batches
  step_memory.py  paper_memory: the peak memory a paper-preset G+D step adds per frame on CPU (fresh process)
  ray_stages.py   tune, ddp, sweep: a Tune trial against a plain process, Ray Train workers, the smoke sweep
  gpu.py          gpu: the paper-preset G+D step on a CUDA device in fp32 and bf16, against the bf16 peak; its bf16
                  peak memory per frame and top kinds of GPU work (work_kinds.py); DDP on 2

Each stage takes a `Bench` and returns the JSON keys it measured; notes on how a number was obtained go to
`bench.notes`. Imports beyond numpy happen inside the stages, so a missing module skips only its stage.
"""
