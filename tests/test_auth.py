"""Who may do what: anonymous, the owner, another user, an admin, a bad token — on every endpoint."""

import asyncio
import json
import re
import time

import pytest
import requests

from hub_service.identity import RefreshingHubOAuth
from tests.hubtest import SERVICE, make_notebook

ENDPOINTS = [
    ("GET", ""),
    ("GET", "jobs"),
    ("POST", "jobs"),
    ("GET", "jobs/{id}"),
    ("DELETE", "jobs/{id}"),
    ("POST", "jobs/{id}/cancel"),
    ("POST", "jobs/{id}/rerun"),
    ("GET", "jobs/{id}/output"),
    ("GET", "jobs/{id}/input"),
    ("GET", "jobs/{id}/logs"),
    ("GET", "jobs/{id}/events"),
    ("GET", "jobs/{id}/metrics"),
    ("GET", "notebooks"),
    ("GET", "admin/queue"),
    ("GET", "admin/stats"),
    ("GET", "admin/demand"),
    ("POST", "admin/demand"),
    ("GET", "metrics"),
]


@pytest.fixture(scope="module")
def owned_job(hub):
    alice = hub.user("alice")
    return alice.wait(alice.submit(make_notebook("1"))["id"])


def call(hub, method, path, job_id, headers):
    url = hub.url + SERVICE + "api/" + path.format(id=job_id)
    return requests.request(method, url, headers=headers, allow_redirects=False, timeout=30,
                            files={"file": ("x.ipynb", b"{}")} if (method, path) == ("POST", "jobs") else None)


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("who", ["anonymous", "bad-token"])
def test_without_valid_credentials_every_endpoint_answers_401_json(hub, owned_job, method, path, who):
    headers = {} if who == "anonymous" else {"Authorization": "token not-a-real-token"}
    r = call(hub, method, path, owned_job["id"], headers)
    assert r.status_code == 401, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"].startswith("application/json")
    assert "error" in r.json() and r.json()["error"]["message"]


@pytest.mark.parametrize("method,path", [e for e in ENDPOINTS if "{id}" in e[1]])
def test_another_users_job_is_404(hub, owned_job, method, path):
    bob = hub.user("bob")
    r = call(hub, method, path, owned_job["id"], {"Authorization": f"token {bob.token}"})
    assert r.status_code == 404, (r.status_code, r.text[:200])
    assert r.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("path", ["admin/queue", "admin/stats", "admin/demand", "metrics"])
def test_admin_endpoints_refuse_users_and_serve_admins(hub, path):
    assert hub.user("bob").get(path).status_code == 403
    assert hub.user("admin").get(path).status_code == 200


def test_owner_and_admin_see_the_job_others_do_not_list_it(hub, owned_job):
    alice, bob, admin = hub.user("alice"), hub.user("bob"), hub.user("admin")
    assert alice.get(f"jobs/{owned_job['id']}").status_code == 200
    assert admin.get(f"jobs/{owned_job['id']}").status_code == 200
    assert owned_job["id"] not in {j["id"] for j in bob.get("jobs").json()["jobs"]}
    everyone = admin.get("jobs", params={"all": 1, "limit": 200}).json()["jobs"]
    assert owned_job["id"] in {j["id"] for j in everyone}
    # a user's user= is ignored: they still see only their own
    assert all(j["user"] == "bob" for j in bob.get("jobs", params={"user": "alice"}).json()["jobs"])


def test_admin_acts_on_another_users_job(hub, owned_job):
    admin = hub.user("admin")
    r = admin.post(f"jobs/{owned_job['id']}/rerun")
    assert r.status_code == 201 and r.json()["user"] == "alice"


