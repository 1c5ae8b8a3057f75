# -- data (elgan_ray.data): fixtures named data_* --------------------------------------------------
import pytest as _data_pytest


@_data_pytest.fixture(scope="session")
def data_tiny(tmp_path_factory):
    """A tiny synthetic TuSimple-layout dataset (4 train, 2 val, 2 test frames), written once per session."""
    from elgan_ray.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(tmp_path_factory.mktemp("data") / "tiny", 4, 2, 2, seed=0, progress=False)


# -- training and sweeps: a dataset big enough for a few smoke steps and evaluations ------------------
@_data_pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """16 train, 8 val, 4 test synthetic frames, written once per session."""
    from elgan_ray.data.synthetic import write_synthetic_dataset

    return write_synthetic_dataset(
        tmp_path_factory.mktemp("tiny") / "data", n_train=16, n_val=8, n_test=4, seed=0, progress=False
    )
