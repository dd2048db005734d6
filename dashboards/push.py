"""Upload the dashboards to a Grafana with grafana-client, into replywatch's own folder.

Only dashboards replywatch made are overwritten: a dashboard with one of our uids that is not
tagged ``replywatch`` (someone else's) stops the push with a clear error instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaUnauthorizedError,
)

__all__ = ["FOLDER_UID", "PushError", "PushResult", "push_dashboards"]

FOLDER_UID = "replywatch"
TAG = "replywatch"


class PushError(Exception):
    """The push could not be done; the message says why (never with the token)."""


@dataclass(frozen=True)
class PushResult:
    """What happened to one dashboard."""

    uid: str
    title: str
    action: str  # "created" or "updated"
    url: str


def push_dashboards(
    url: str,
    token: str,
    dashboards: Mapping[str, dict[str, Any]],
    folder_title: str = "replywatch",
    timeout: float = 15.0,
) -> list[PushResult]:
    """Create the folder if needed and upload every dashboard into it."""
    if not url.startswith(("http://", "https://")):
        raise PushError(f"--grafana-url {url!r} must start with http:// or https://")
    api = GrafanaApi.from_url(url, credential=token, timeout=timeout)
    try:
        _ensure_folder(api, folder_title)
        return [_push_one(api, model) for model in dashboards.values()]
    except GrafanaUnauthorizedError:
        raise PushError(
            f"Grafana at {url} refused the token (401): check GRAFANA_TOKEN, a service account "
            "token with the Editor role"
        ) from None
    except GrafanaClientError as err:
        if err.status_code == 403:
            raise PushError(
                f"Grafana at {url} says the token may not write dashboards (403): give its "
                "service account the Editor role on the folder"
            ) from None
        raise PushError(f"Grafana at {url} answered {err.status_code}: {err.message}") from None
    except niquests.exceptions.RequestException as err:
        raise PushError(f"cannot reach Grafana at {url}: {type(err).__name__}") from None
    except GrafanaException as err:
        raise PushError(f"Grafana at {url} failed: {err.status_code} {err.message}") from None
    finally:
        # grafana-client keeps a connection pool open; close it rather than leak sockets.
        api.client.s.close()


def _ensure_folder(api: GrafanaApi, title: str) -> None:
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise
        api.folder.create_folder(title, uid=FOLDER_UID)


def _push_one(api: GrafanaApi, model: dict[str, Any]) -> PushResult:
    uid = model["uid"]
    action = "created"
    try:
        existing = api.dashboard.get_dashboard(uid)
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise
    else:
        tags = existing.get("dashboard", {}).get("tags") or []
        if TAG not in tags:
            raise PushError(
                f"a dashboard with uid {uid!r} already exists and was not made by replywatch "
                f"(no {TAG!r} tag); not overwriting it"
            )
        action = "updated"
    body = {
        "dashboard": {**model, "id": None},
        "folderUid": FOLDER_UID,
        "overwrite": True,
        "message": "replywatch dashboards push",
    }
    answer = api.dashboard.update_dashboard(body)
    return PushResult(uid, model.get("title", uid), action, str(answer.get("url", "")))
