"""The warm path's daemon calls: a warm job's inputs travel in its job line and its outputs come
back as one event of its runner, so neither needs the daemon's archive (~50 ms each, however small);
a cold job's outputs come back so too.

Real containers of the runner image; the executor's own ``docker.APIClient`` is wrapped to count
what it is asked.
"""

from __future__ import annotations

import collections
import json
import uuid

import docker
import pytest

from hub_service.executors.docker.warm import INLINE_MAX, OUTPUTS_MAX
from tests.docker.conftest import HONEST_X, Recorder, assert_honest, honest_notebook, make_notebook
from tests.docker.test_warm import _image_without_warm_mode, spy_assignments, started_warm

pytestmark = pytest.mark.skipif(_image_without_warm_mode(), reason="the runner image has no warm mode")

ARCHIVE_CALLS = ("put_archive", "get_archive")


def count_archives(ex) -> collections.Counter:
    """Count the executor's archive calls (its one APIClient, the pool's too)."""
    calls: collections.Counter = collections.Counter()
    api = ex._gateway.api
    for name in ARCHIVE_CALLS:
        real = getattr(api, name)

        def counted(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        setattr(api, name, counted)
    return calls


BUNDLE_CELL = ("import pathlib\n"
               "pathlib.Path('doubled.csv').write_text(pathlib.Path('data.csv').read_text() * 2)")


async def test_a_warm_job_needs_no_archive_for_its_inputs_or_outputs(make_executor, make_job):
    ex = await started_warm(make_executor, warm_pool=1)
    try:
        got = spy_assignments(ex)
        calls = count_archives(ex)
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert_honest(spec, out, rec)  # (its parameters, its output notebook and files: all there)
        assert got[0][1] is not None, "the job did not start warm"
        assert calls == {}, calls
        assert "outputs" not in [e["event"] for e in rec.events]  # the files are no event of the job's

        # A bundle's data file goes in the line too; what the notebook writes beside it comes back.
        assert await ex.pool.wait_ready(90)
        spec = make_job(make_notebook(BUNDLE_CELL), files={"data.csv": "a,b\n"})
        out = await ex.run(spec, lambda e: None, lambda line: None)
        assert out.status == "succeeded", out
        assert (spec.files_dir / "doubled.csv").read_text() == "a,b\na,b\n"
        assert calls == {}, calls
    finally:
        await ex.stop()


async def run_nested(ex, make_job) -> None:
    """Run a job with a folder in its inputs that writes one in its outputs: both come through whole."""
    spec = make_job(make_notebook("import pathlib\npathlib.Path('sub').mkdir()\n"
                                  "pathlib.Path('sub/x.txt').write_text('deep')"))
    (spec.files_dir / "in").mkdir()
    (spec.files_dir / "in" / "y.txt").write_text("nested")
    out = await ex.run(spec, lambda e: None, lambda line: None)
    assert out.status == "succeeded", out
    assert (spec.files_dir / "sub" / "x.txt").read_text() == "deep"
    assert (spec.files_dir / "in" / "y.txt").read_text() == "nested"


async def test_a_cold_job_needs_no_archive_when_its_inputs_and_outputs_fit_in_its_line_and_an_event(
        make_executor, make_job):
    """A cold job of the runner image has its runner read its line as a warm one does (its inputs in it, its
    outputs back as an event), delivered as its container starts: no archive call at all. A job in another
    image (here the runner image under another name: its runner may be older) has its inputs copied in, and
    its environment asks its runner for its outputs as an event (OUTPUTS_ENV). Inputs a line cannot carry (a
    folder) go in by archive, and outputs an event cannot carry come out by one, whole."""
    ex = make_executor(warm_pool=0)
    await ex.start()
    client = docker.from_env()
    other = f"notebook-jobs-runner-cold-test:{uuid.uuid4().hex[:8]}"
    client.images.get(ex.image).tag(other)
    try:
        calls = count_archives(ex)
        spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
        rec = Recorder()
        out = await ex.run(spec, rec.on_event, rec.on_log)
        assert_honest(spec, out, rec)
        steps = [step for step, _ in spec.timeline.marks]
        assert "line_delivered" in steps and "warm_taken" not in steps, steps
        assert calls == {}, calls
        assert "outputs" not in [e["event"] for e in rec.events]

        spec = make_job(make_notebook(BUNDLE_CELL), files={"data.csv": "a,b\n"})
        spec.image = other
        out = await ex.run(spec, lambda e: None, lambda line: None)
        assert out.status == "succeeded", out
        assert (spec.files_dir / "doubled.csv").read_text() == "a,b\na,b\n"
        assert calls == {"put_archive": 1}, calls

        await run_nested(ex, make_job)
        assert calls == {"put_archive": 2, "get_archive": 1}, calls
    finally:
        await ex.stop()
        client.images.remove(other)
        client.close()


async def test_inputs_or_outputs_that_an_event_cannot_carry_go_by_archive(make_executor, make_job):
    """A bundle with a folder, or inputs past INLINE_MAX, go in with put_archive; outputs past OUTPUTS_MAX,
    or with a folder, come out with get_archive: all of them whole, as a cold job's."""
    ex = await started_warm(make_executor, warm_pool=1)
    try:
        got = spy_assignments(ex)
        calls = count_archives(ex)
        spec = make_job(make_notebook(
            "import pathlib\nbig = pathlib.Path('big.bin').read_bytes()\n"
            f"pathlib.Path('out.bin').write_bytes(big[:{OUTPUTS_MAX + 1}])"),
            files={"big.bin": "x" * (INLINE_MAX + 1)})
        out = await ex.run(spec, lambda e: None, lambda line: None)
        assert out.status == "succeeded", out
        assert got[-1][1] is not None and got[-1][1].inputs is None
        assert (spec.files_dir / "out.bin").read_bytes() == b"x" * (OUTPUTS_MAX + 1)
        assert calls == {"put_archive": 1, "get_archive": 1}, calls

        assert await ex.pool.wait_ready(90)
        await run_nested(ex, make_job)
        assert got[-1][1] is not None and got[-1][1].inputs is None
        assert calls == {"put_archive": 2, "get_archive": 2}, calls
    finally:
        await ex.stop()


async def test_a_service_that_died_before_collecting_collects_from_the_log_once(make_executor, make_job):
    """The job ended while no service watched (here: its container kept, its outputs gone from the work
    directory): the next service finds it, reads its outputs from its log's event, and removes it."""
    first = await started_warm(make_executor, warm_pool=1, keep_containers=True)
    spec = make_job(honest_notebook(), parameters={"x": HONEST_X})
    try:
        got = spy_assignments(first)
        out = await first.run(spec, lambda e: None, lambda line: None)
        assert out.status == "succeeded" and got[0][1] is not None, out
    finally:
        await first.stop()
    for path in (spec.output_path, spec.files_dir / "result.json"):
        path.unlink()

    second = make_executor()
    await second.start()
    try:
        calls = count_archives(second)
        assert await second.running() == [spec.job_id]
        rec = Recorder()
        out = await second.reattach(spec, rec.on_event, rec.on_log)
        assert_honest(spec, out, rec)
        assert calls == {}, calls
        assert json.loads((spec.files_dir / "result.json").read_text())
        assert await second.running() == []
    finally:
        await second.stop()


@pytest.mark.parametrize("event", [
    {"outputs": {"input.ipynb": "eA=="}},  # not an output's name
    {"outputs": {"../output.ipynb": "eA=="}},
    {"files": {"../x": "eA=="}},
    {"files": {"sub/x": "eA=="}},
    {"files": {"..": "eA=="}},
    {"files": {"x": "not base64!"}},
    {"files": ["x"]},
])
def test_an_outputs_event_names_nothing_but_the_jobs_own_outputs(event, tmp_path):
    """What a runner's outputs event may name is what get_archive's unpacking keeps, by plain names:
    anything else is refused whole (nothing written; the executor copies the outputs out instead)."""
    from hub_service.executors.docker.transport import sent_outputs, write_outputs

    with pytest.raises(ValueError):
        sent_outputs(event)
    files = sent_outputs({"outputs": {"output.ipynb": "eA=="}, "files": {"a.txt": "eQ=="}})
    write_outputs(files, tmp_path)
    assert (tmp_path / "output.ipynb").read_bytes() == b"x" and (tmp_path / "files" / "a.txt").read_bytes() == b"y"
