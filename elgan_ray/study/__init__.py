"""What a study is and which runs it makes (search_spaces/*.yaml); no torch, no Ray.

yaml_file.py    find and read a study file: bounded plain YAML, with the line of every key
spec.py         a study file (over its base.yaml) -> a checked SweepSpec; its grid and scientific points
scheduler.py    the `scheduler` key of a search study (ASHA), checked
plan.py         the runs: GAN trials and a fit-only control per seed, their roles and names, the varying keys
"""
