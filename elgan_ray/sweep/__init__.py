"""A study on Ray Tune: `python -m elgan_ray.sweep STUDY` (__main__.py: check, plan, run, gather, report).
The only package that imports Ray.

  settings.py     what every trial gets besides its own config, and a trial's TrainConfig
  ray_session.py  start a local Ray of its own or join --address; SIGTERM while Tune runs
  tune.py         Tuners, param spaces, Optuna and ASHA; the trial function
  ddp.py          one run on several Ray Train workers, DDP over G and D
  pretrain.py     the shared generator pre-trainings: cached, computed once under a lock
  shared.py       every node proves it sees the study; on a storage URI, the pre-trainings under a Ray actor's locks
  spot_drain.py   on a spot node, EC2's reclaim notice turned into a Ray drain (preemption: not a trial failure)
  gpu_check.py    CPUs and GPUs asked for are used: refused locally, or (GPUs) a trial that fails naming its node
  gather.py       evals.csv from every run's record, checked against its folder and the plan; baselines copied in
  resume.py       what defines a study (study.json), and what --resume checks before Ray starts
  reaper.py       a small process that ends what is left of the local Ray when the driver was killed
  dry_run.py      --dry-run: the runs, the pre-trainings they share, an estimate of the cost
"""
