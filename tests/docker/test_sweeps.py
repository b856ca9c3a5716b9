"""A sweep with the docker backend, through a real Hub: each run in a container of its own, with its own
parameters, reporting its own metrics."""

from tests.docker.test_service import docker_hub  # noqa: F401 (the fixture: a Hub with the docker backend)
from tests.test_sweeps import TRAINING, wait_sweep


def test_each_run_of_a_sweep_runs_in_its_own_container_and_reports_its_own_metrics(docker_hub):  # noqa: F811
    frank = docker_hub.user("frank")
    r = frank.post("sweeps", json={"notebook": TRAINING, "parameters": {"lr": [0.1, 0.2], "depth": 1}})
    assert r.status_code == 201, r.text
    sweep = wait_sweep(frank, r.json()["id"], timeout=180, metric="loss", mode="max")
    assert sweep["status"] == "succeeded", sweep
    assert [(run["parameters"], run["metrics"]) for run in sweep["runs"]] == [
        ({"lr": lr, "depth": 1}, {"loss": lr / 3, "acc": 10 + lr}) for lr in (0.1, 0.2)]
    assert all(run["used"]["peak_memory"] > 0 for run in sweep["runs"])
    assert {frank.get(f"jobs/{run['job_id']}").json()["backend"] for run in sweep["runs"]} == {"docker"}
    assert sweep["best"]["job_id"] == sweep["runs"][1]["job_id"]
