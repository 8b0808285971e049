"""``rankloss bench`` on the user's own files: the config's ``dataset`` table, ``--data``, the
checks before training, the run record naming the file and its hash, and tiny runs end to
end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rankloss.bench import tasks
from rankloss.bench.config import load_config, own_data_suite
from rankloss.cli import main
from rankloss.data.formats import DataSource


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RANKLOSS_DATA", str(tmp_path / "cache"))


def _svmlight(path: Path, queries: int = 24, docs: int = 8, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = []
    for q in range(queries):
        x = rng.normal(size=(docs, 5))
        labels = np.digitize(x[:, 0] + 0.3 * rng.normal(size=docs), [0.0, 0.8, 1.5])
        for label, row in zip(labels, x):
            lines.append(
                f"{label} qid:{q + 1} " + " ".join(f"{i + 1}:{v:.3f}" for i, v in enumerate(row))
            )
    path.write_text("\n".join(lines) + "\n")


def _ratings(path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = ["user,item,rating,time"]
    for u in range(30):
        for t, i in enumerate(rng.choice(25, size=8, replace=False)):
            lines.append(f"u{u},m{i},{rng.integers(3, 6)},{t}")
    path.write_text("\n".join(lines) + "\n")


LTR_CONFIG = """
[bench]
seeds = [0]

[[suite]]
name = "mine"
base = "ltr"
dataset = {dataset}
budget = {{ epochs = 1, patience = 1 }}
model = {{ hidden = [8] }}

