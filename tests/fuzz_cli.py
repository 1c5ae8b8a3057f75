"""Seeded random mutations of valid inputs, each run through a command's `main` (as `python -m` runs it): every run
must keep the one-line contract, exit 0 with the command's result or exit 2 with one line on stderr, never a
traceback.

    python tests/fuzz_cli.py {evaluate,study,overrides} --seed S --n N --work DIR

Runs in its own process (the tests start it under a memory limit), so that a mutation that exhausts memory or
kills the interpreter fails the test instead of the test session. Exits 0 when every run kept the contract,
else 1 after printing the first mutation that broke it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import re
import sys
import traceback
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BASE_YAML = HERE.parent / "search_spaces" / "base.yaml"
GOOD_LANE = [-2] * 10 + list(range(300, 346))  # 56 values, one per h_sample
H_SAMPLES = list(range(160, 711, 10))
# Tokens a careless or hostile user puts where a value belongs (JSON, YAML and plain text alike).
HOSTILE = [
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e30", "1" * 400, "-0", "-1", "0", "2", "-2", "0.5",
    "4294967296", "1000000000000", "null", "true", "false", "[]", "{}", '""', "[[[[[[[[[[]]]]]]]]]]",
    '"../../x.jpg"', '"/etc/passwd"', '"\\u0000"', '"\\ud800"', "\u00e9", "\x00", "\ufeff", "\r\n", "\t", "\n", " ",
    "&a [1, 2]", "*a", "!!python/object/apply:os.system [echo]", "!!binary AAAA", "~", ".inf", ".nan", "-.inf",
    "1.0e-5", "1e-5", "'ce'", "emb", "ce", "[ce, emb]", "{loss.gen: [ce]}", "- x", ": ", "#", "%", "@", "`",
]  # fmt: skip


class ReachedRay(BaseException):
    """Raised by the import of Ray: the sweep accepted the study and would start its trials now."""


class _RayBlocker:
    """A meta path finder that turns any import of Ray into ReachedRay."""

    def find_spec(self, name, path=None, target=None):
        if name == "ray" or name.startswith("ray."):
            raise ReachedRay
        return None


def mutate(text: str, rng: np.random.Generator) -> str:
    """One to three random edits: a flipped byte, a cut, a repeat, a swap of lines, a hostile token."""
    for _ in range(int(rng.integers(1, 4))):
        kind = int(rng.integers(8))
        n = len(text)
        i, j = sorted(int(x) for x in rng.integers(0, n + 1, 2))
        if kind == 0 and n:  # flip one bit of one byte (maybe no longer UTF-8: kept as a surrogate escape)
            data = bytearray(text.encode("utf-8", "surrogateescape"))
            k = int(rng.integers(len(data)))
            data[k] ^= 1 << int(rng.integers(8))
            text = data.decode("utf-8", "surrogateescape")
        elif kind == 1:
            text = text[:i] + text[j:]
        elif kind == 2:
            text = text[:j] + text[i:j] + text[j:]
        elif kind == 3:
            lines = text.split("\n")
            a, b = (int(x) for x in rng.integers(0, len(lines), 2))
            lines[a], lines[b] = lines[b], lines[a]
            text = "\n".join(lines)
        elif kind == 4:
            numbers = list(re.finditer(r"-?\d+(\.\d+)?(e-?\d+)?", text))
            if numbers:
                m = numbers[int(rng.integers(len(numbers)))]
                text = text[: m.start()] + str(rng.choice(HOSTILE)) + text[m.end() :]
        elif kind == 5:
            text = text[:i] + str(rng.choice(HOSTILE)) + text[i:]
        elif kind == 6:
            text = text[:i]  # truncated
        else:
            lines = text.split("\n")
            del lines[int(rng.integers(len(lines)))]
            text = "\n".join(lines)
    return text


def write(path: Path, text: str) -> str:
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return str(path)


def run_main(module: str, argv: list[str]) -> tuple[object, str, str]:
    """(exit status or the exception that escaped, stdout, stderr) of run_cli(module.main, argv)."""
    from elgan_ray.errors import run_cli

    imported = importlib.import_module(module)
    if hasattr(imported, "__path__"):  # a command package: its main is in __main__.py
        imported = importlib.import_module(f"{module}.__main__")
    main = imported.main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status: object = run_cli(main, argv)
        except ReachedRay:
            status = "ray"
        except BaseException as error:  # noqa: BLE001 - any escape breaks the contract, SystemExit included
            status = error
            traceback.print_exc(file=err)
    return status, out.getvalue(), err.getvalue()


def kept_contract(status: object, out: str, err: str, result_ok) -> bool:
    if status == 2:
        lines = [line for line in err.splitlines() if line.strip()]
        return out == "" and len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    return status in (0, "ray") and result_ok(out) and "Traceback" not in err


def official_result(out: str) -> bool:
    try:
        result = json.loads(out)
    except ValueError:
        return False
    names = [item.get("name") for item in result] if isinstance(result, list) else None
    return names == ["Accuracy", "FP", "FN"] and out.count("\n") == 1


def one_json_object(out: str) -> bool:
    try:
        return isinstance(json.loads(out), dict) and out.count("\n") == 1
    except ValueError:
        return False


def cases(kind: str, rng: np.random.Generator, work: Path, n: int):
    """(description, module, argv, result check) of each of the n runs."""
    if kind == "evaluate":
        labels = [{"raw_file": f"clips/{i}/20.jpg", "lanes": [GOOD_LANE], "h_samples": H_SAMPLES} for i in range(3)]
        preds = [{"raw_file": f"clips/{i}/20.jpg", "lanes": [GOOD_LANE], "run_time": 10} for i in range(3)]
        gt_text = "".join(json.dumps(x) + "\n" for x in labels)
        pred_text = "".join(json.dumps(x) + "\n" for x in preds)
        for i in range(n):
            which = int(rng.integers(3))  # the prediction file, the label file, or both
            pred = mutate(pred_text, rng) if which != 1 else pred_text
            gt = mutate(gt_text, rng) if which != 0 else gt_text
            argv = [write(work / f"p{i}.json", pred), write(work / f"g{i}.json", gt), "-q"]
            yield f"pred:\n{pred!r}\ngt:\n{gt!r}", "elgan_ray.evaluate", argv, official_result
    elif kind == "study":
        body = (
            "scientific: {loss.gen: [ce, emb]}\nseeds: 2\n"
            "fixed: {optim.lr_g: 1.0e-4, loss.lambda: 1.0, schedule.gan_steps: 8}\n"
            "resources: {cpu: 1, gpu: 0, workers: 1}\ntables: [stability]\n"
        )
        for i in range(n):
            text = f"study: s{i}\ndescription: fuzz\nbase: {BASE_YAML}\n" + mutate(body, rng)
            argv = [write(work / f"s{i}.yaml", text), "--results", str(work / f"results{i}"), "--preset", "smoke"]
            yield f"study:\n{text!r}", "elgan_ray.sweep", argv, lambda out: out == ""
    elif kind == "overrides":
        good = ["loss.gen=ce", "optim.lr_g=1.0e-4", "generator.down_layers=[1, 2]", "seed=3", "data.sigma=1.5"]
        for _ in range(n):
            pairs = [mutate(p, rng) if rng.random() < 0.7 else p for p in good]
            argv = ["--preset", "smoke", "--describe", "--", *pairs]
            yield f"overrides: {pairs!r}", "elgan_ray.train", argv, one_json_object
    else:
        raise SystemExit(f"unknown kind {kind}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("evaluate", "study", "overrides"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args()
    sys.meta_path.insert(0, _RayBlocker())  # no study may start Ray here: reaching it means "accepted"
    rng = np.random.default_rng(args.seed)
    for number, (what, module, argv, result_ok) in enumerate(cases(args.kind, rng, args.work, args.n)):
        status, out, err = run_main(module, argv)
        if not kept_contract(status, out, err, result_ok):
            print(f"run {number} broke the contract (status {status!r})\n{what}\nstdout: {out[-2000:]!r}")
            print(f"stderr:\n{err[-4000:]}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
