"""The record: the on-disk contract every stage shares (names, paths, readers and writers). Stdlib and JSON only
(store.py: pyarrow.fs).

names.py     the vocabulary: phases, post-processings, metrics, roles, kinds, statuses, health figures, evals.csv's
             columns and the config keys they stand for, run and group labels, the ranges of a trial's resources
layout.py    every path under a results folder, and every file name of a study and a run folder
runs.py      the one reader and writer of evals.jsonl, status.json, run.json and study.json
store.py     a results URI (s3://...): the node-local mirror of it, and pushing and pulling through pyarrow.fs
"""
