"""The Lab extension's TypeScript units (jest, in extension/src/__tests__), run from pytest so
that the one test command covers them: the parameter fields' inputs read back into values, the
job list reducer, errors and the field they name, and the sizing overrides."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hubtest import ROOT

EXTENSION = ROOT / "extension"


def test_jest_units_pass():
    jest = EXTENSION / "node_modules" / ".bin" / "jest"
    if not jest.exists():
        pytest.fail("extension/node_modules is missing: scripts/setup.sh builds the extension (jlpm install)")
    node = shutil.which("node")
    assert node, "node is needed for the extension's units"
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    r = subprocess.run([str(jest), "--ci", "--colors=false"], cwd=EXTENSION, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
