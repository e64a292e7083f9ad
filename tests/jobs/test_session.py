"""The Java check that runs before Spark starts."""

from __future__ import annotations

import pytest

from jobs._session import ensure_java
from lf_library.errors import ConfigError


def test_missing_java_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match=r"Java not found \(no java on PATH\): Spark needs Java 17 or 21.*JAVA_HOME"):
        ensure_java()
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(ConfigError, match=r"JAVA_HOME=.*jdk has no bin/java"):
        ensure_java()


def test_java_home_wins(monkeypatch, tmp_path):
    java = tmp_path / "jdk" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\n")
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    assert ensure_java() == str(java)
