"""errors.py: a UserError survives pickling (Ray returns a Train worker's error to the trial that launched it)."""

import pickle

from elgan_ray.errors import UserError


def test_a_user_error_is_rebuilt_whole_from_its_pickle():
    error = pickle.loads(pickle.dumps(UserError("study.yaml", "must be a number", line=3, key="loss.lambda")))
    assert isinstance(error, UserError) and str(error) == "study.yaml:3: key 'loss.lambda': must be a number"