[[suite.loss]]
name = "ranknet"
"""


def _config(tmp_path: Path, dataset: str, text: str = LTR_CONFIG) -> Path:
    path = tmp_path / "conf" / "bench.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.format(dataset=dataset))
    return path


def test_relative_path_and_spec(tmp_path: Path) -> None:
    (tmp_path / "conf" / "data").mkdir(parents=True)
    _svmlight(tmp_path / "conf" / "data" / "my.svm")
    config = load_config(
        _config(tmp_path, '{ path = "data/my.svm", format = "svmlight", seed = 1 }')
    )
    (suite,) = config.suites
    source = DataSource.from_spec(suite.dataset)
    assert source.format == "svmlight" and source.options == {"seed": 1}
    assert source.path == (tmp_path / "conf" / "data" / "my.svm").resolve()
    # the config check parsed the file into the cache already
    assert len(list((tmp_path / "cache" / "parsed").iterdir())) == 1
    label = tasks.resolve_dataset(suite)
    assert label.startswith("my.svm (svmlight, sha256 ") and len(label.split()[-3]) == 13
    assert label.endswith(", options " + label[-7:-1] + ")")  # {"seed": 1}
    data = tasks.load_dataset(label)
    assert data.train.num_features == 5 and len(data.test) == 5  # 20% of 24 queries


@pytest.mark.badinput("bench")
@pytest.mark.parametrize(
    ("dataset", "match"),
    [
        ('{ path = "my.svm", format = "svmlight", sed = 1 }', r"unknown key\(s\) \['sed'\]"),
        ('{ path = "nope.svm", format = "svmlight" }', r"path '.*nope.svm' is not a file"),
        ('{ path = "my.svm", format = "interactions" }', r"format 'interactions' is data for"),
        ('{ path = "my.svm" }', "needs 'format'"),
        ('{ path = "my.svm", format = "svmlight", test_fraction = 2.0 }', r"in \[0, 1\)"),
        ("3", "dataset must be a data set's name or a table"),
    ],
)
def test_bad_dataset_tables_name_the_file_and_suite(tmp_path: Path, dataset, match) -> None:
    (tmp_path / "conf").mkdir()
    _svmlight(tmp_path / "conf" / "my.svm")
    path = _config(tmp_path, dataset)
    with pytest.raises(ValueError, match=match) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: [[suite]] 'mine'")


@pytest.mark.badinput("bench")
def test_a_bad_line_fails_at_load_with_file_and_line(tmp_path: Path, capsys) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "my.svm").write_text("1 qid:1 1:0.5\n0 qid:1 1:0.2\n2 qid:2 1:oops\n")
    path = _config(tmp_path, '{ path = "my.svm", format = "svmlight" }')
    with pytest.raises(SystemExit) as error:
        main(["bench", "--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert error.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"rankloss bench: {path}: [[suite]] 'mine': dataset: ")
    assert f"{tmp_path / 'conf' / 'my.svm'}:3: feature '1:oops'" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.badinput("bench")
def test_fallbacks_are_refused_with_a_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    _svmlight(tmp_path / "conf" / "my.svm")
    text = LTR_CONFIG.replace("base = ", 'fallbacks = ["digits"]\nbase = ')
    with pytest.raises(ValueError, match="'fallbacks' apply to registered data sets"):
        load_config(_config(tmp_path, '{ path = "my.svm", format = "svmlight" }', text))


@pytest.mark.badinput("cli")
def test_data_flags_are_checked(tmp_path: Path, capsys) -> None:
    _svmlight(tmp_path / "my.svm")
    for argv, match in (
        (["--data", str(tmp_path / "my.svm")], "--data needs --data-format"),
        (["--task", "ltr"], "--task needs --data PATH"),
        (
            ["--data", str(tmp_path / "my.svm"), "--data-format", "svmlight", "--task", "recsys"],
            "is data for",
        ),
        (["--data", str(tmp_path / "my.svm"), "--data-format", "trec"], "a 'qrels' file too"),
        (["--data", str(tmp_path / "my.svm"), "--data-format", "interactions"], "my.svm:1: header"),
    ):
        with pytest.raises(SystemExit) as error:
            main(["bench", *argv, "--out", str(tmp_path / "out"), "--no-progress"])
        assert error.value.code == 2 and match in capsys.readouterr().err


def test_retrieval_gets_class_disjoint_train_classes(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "v.npz", x=rng.normal(size=(100, 4)), y=np.repeat(np.arange(5) * 7, 20))
    suite = own_data_suite(tmp_path / "v.npz", "vectors", losses=["supcon"])
    assert suite.task == "retrieval" and suite.budget["train_classes"] == 3
    assert [row.name for row in suite.losses] == ["supcon"]
    data = tasks.load_dataset(suite.dataset)
    assert data.num_classes == 5 and data.class_names == ["0", "7", "14", "21", "28"]


def test_end_to_end_svmlight_config(tmp_path: Path, capsys) -> None:
    (tmp_path / "conf").mkdir()
    _svmlight(tmp_path / "conf" / "train.svm", seed=0)
    _svmlight(tmp_path / "conf" / "test.svm", queries=6, seed=1)
    path = _config(
        tmp_path,
        '{ path = "train.svm", test = "test.svm", format = "svmlight", normalize = "none" }',
    )
    out = tmp_path / "out"
    argv = ["bench", "--config", str(path), "--out", str(out), "--no-progress", "--no-plots"]
    assert main(argv) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert run["dataset"].startswith("train.svm (svmlight, sha256 ")
    assert run["metrics"]["ndcg@10"] > 0
    report = (out / "results.md").read_text()
    assert f"### mine ({run['dataset']})" in report
    assert main(argv) == 0 and "resuming: 1 of 1 runs" in capsys.readouterr().out
    # a changed file is a new data set: its label (hash) and so its runs are new
    _svmlight(tmp_path / "conf" / "train.svm", seed=5)
    assert main(argv) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2 and runs[0]["dataset"] != runs[1]["dataset"]


def test_a_changed_option_makes_new_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    """A second process (no memory of the first's data sets) with another option of the same
    file does not resume the first's runs."""
    (tmp_path / "conf").mkdir()
    _svmlight(tmp_path / "conf" / "train.svm", seed=0)
    out = tmp_path / "out"
    argv = ["--out", str(out), "--no-progress", "--no-plots"]
    for fraction in (0.2, 0.5):
        monkeypatch.setattr(tasks, "_OWN_DATA", {})  # as in a new process
        spec = f'{{ path = "train.svm", format = "svmlight", test_fraction = {fraction} }}'
        assert main(["bench", "--config", str(_config(tmp_path, spec)), *argv]) == 0
    assert "resuming" not in capsys.readouterr().out
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert len(runs) == 2 and runs[0]["dataset"] != runs[1]["dataset"]
    assert all(", options " in r["dataset"] for r in runs)


def test_end_to_end_interactions_from_the_command_line(tmp_path: Path) -> None:
    _ratings(tmp_path / "ratings.csv")
    out = tmp_path / "out"
    argv = ["bench", "--data", str(tmp_path / "ratings.csv"), "--data-format", "interactions"]
    argv += ["--loss", "bpr", "--loss", "listnet", "--epochs", "1", "--seeds", "1"]
    assert main([*argv, "--out", str(out), "--no-progress", "--no-plots"]) == 0
    runs = json.loads((out / "results.json").read_text())["runs"]
    assert [r["loss"] for r in runs] == ["bpr", "listnet"]
    assert all(r["dataset"].startswith("ratings.csv (interactions, sha256 ") for r in runs)
    assert all(r["suite"] == "recsys-own-data" for r in runs)
    assert all(0 <= r["metrics"]["ndcg@10"] <= 1 for r in runs)
    # the check before training parsed the file as the runs read it (the recsys suite's
    # ratio split and threshold 1): one parse, one cache entry
    assert all("rating >= 1; split 'ratio'" in r["notes"] for r in runs)
    assert len(list((tmp_path / "cache" / "parsed").iterdir())) == 1


@pytest.mark.badinput("bench")
def test_interactions_that_leave_a_split_empty_fail_before_training(tmp_path: Path) -> None:
    # every user rated one item: the ratio split has nothing to validate or test on
    (tmp_path / "one.csv").write_text(
        "user,item,rating,time\n" + "".join(f"u{u},m{u % 7},5,0\n" for u in range(20))
    )
    with pytest.raises(
        ValueError,
        match=r"--data: dataset: rating >= 1 and split 'ratio' "
        r"leave train 20, validation 0 and test 0 interactions",
    ):
        own_data_suite(tmp_path / "one.csv", "interactions")
    # every rating below the file's threshold: the file is named
    _ratings(tmp_path / "ratings.csv")  # ratings 3..5
    (tmp_path / "bench.toml").write_text(
        '[[suite]]\nname = "mine"\nbase = "recsys"\n'
        'dataset = { path = "ratings.csv", format = "interactions", rating_threshold = 6.0 }\n'
        '[[suite.loss]]\nname = "bpr"\n',
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match=r"ratings\.csv: .*no interaction has rating >= 6"):
        load_config(tmp_path / "bench.toml")


def test_a_files_own_split_and_threshold_win_and_the_notes_say_so(tmp_path: Path) -> None:
    _ratings(tmp_path / "ratings.csv")
    (tmp_path / "bench.toml").write_text(
        "[[suite]]\n"
        'name = "mine"\n'
        'base = "recsys"\n'
        'dataset = { path = "ratings.csv", format = "interactions", rating_threshold = 3.0, '
        'split = "leave-last-out" }\n'
        "budget = { epochs = 1 }\n"
        '[[suite.loss]]\nname = "bpr"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    argv = ["bench", "--config", str(tmp_path / "bench.toml"), "--seeds", "1"]
    assert main([*argv, "--out", str(out), "--no-progress", "--no-plots"]) == 0
    (run,) = json.loads((out / "results.json").read_text())["runs"]
    assert "rating >= 3; split 'leave-last-out'" in run["notes"]


OWN_CONFIG = """
[bench]
seeds = [0]

[[suite]]
name = "mine"
base = "{base}"
dataset = {dataset}
"""


def _bad_inputs(folder: Path) -> list[tuple[str, str, str]]:
    """``(base suite, dataset table, expected message)`` of files the loaders refuse."""
    import gzip

    import pandas as pd

    _ratings(folder / "r.csv")
    frame = pd.read_csv(folder / "r.csv")
    frame["user"] = frame["user"].astype(object).where(frame.index != 1, None)
    frame.to_parquet(folder / "r.parquet")
    features = ["qid,docid,f"] + [f"{q},d{d},{d / 10}" for q in range(1, 7) for d in range(4)]
    (folder / "f.csv").write_text("\n".join(features) + "\n")
    judged = "".join(f"{q} 0 d0 1\n" for q in range(1, 7)).encode()
    (folder / "q.txt.gz").write_bytes(gzip.compress(judged)[:-12])
    (folder / "q.txt").write_bytes(judged[:10] + b"\xff" + judged[10:])
    np.savez(folder / "v.npz", x=np.ones((20, 3)), y=np.array(list("ab") * 10))
    return [
        (
            "recsys",
            '{ path = "r.csv", format = "interactions", user = "usr" }',
            "r.csv:1: no user column 'usr'",
        ),
        (
            "recsys",
            '{ path = "r.parquet", format = "interactions" }',
            "r.parquet: row 2: user id is missing",
        ),
        (
            "ltr",
            '{ path = "f.csv", qrels = "q.txt.gz", format = "trec" }',
            "q.txt.gz: compressed data is truncated",
        ),
        ("ltr", '{ path = "f.csv", qrels = "q.txt", format = "trec" }', "q.txt:2: invalid UTF-8"),
        ("retrieval", '{ path = "v.npz", format = "vectors" }', "v.npz: labels 'y' hold <U1"),
    ]


@pytest.mark.badinput("bench")
@pytest.mark.parametrize("case", range(5))
def test_bad_files_are_one_line_refusals(tmp_path: Path, capsys, case: int) -> None:
    (tmp_path / "conf").mkdir()
    base, dataset, match = _bad_inputs(tmp_path / "conf")[case]
    path = tmp_path / "conf" / "bench.toml"
    path.write_text(OWN_CONFIG.format(base=base, dataset=dataset))
    with pytest.raises(SystemExit) as error:
        main(["bench", "--config", str(path), "--out", str(tmp_path / "out"), "--no-progress"])
    assert error.value.code == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and message.startswith(f"rankloss bench: {path}: ")
    assert f"{tmp_path / 'conf'}/{match}" in message
