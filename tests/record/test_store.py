"""record/store.py: a results URI's node-local mirror, pushed and pulled through pyarrow.fs against moto's S3 server
on 127.0.0.1; a local results folder, where every copy is a no-op."""

from pathlib import Path

from elgan_ray.record import store


def test_a_local_folder_is_its_own_mirror_and_copies_do_nothing(tmp_path):
    assert not store.is_uri(tmp_path) and store.mirror_root(tmp_path) == tmp_path
    (tmp_path / "run").mkdir()
    store.push(tmp_path, tmp_path / "run")
    assert store.pull(tmp_path, tmp_path / "run") and not store.pull(tmp_path, tmp_path / "none")
    assert store.exists(tmp_path, tmp_path / "run") and store.read_text(tmp_path, tmp_path / "x") is None


def test_a_run_folder_goes_to_s3_and_comes_back_whole(s3_server, monkeypatch):
    env, client = s3_server
    for name, value in env.items():  # pyarrow's S3 client reads AWS_ENDPOINT_URL and the keys from the environment
        monkeypatch.setenv(name, value)
    uri = "s3://elgan-results/prefix"
    mirror = store.mirror_root(uri)
    assert store.is_uri(uri) and mirror == store.mirror_root(uri + "/")  # the same on every node
    run = mirror / "study" / "runs" / "seed=0"
    run.mkdir(parents=True, exist_ok=True)
    (run / "evals.jsonl").write_text('{"step": 1}\n')
    (run / "checkpoint.pt").write_bytes(b"weights")
    (run / ".evals.jsonl.1234.tmp").write_text("a half-written temporary file")
    store.push(uri, run)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket="elgan-results")["Contents"])
    assert keys == ["prefix/study/runs/seed=0/checkpoint.pt", "prefix/study/runs/seed=0/evals.jsonl"]
    assert store.uri_of(uri, run) == "s3://elgan-results/prefix/study/runs/seed=0"

    elsewhere = mirror / "pulled"  # another node's mirror, or a rank's own folder
    assert store.pull(uri, run, into=elsewhere, skip=("checkpoint.pt",))
    assert sorted(p.name for p in elsewhere.iterdir()) == ["evals.jsonl"]
    assert store.read_text(uri, run / "evals.jsonl") == '{"step": 1}\n'
    store.push(uri, run / "evals.jsonl", to=mirror / "copy" / "evals.jsonl")
    assert store.exists(uri, mirror / "copy" / "evals.jsonl")

    store.remove(uri, run)
    assert not store.exists(uri, run) and not run.exists()
    assert not store.pull(uri, run, into=elsewhere) and not Path(elsewhere).exists()  # nothing there: nothing here
