"""Where the docker executor writes cpu weights, on both cgroup layouts.

This machine has cgroup v1 only, so v2's single tree is laid out in a temporary
directory; the files the kernel would own are plain files there, which is all the
code under test reads and writes. The docker tests (tests/docker/test_cpu.py) check
the v1 tree of the real kernel.
"""

from hub_service.executors.docker.cgroups import Cgroups
from hub_service.executors.docker.gateway import Names


def v1(root):
    for controller in ("cpu", "memory", "cpuacct"):
        (root / controller).mkdir(parents=True)
    (root / "cpu" / "cpu.shares").write_text("1024\n")
    return root


def v2(root, controllers="cpuset cpu io memory pids"):
    root.mkdir(parents=True)
    (root / "cgroup.controllers").write_text(controllers + "\n")
    (root / "cpu.weight").write_text("100\n")
    return root


def cgroups(root, parent="nbj/jobs"):
    return Cgroups(str(root), Names("test", cgroup_parent=parent))


def test_v1_weights_are_shares_in_the_cpu_tree(tmp_path):
    cg = cgroups(v1(tmp_path / "cg"))
    base, fname, convert = cg.cpu_tree()
    assert (base, fname, convert(512)) == (tmp_path / "cg" / "cpu", "cpu.shares", 512)
    assert cg.weighable()
    cg.set_group_shares(2048)
    # every level of the path, created as runc would with the first job
    assert (tmp_path / "cg/cpu/nbj/cpu.shares").read_text() == "2048"
    assert (tmp_path / "cg/cpu/nbj/jobs/cpu.shares").read_text() == "2048"
    job = tmp_path / "cg/cpu" / cg.names.job_cgroup("k1").strip("/")
    job.mkdir(parents=True)
    cg.set_shares("k1", 256)
    assert (job / "cpu.shares").read_text() == "256"


def test_v2_weights_are_cpu_weight_in_the_one_tree(tmp_path):
    root = v2(tmp_path / "cg")
    (root / "nbj/jobs").mkdir(parents=True)  # (v2: the service does not create the levels)
    cg = cgroups(root)
    assert cg.cpu_tree()[:2] == (root, "cpu.weight")
    assert cg.weighable()
    cg.set_group_shares(2048)
    assert (root / "nbj/cpu.weight").read_text() == "200"
    assert (root / "nbj/jobs/cpu.weight").read_text() == "200"
    job = root / cg.names.job_cgroup("k1").strip("/")
    job.mkdir(parents=True)
    cg.set_shares("k1", 256)
    assert (job / "cpu.weight").read_text() == "25"


def test_no_cpu_controller_means_no_weights(tmp_path):
    root = v2(tmp_path / "cg", controllers="memory pids")
    (root / "nbj/jobs").mkdir(parents=True)
    cg = cgroups(root)
    assert cg.cpu_tree() is None and not cg.weighable()
    cg.set_group_shares(2048)
    cg.set_shares("k1", 256)
    assert not (root / "nbj/cpu.weight").exists()


def test_without_a_cgroup_parent_nothing_is_weighable(tmp_path):
    assert not cgroups(v1(tmp_path / "cg"), parent="").weighable()


def test_a_job_whose_cgroup_is_gone_is_left_alone(tmp_path):
    cg = cgroups(v1(tmp_path / "cg"))
    cg.set_shares("gone", 256)  # (no error: best effort)
    assert not (tmp_path / "cg/cpu/nbj/jobs").exists()