def test_health_needs_no_auth(hub):
    r = requests.get(hub.url + SERVICE + "api/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert requests.get(hub.url + SERVICE + "api/openapi.json").json()["openapi"].startswith("3.")


def test_oauth_browser_login_reaches_the_pages_and_cookie_writes_need_xsrf(hub):
    alice = hub.user("alice")
    job = alice.wait(alice.submit(make_notebook("print('page')"), name="for-the-page")["id"])
    browser = alice.browser
    r = browser.get(hub.url + SERVICE)  # Hub OAuth: authorize, callback, cookie
    assert r.status_code == 200, r.text[:500]
    assert "Your jobs" in r.text and "jupyterhub-logo" in r.text  # the Hub's page.html (the list: home.js)
    r = browser.get(hub.url + SERVICE + f"jobs/{job['id']}")
    assert r.status_code == 200 and job["id"] in r.text and "for-the-page" in r.text
    # cookie-authenticated API read, then a write without and with the XSRF token
    assert browser.get(hub.url + SERVICE + "api/jobs").status_code == 200
    url = hub.url + SERVICE + "api/jobs"
    nb = {"file": ("p.ipynb", __import__("json").dumps(make_notebook("1")))}
    assert browser.post(url, files=nb, headers={"Sec-Fetch-Mode": "cors"}).status_code in (401, 403)
    xsrf = re.search(r'"xsrf": "([^"]+)"', r.text).group(1)  # (the page's JSON config block)
    r = browser.post(url, files=nb, headers={"X-XSRFToken": xsrf, "Sec-Fetch-Mode": "cors"})
    assert r.status_code == 201, r.text


def test_page_without_login_redirects_to_the_hub_login(hub):
    r = requests.get(hub.url + SERVICE, allow_redirects=False)
    assert r.status_code == 302 and "/hub/api/oauth2/authorize" in r.headers["Location"]


def test_admin_retrains_the_demand_model_and_sees_its_version(hub):
    admin = hub.user("admin")
    admin.wait(admin.submit(make_notebook("1"))["id"])
    r = admin.post("admin/demand")
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    info = admin.get("admin/demand").json()
    assert info["version"] == version and len(info["forecast_next_24h"]["jobs"]) == 24
    # how the sizing did on the jobs that really ran: they all succeeded here
    realised = info["realised"]
    assert realised["jobs"] >= 1 and realised["oom_kill_rate"] == 0.0
    assert 0.0 <= realised["memory_slack"] < 1.0 and realised["by_basis"]


def new_token(hub, note: str) -> tuple:
    """A token of alice's made in the Hub: (the token, a function that revokes it in the Hub)."""
    alice = hub.user("alice")
    xsrf = alice.browser.cookies.get("_xsrf", path="/hub/")
    r = alice.browser.post(hub.url + "/hub/api/users/alice/tokens", headers={"X-XSRFToken": xsrf},
                           json={"note": note, "expires_in": 600})
    assert r.status_code == 201, r.text
    token, token_id = r.json()["token"], r.json()["id"]

    def revoke():
        r = alice.browser.delete(hub.url + f"/hub/api/users/alice/tokens/{token_id}", headers={"X-XSRFToken": xsrf})
        assert r.status_code == 204, r.text

    return token, revoke


def test_a_token_revoked_in_the_hub_is_refused_within_the_cache_age(hub):
    """NotebookJobs.auth_cache_max_age (5 s by default): then reads and submits are refused."""
    alice = hub.user("alice")
    token, revoke = new_token(hub, "to be revoked")
    headers = {"Authorization": f"token {token}"}
    jobs_url = hub.url + SERVICE + "api/jobs"
    assert requests.get(jobs_url, headers=headers, timeout=30).status_code == 200  # now in the service's cache
    revoke()
    revoked = time.monotonic()
    while requests.get(jobs_url, headers=headers, timeout=30).status_code == 200:
        assert time.monotonic() - revoked < 5 + 2, "the revoked token still works past the cache age"
        time.sleep(0.25)
    before = len(alice.get("jobs", params={"limit": 200}).json()["jobs"])
    r = requests.post(jobs_url, headers=headers, timeout=30,
                      files={"file": ("nb.ipynb", json.dumps(make_notebook("1")).encode())})
    assert r.status_code == 401, r.text
    assert len(alice.get("jobs", params={"limit": 200}).json()["jobs"]) == before


async def test_a_token_in_use_is_asked_about_again_before_its_answer_expires(hub):
    """The Hub's answer about a token is asked for again in the background once it is half its age: a request
    after the first answer's expiry is served without a round trip to the Hub on its path, and a revoked token
    is still refused within the age (the service's HubOAuth, against the real Hub; each Hub call counted)."""
    token, revoke = new_token(hub, "asked about ahead")
    auth = RefreshingHubOAuth(api_url=hub.url + "/hub/api", api_token="unused", cache_max_age=2)
    calls, ask = [], auth._api_request

    async def counted(method, url, **kwargs):
        calls.append(url)
        return await ask(method, url, **kwargs)

    auth._api_request = counted
    assert (await auth.user_for_token(token, sync=False))["name"] == "alice"
    assert len(calls) == 1
    await asyncio.sleep(1.2)  # past half the age: served from the cache, asked again beside it
    assert (await auth.user_for_token(token, sync=False))["name"] == "alice"
    await asyncio.gather(*auth._refreshing.values())
    assert len(calls) == 2
    await asyncio.sleep(1.2)  # past the first answer's age: the refreshed one serves
    assert (await auth.user_for_token(token, sync=False))["name"] == "alice"
    assert len(calls) == 2, "a round trip to the Hub on the request's path"
    await asyncio.gather(*auth._refreshing.values())  # (that one was past half the age again)
    await asyncio.sleep(2.2)  # unused past its age: asked for on the request's path, once
    before = len(calls)
    assert (await auth.user_for_token(token, sync=False))["name"] == "alice"
    await asyncio.gather(*auth._refreshing.values())
    assert len(calls) == before + 1, "an answer past its age asked for twice"
    revoke()
    revoked = time.monotonic()
    while await auth.user_for_token(token, sync=False) is not None:
        assert time.monotonic() - revoked < 2 + 1, "the revoked token still answers past the cache age"
        await asyncio.sleep(0.1)
