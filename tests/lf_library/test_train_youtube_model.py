"""The YouTube example's model trainer fails with one line and exit 2 on what a fresh clone lacks."""

from __future__ import annotations

import sys
from lf_library.lfs import train_youtube_model

def test_missing_data_names_the_file_and_exits_2(tmp_path, capsys):
    code = train_youtube_model.main(["--lakehouse", str(tmp_path / "yt"), "--data", str(tmp_path / "nodata")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("train_youtube_model: error: ")
    assert str(tmp_path / "nodata" / "youtube_spam" / "Youtube01-Psy.csv") in err
    assert "--data" in err and "LAKELABEL_DATA" in err
    assert not (tmp_path / "yt").exists()  # nothing written


def test_without_scikit_learn_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    (data / "youtube_spam").mkdir(parents=True)
    (data / "youtube_spam" / "Youtube01-Psy.csv").write_text("COMMENT_ID,CONTENT,CLASS\nc1,hello,0\n")
    # The quick start installs '.[spark]' only, which has no scikit-learn: hide it as that venv would.
    for name in [m for m in sys.modules if m == "sklearn" or m.startswith("sklearn.")] + ["sklearn"]:
        monkeypatch.setitem(sys.modules, name, None)
    code = train_youtube_model.main(["--lakehouse", str(tmp_path / "yt"), "--data", str(data)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert "scikit-learn is not installed" in err
    assert f"{sys.executable} -m pip install 'scikit-learn" in err
    assert "Traceback" not in err
    assert not (tmp_path / "yt").exists()  # nothing written


def test_on_databricks_the_name_must_be_a_unity_catalog_name(tmp_path, capsys):
    code = train_youtube_model.main(["--lakehouse", str(tmp_path / "yt"), "--data", str(tmp_path / "nodata"),
                                     "--tracking-uri", "databricks", "--name", "youtube_spam_video1"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == (
        "train_youtube_model: error: --name youtube_spam_video1: on Databricks the model is registered in Unity "
        "Catalog, whose names are catalog.schema.model; pass --name main.lakelabel.youtube_spam_video1 (or set "
        "LAKELABEL_YOUTUBE_MODEL)")
    assert not (tmp_path / "yt").exists()


def test_name_registers_the_model_under_it_with_its_signature(tmp_path, shared_data, monkeypatch, capsys):
    """`--name` (or $LAKELABEL_YOUTUBE_MODEL, which conf/youtube.yaml reads too): a Unity Catalog name on Databricks,
    where registering needs the model's signature; here the lakehouse's sqlite store."""
    import mlflow

    from lf_library.models import resolve_model

    monkeypatch.setenv("LAKELABEL_YOUTUBE_MODEL", "team_spam")
    lake = tmp_path / "yt"
    assert train_youtube_model.main(["--lakehouse", str(lake), "--data", str(shared_data)]) == 0
    assert capsys.readouterr().out.strip() == "registered models:/team_spam/1 as models:/team_spam@champion"
    store = f"sqlite:///{lake / 'mlflow.db'}"
    resolved = resolve_model("models:/team_spam@champion", store)
    assert resolved.model_version == "team_spam/1"
    mlflow.set_tracking_uri(store)  # (set_registry_uri would also set MLFLOW_REGISTRY_URI for the tests after this)
    source = mlflow.MlflowClient(store, registry_uri=store).get_model_version("team_spam", "1").source
    info = mlflow.models.get_model_info(source)
    assert info.signature.inputs.input_names() == ["CONTENT"] and info.signature.outputs is not None


def test_a_store_that_refuses_the_model_is_one_line(tmp_path, shared_data, capsys):
    """A re-drill: `--tracking-uri databricks` on a machine without Databricks credentials printed MLflow's
    traceback and exited 1."""
    code = train_youtube_model.main(["--lakehouse", str(tmp_path / "yt"), "--data", str(shared_data),
                                     "--tracking-uri", "databricks", "--name", "main.lakelabel.youtube_spam_video1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("train_youtube_model: error: the MLflow store databricks refused the model: "), err
    assert not (tmp_path / "yt").exists()
