"""experiments.trees runs end to end with tiny settings and writes its outputs."""

import re

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.tree import DecisionTreeClassifier

from experiments import trees as experiment


@pytest.mark.slow  # the whole experiment end to end (13 s); its functions are tested in tests/trees
def test_trees_experiment_writes_plots_tree_and_table(tmp_path, capsys):
    assert experiment.main(["--estimators", "3", "--datasets", "wine", "--max-depth", "3",
                            "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in ("tree_regions.png", "accuracy_vs_estimators.png", "tree.txt", "comparison.md"):
        assert (tmp_path / name).stat().st_size > 0
    # The deck's depth-3 tree on iris petal length/width: scikit-learn's training accuracy.
    iris = load_iris()
    sk = DecisionTreeClassifier(max_depth=3, random_state=0).fit(iris.data[:, 2:], iris.target)
    acc = float(re.search(r"training accuracy (\S+)", out).group(1))
    assert acc == pytest.approx(sk.score(iris.data[:, 2:], iris.target), abs=1e-4)
    assert (tmp_path / "tree.txt").read_text().startswith("|--- petal length (cm) <= 2.450")
    rows = [line for line in (tmp_path / "comparison.md").read_text().splitlines() if line.startswith("| wine")]
    assert [r.split("|")[2].strip() for r in rows] == [
        "tree", "bagging", "random forest", "AdaBoost (SAMME)", "gradient boosting", "XGBoost-style"]
    scores = np.array([[float(c) for c in r.split("|")[3:5]] for r in rows])
    assert np.all((scores > 0.5) & (scores <= 1.0))


def test_trees_experiment_rejects_bad_flags():
    with pytest.raises(SystemExit) as e:
        experiment.main(["--datasets", "mnist"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        experiment.main(["--estimators", "0"])
    assert e.value.code == 2
