"""The record: the on-disk contract every stage shares (names, paths, readers and writers). Stdlib and JSON only.

names.py     the vocabulary: phases, post-processings, metrics, roles, kinds, statuses, health figures, evals.csv's
             columns and the config keys they stand for, run and group labels, the ranges of a trial's resources
layout.py    every path under a results folder, and every file name of a study and a run folder
runs.py      the one reader and writer of evals.jsonl, status.json, run.json and study.json
"""
