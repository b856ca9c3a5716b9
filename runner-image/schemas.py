"""Generate, at the runner image's build, the code fastjsonschema makes for each of nbformat's notebook schemas.

    python schemas.py DIR [RUNNER_DIR]    (with the image's Python; RUNNER_DIR holds runner.py: /opt/runner)

Every job's runner validates the notebooks it reads and writes (nbformat, with fastjsonschema), and
fastjsonschema generates and compiles a validator for the schema of the notebook's version each time
(~30 ms of cpu). Here each schema's code is written once, as DIR/<runner.schema_key>.py ending in
``VALIDATE = <its validating function>``; the Dockerfile compiles it to bytecode, and
runner.use_precompiled_schemas() loads it instead of compiling the schema again.
"""

import glob
import json
import os
import sys

import fastjsonschema
import nbformat

out = sys.argv[1]
sys.path.insert(0, sys.argv[2] if len(sys.argv) > 2 else "/opt/runner")
from runner import schema_key  # noqa: E402

os.makedirs(out, exist_ok=True)
for path in sorted(glob.glob(os.path.join(os.path.dirname(nbformat.__file__), "v*", "*.schema.json"))):
    with open(path) as f:
        schema = json.load(f)
    name = fastjsonschema.compile(schema).__name__  # (the function compile() would return)
    code = fastjsonschema.compile_to_code(schema)
    with open(os.path.join(out, schema_key(schema, fastjsonschema.VERSION) + ".py"), "w") as f:
        f.write(f"# nbformat's {os.path.basename(path)}, by fastjsonschema {fastjsonschema.VERSION}\n")
        f.write(code + f"\n\nVALIDATE = {name}\n")
