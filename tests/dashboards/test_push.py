"""`replywatch dashboards push` against a fake Grafana HTTP API (no Grafana runs here).

The fake answers the endpoints grafana-client calls as Grafana 10/11 documents them: folders by
uid, dashboards by uid, ``POST /api/dashboards/db``, bearer-token auth (401), a viewer token
(403 on writes).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from dashboards.build import build_all
from dashboards.push import PushError, push_dashboards
from tests.conftest import RunCli

TOKEN = "glsa_TEST-grafana-token-never-printed"
VIEWER = "glsa_TEST-viewer-token"


@dataclass
class FakeGrafana:
    """Folders and dashboards in memory, behind Grafana's HTTP API."""

    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def app(self) -> web.Application:
        @web.middleware
        async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
            header = request.headers.get("Authorization", "")
            if header not in (f"Bearer {TOKEN}", f"Bearer {VIEWER}"):
                return web.json_response({"message": "Unauthorized"}, status=401)
            if request.method == "POST" and header == f"Bearer {VIEWER}":
                return web.json_response({"message": "Access denied"}, status=403)
            response: web.StreamResponse = await handler(request)
            return response

        async def get_folder(request: web.Request) -> web.Response:
            folder = self.folders.get(request.match_info["uid"])
            if folder is None:
                return web.json_response({"message": "folder not found"}, status=404)
            return web.json_response(folder)

        async def create_folder(request: web.Request) -> web.Response:
            body = await request.json()
            if body["uid"] in self.folders:
                return web.json_response({"message": "folder exists"}, status=409)
            self.folders[body["uid"]] = {"uid": body["uid"], "title": body["title"]}
            return web.json_response(self.folders[body["uid"]])

        async def get_dashboard(request: web.Request) -> web.Response:
            stored = self.dashboards.get(request.match_info["uid"])
            if stored is None:
                return web.json_response({"message": "Dashboard not found"}, status=404)
            return web.json_response(stored)

        async def save_dashboard(request: web.Request) -> web.Response:
            body = await request.json()
            model, folder = body["dashboard"], body.get("folderUid")
            if folder not in self.folders:
                return web.json_response({"message": "folder not found"}, status=400)
            old = self.dashboards.get(model["uid"])
            if old is not None and not body.get("overwrite"):
                return web.json_response({"message": "version-mismatch"}, status=412)
            version = 1 if old is None else old["meta"]["version"] + 1
            self.dashboards[model["uid"]] = {
                "dashboard": model,
                "meta": {"folderUid": folder, "version": version},
            }
            url = f"/d/{model['uid']}/{model['title'].replace(' ', '-')}"
            return web.json_response(
                {"uid": model["uid"], "url": url, "status": "success", "version": version}
            )

        app = web.Application(middlewares=[auth])
        app.router.add_get("/api/folders/{uid}", get_folder)
        app.router.add_post("/api/folders", create_folder)
        app.router.add_get("/api/dashboards/uid/{uid}", get_dashboard)
        app.router.add_post("/api/dashboards/db", save_dashboard)
        return app


@pytest.fixture
async def grafana() -> AsyncIterator[tuple[FakeGrafana, str]]:
    fake = FakeGrafana()
    server = TestServer(fake.app(), host="127.0.0.1")
    await server.start_server()
    yield fake, str(server.make_url("")).rstrip("/")
    await server.close()


async def test_push_creates_the_folder_then_updates_its_own_dashboards(
    grafana: tuple[FakeGrafana, str],
) -> None:
    """First push creates four dashboards in the replywatch folder; the second updates them."""
    fake, url = grafana
    first = await asyncio.to_thread(push_dashboards, url, TOKEN, build_all())
    assert {r.action for r in first} == {"created"} and len(first) == 4
    assert fake.folders == {"replywatch": {"uid": "replywatch", "title": "replywatch"}}
    assert {d["meta"]["folderUid"] for d in fake.dashboards.values()} == {"replywatch"}
    second = await asyncio.to_thread(push_dashboards, url, TOKEN, build_all())
    assert {r.action for r in second} == {"updated"}
    assert {d["meta"]["version"] for d in fake.dashboards.values()} == {2}
    assert fake.dashboards["replywatch-oncall"]["dashboard"]["title"] == "replywatch: on-call"


async def test_someone_elses_dashboard_is_never_overwritten(
    grafana: tuple[FakeGrafana, str],
) -> None:
    """A dashboard with our uid but without the replywatch tag stops the push."""
    fake, url = grafana
    fake.folders["team"] = {"uid": "team", "title": "team"}
    theirs = {"uid": "replywatch-overview", "title": "Our own overview", "tags": ["team"]}
    fake.dashboards["replywatch-overview"] = {
        "dashboard": theirs,
        "meta": {"folderUid": "team", "version": 7},
    }
    with pytest.raises(PushError, match="'replywatch-overview' already exists and was not made"):
        await asyncio.to_thread(push_dashboards, url, TOKEN, build_all())
    assert fake.dashboards["replywatch-overview"]["dashboard"] is theirs


@pytest.mark.parametrize(
    ("token", "words"),
    [("glsa_wrong", "refused the token (401)"), (VIEWER, "may not write dashboards (403)")],
)
async def test_a_bad_token_gets_a_clear_error_without_the_token(
    grafana: tuple[FakeGrafana, str], token: str, words: str
) -> None:
    """401 and 403 say what to fix and never repeat the token."""
    _fake, url = grafana
    with pytest.raises(PushError) as caught:
        await asyncio.to_thread(push_dashboards, url, token, build_all())
    assert words in str(caught.value)
    assert token not in str(caught.value)


def test_a_wrong_url_is_named() -> None:
    """Nothing listening, or not a URL at all."""
    with pytest.raises(PushError, match=re.escape("cannot reach Grafana at http://127.0.0.1:9")):
        push_dashboards("http://127.0.0.1:9", TOKEN, build_all(), timeout=2)
    with pytest.raises(PushError, match="must start with http"):
        push_dashboards("grafana:3000", TOKEN, build_all())


async def test_the_command_reads_the_token_from_the_environment(
    grafana: tuple[FakeGrafana, str], run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without GRAFANA_TOKEN it says what to set; with it, one line per dashboard."""
    fake, url = grafana
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    missing = await asyncio.to_thread(run_cli, "dashboards", "push", "--grafana-url", url)
    assert missing.code == 2 and "GRAFANA_TOKEN" in missing.err
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    result = await asyncio.to_thread(run_cli, "dashboards", "push", "--grafana-url", url)
    assert result.code == 0, result.err
    assert result.out.count("created ") == 4
    assert TOKEN not in result.out + result.err
    assert len(fake.dashboards) == 4
