"""Every panel's PromQL, run against a real Prometheus that scrapes replywatch on the fakes.

replywatch polls fake Pages with answered, late and waiting customers, with every ``[metrics]``
switch on (channel and tier breakdowns, the response-time histogram, account details) so that
every panel has data; ``test_build.py`` checks statically that the overview, on-call and
connector dashboards need no switch. Prometheus scrapes it every second and evaluates the
shipped rules (the burn-rate panels read their recording rules). Each query must run without
error, name only series the exporter has, and return data, except the few panels that are
empty by design in this scenario (no webhooks configured, no alert firing yet).

Then every panel of instant queries goes through Grafana's own code: the Prometheus results
become the data frames Grafana's Prometheus datasource hands the panel (for the query's format),
and the panel's transformations run with ``@grafana/data`` from npm, in Node
(``grafana_transform.js``), at the release of the Grafana image docker-compose.yml deploys.
A table must come out with one row per account (or per its grouping labels) and the expected
columns; a stat panel with one value per query.

shop-fb sets its own targets (45 min response, 3 min warn_after, 50% rate), the others keep the
built-in ones: each table's rate and mean level columns must judge each row by its own
account's configured targets, and by the built-in ones where no target series exists (the
queries re-run with the target series renamed away). The level of the customers waiting now
comes from the business-time deadlines: night-fb's customer has waited longer than the target
in calendar time, but night-fb opens only in three days, so it reads on target; late-fb's
(built-in targets, in hours: it has none) is past the target, shop-fb's past warn_after only.
cafe-fb has nobody waiting: its open-wait series must read 0, not vanish.

A panel that takes its threshold from a target query (``configFromData``, which lives in
Grafana's app, not in ``@grafana/data``) must find in that query's frame, under the name its
mapping gives, the configured value, not the default.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from alerts.catalog import DEFAULT_TARGETS
from connectors.fakes.meta import FakeMeta
from dashboards.build import build_all
from dashboards.panels import LEVEL_TEXT
from tests.stack import PROMETHEUS, free_port, needs_prometheus, shortened_rules, start, stop

pytestmark = needs_prometheus
ROOT = Path(__file__).resolve().parents[2]
TRANSFORM = Path(__file__).with_name("grafana_transform.js")
NODE, NPM = shutil.which("node"), shutil.which("npm")
TOKENS = {
    "shop-fb": "EAA-PANELS-SECRET-TOKEN-5151",
    "cafe-fb": "EAA-PANELS-CAFE-TOKEN-6262",
    "night-fb": "EAA-PANELS-NIGHT-TOKEN-7373",
    "late-fb": "EAA-PANELS-LATE-TOKEN-8484",
}
SHOP, CAFE = ("facebook", "shop-fb"), ("facebook", "cafe-fb")
NIGHT, LATE = ("facebook", "night-fb"), ("facebook", "late-fb")
ACCOUNTS = {SHOP, CAFE, NIGHT, LATE}
# Everyone but cafe-fb has a customer waiting (on Messenger); shop-fb's 40 min against its own
# 3 min warn_after and 45 min target, late-fb's 20 min against the built-in 10 and 15 min,
# night-fb's 40 min outside its hours: the level each must read (LEVEL_TEXT).
WAITED = {SHOP: timedelta(minutes=40), NIGHT: timedelta(minutes=40), LATE: timedelta(minutes=20)}
WAIT_LEVEL = {SHOP: 1, CAFE: 0, NIGHT: 0, LATE: 2}
WAITING = set(WAITED)
SHOP_CHANNELS = {(*SHOP, "dm"), (*SHOP, "comment")}
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Grafana's variables, as a user with account "shop-fb" selected would send them.
VARIABLES = {
    "$account": "shop-fb",
    "$channel": ".*",
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$__interval": "15s",
}
EMPTY_BY_DESIGN = {
    ("replywatch-oncall", "Alerts firing"),  # no rule has fired within the test
    ("replywatch-connectors", "Webhook deliveries by outcome"),  # no webhook configured
}
READY_TIMEOUT = 60.0
DEFAULT = {
    "warn_after": DEFAULT_TARGETS.warn_after.total_seconds(),
    "response": DEFAULT_TARGETS.response_target.total_seconds(),
    "rate": DEFAULT_TARGETS.rate_target,
}
# shop-fb's configured targets: its 40-minute wait and ~22-minute mean are past warn_after but
# within the response target, where the built-in targets (10 and 15 min) call them late.
CONFIGURED = {
    SHOP: {"warn_after": 180.0, "response": 2700.0, "rate": 0.5},
    CAFE: DEFAULT,
    NIGHT: DEFAULT,
    LATE: DEFAULT,
}
TARGET_PREFIX, ABSENT_PREFIX = "replywatch_target_", "replywatch_absent_target_"


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title, expr) for every target of every dashboard."""
    return [
        (uid, panel["title"], target["expr"])
        for uid, model in build_all().items()
        for panel in model["panels"]
        for target in panel.get("targets", [])
    ]


def substitute(expr: str) -> str:
    for name in sorted(VARIABLES, key=len, reverse=True):
        expr = expr.replace(name, VARIABLES[name])
    return expr


def env_name(account: str) -> str:
    """The environment variable holding an account's token."""
    return account.removesuffix("-fb").upper() + "_TOKEN"


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """A scraped replywatch with traffic; yields (Prometheus URL, replywatch /metrics URL)."""
    fake = FakeMeta()
    pages = {name: str(100 * number) for number, name in enumerate(TOKENS, start=1)}
    for name, token in TOKENS.items():
        fake.add_page(pages[name], token)
    now = datetime.now(UTC).replace(microsecond=0)
    for i, minutes in enumerate([2, 5, 9, 14, 30, 90]):
        opened = now - timedelta(hours=3, minutes=10 * i)
        fake.customer_message("100", f"c{i}", opened)
        fake.business_reply("100", f"c{i}", opened + timedelta(minutes=minutes))
    post = fake.add_post("100", now - timedelta(hours=5))
    for i, minutes in enumerate([3, 20]):
        opened = now - timedelta(hours=4, minutes=10 * i)
        comment = fake.customer_comment("100", f"k{i}", opened, post_id=post)
        fake.business_comment_reply("100", comment, opened + timedelta(minutes=minutes))
    for i, minutes in enumerate([4, 50]):
        opened = now - timedelta(hours=2, minutes=10 * i)
        fake.customer_message("200", f"d{i}", opened)
        fake.business_reply("200", f"d{i}", opened + timedelta(minutes=minutes))
    # More messages than Graph shows of a conversation (20): cafe-fb misses the oldest ones.
    for i in range(11):
        opened = now - timedelta(hours=6) + timedelta(minutes=10 * i)
        fake.customer_message("200", "chatty", opened)
        fake.business_reply("200", "chatty", opened + timedelta(minutes=1))
    for (_platform, name), waited in WAITED.items():
        fake.customer_message(pages[name], "waiting", now - waited)
    # night-fb opens only three days from now: nobody has run its clock since its customer wrote.
    open_day = WEEKDAYS[(now.weekday() + 3) % 7]
    fake_server = TestServer(fake.app, host="127.0.0.1")
    await fake_server.start_server(access_log=None)
    rw_port, prom_port = free_port(), free_port()
    config = tmp_path / "replywatch.toml"
    base_url = str(fake_server.make_url("")).rstrip("/")
    account = """
[[accounts]]
name = "{name}"
platform = "facebook"
ids = {{ page_id = "{page}" }}
channels = {channels}
poll_interval = "2s"
base_url = "{base_url}"
secrets = {{ access_token = "env:{env}" }}
"""
    extra = {
        # shop-fb's own targets, inline: a profile of its own the histogram must know too.
        "shop-fb": 'targets = { response_target = "45m", warn_after = "3m", rate_target = 0.5 }\n',
        "night-fb": f'business_hours = {{ {open_day} = ["09:00-17:00"] }}\n',
    }
    accounts = "".join(
        account.format(
            name=name,
            page=pages[name],
            channels='["dm", "comment"]' if name == "shop-fb" else '["dm"]',
            base_url=base_url,
            env=env_name(name),
        )
        + extra.get(name, "")
        for name in TOKENS
    )
    # Every switch on, so that every panel of the account dashboard has data.
    config.write_text(f"""
[replywatch]
refresh_interval = "1s"

[metrics]
breakdowns = ["channel", "tier"]
response_time_histogram = true
account_details = true

{accounts}""")
    prometheus_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": shortened_rules(tmp_path),
        "scrape_configs": [
            {"job_name": "replywatch", "static_configs": [{"targets": [f"127.0.0.1:{rw_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prometheus_config))
    processes = [
        await start(
            sys.executable,
            "-m",
            "monitor.cli",
            "--config",
            str(config),
            "--database",
            f"sqlite:///{tmp_path / 'rw.db'}",
            "run",
            "--listen",
            f"127.0.0.1:{rw_port}",
            env={**os.environ, **{env_name(name): token for name, token in TOKENS.items()}},
        ),
        await start(
            PROMETHEUS or "",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ),
    ]
    yield f"http://127.0.0.1:{prom_port}", f"http://127.0.0.1:{rw_port}/metrics"
    for process in processes:
        await stop(process)
    await fake_server.close()


async def instant(session: aiohttp.ClientSession, url: str, expr: str) -> dict[str, Any]:
    async with session.get(f"{url}/api/v1/query", params={"query": expr}) as response:
        body: dict[str, Any] = await response.json()
        return body


async def wait_until_scraped(session: aiohttp.ClientSession, url: str) -> None:
    """Until Prometheus holds a few scrapes with decided outcomes (so rate() has two points)."""
    ready = (
        'count_over_time(replywatch_sli_outcomes_total{outcome="missed"}[1m]) >= 4 '
        "and on () count_over_time(platform_account:replywatch_sli_missed:ratio_rate5m[1m]) >= 2"
        " and on () count(count by (account) (replywatch_sli_outcomes_total)) >= 2"
    )
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    while asyncio.get_running_loop().time() < deadline:
        try:
            body = await instant(session, url, ready)
            if body.get("data", {}).get("result"):
                return
        except aiohttp.ClientError:
            pass  # Prometheus still starting
        await asyncio.sleep(0.5)  # an external process: poll its API, there is no event to await
    raise AssertionError(f"Prometheus had no decided outcomes within {READY_TIMEOUT}s")


async def test_every_panel_query_runs_and_finds_data(prometheus: tuple[str, str]) -> None:
    """No query errors, names an unknown series, or comes back empty where data exists."""
    url, metrics_url = prometheus
    async with aiohttp.ClientSession() as session:
        await wait_until_scraped(session, url)
        async with session.get(metrics_url) as response:
            exposed = await response.text()
        # Sample names, and families declared without samples yet (e.g. no webhook configured).
        pattern = r"^(?:# TYPE )?(replywatch_[a-z0-9_]+)"
        names = set(re.findall(pattern, exposed, flags=re.MULTILINE))
        names |= {f"{n}_{s}" for n in names for s in ("bucket", "count", "sum")}
        problems = []
        queries = panel_queries()
        assert len(queries) >= 30
        for uid, title, expr in queries:
            for name in set(re.findall(r"(?<![:a-z_])replywatch_[a-z0-9_]+", expr)):
                if name not in names:
                    problems.append(f"{uid} / {title}: {name} is not exported")
            body = await instant(session, url, substitute(expr))
            if body["status"] != "success":
                problems.append(f"{uid} / {title}: {body.get('error')}")
            elif not body["data"]["result"] and (uid, title) not in EMPTY_BY_DESIGN:
                problems.append(f"{uid} / {title}: no series for {substitute(expr)}")
        # Nobody waits at cafe-fb: its open-wait series are there and read 0 (no deadline).
        for name, value in [
            ("replywatch_open_waits", "0"),
            ("replywatch_oldest_open_wait_seconds", "0"),
            ("replywatch_open_wait_warning_timestamp_seconds", "+Inf"),
            ("replywatch_open_wait_breach_timestamp_seconds", "+Inf"),
        ]:
            body = await instant(session, url, f'{name}{{account="cafe-fb"}}')
            values = [s["value"][1] for s in body["data"]["result"]]
            if values != [value]:
                problems.append(f"cafe-fb: {name} reads {values}, not [{value}]")
    assert not problems, "\n".join(problems)


# --- Through Grafana's own transformers ---------------------------------------------------


def grafana_release() -> str:
    """The Grafana release docker-compose.yml deploys (its @grafana/data is the same code)."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    image: str = compose["services"]["grafana"]["image"]
    return image.rpartition(":")[2]


@pytest.fixture(scope="session")
def grafana_data(pytestconfig: pytest.Config) -> Path:
    """node_modules holding @grafana/data, installed once into pytest's cache (.pytest_cache)."""
    if NODE is None or NPM is None:
        pytest.skip("node/npm missing: apt-get install nodejs npm (scripts/services)")
    release = grafana_release()
    folder = Path(pytestconfig.cache.mkdir(f"grafana-data-{release}"))
    installed = folder / "node_modules" / "@grafana" / "data" / "package.json"
    if not installed.is_file():
        (folder / "package.json").write_text('{"private": true}\n', encoding="utf-8")
        result = subprocess.run(
            [NPM, "install", "--no-audit", "--no-fund", "--prefix", str(folder),
             f"@grafana/data@{release}"],
            capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
    version = json.loads(installed.read_text(encoding="utf-8"))["version"]
    assert version == release
    return folder / "node_modules"


# JSON has no infinities: they cross to grafana_transform.js and back as these strings, where
# Grafana's own frame JSON carries them as "entities" and decodes them back to Infinity.
INFINITIES = {"+Inf": float("inf"), "-Inf": float("-inf")}


def sample(value: str) -> float | str | None:
    """A Prometheus sample value as a frame holds it (NaN as null, infinities by name)."""
    if value == "NaN":
        return None
    return value if value in INFINITIES else float(value)


def decoded(value: Any) -> Any:
    """A transformed frame's value, infinities back as floats."""
    return INFINITIES[value] if isinstance(value, str) and value in INFINITIES else value


def frames_for(target: dict[str, Any], result: list[dict[str, Any]], refs: int) -> list[Any]:
    """The frames Grafana's Prometheus datasource gives a panel for one instant query.

    Table format (``transformDFToTable`` in Grafana's Prometheus result transformer): one frame
    per query, a Time field, one string field per label in order of first appearance (each
    series' labels sorted; ``__name__`` included while the result keeps it), and the value as
    ``Value #<refId>`` when the response holds several queries, else ``Value``. Time series
    format: one frame per series, Time and the value carrying the series' labels.
    """
    ref = target["refId"]
    if target.get("format") == "table":
        labels: list[str] = []
        for series in result:
            labels += [name for name in sorted(series["metric"]) if name not in labels]
        fields = [
            {"name": "Time", "type": "time", "values": [s["value"][0] * 1000 for s in result]},
            *(
                {
                    "name": name,
                    "type": "string",
                    "values": [s["metric"].get(name, "") for s in result],
                }
                for name in labels
            ),
            {
                "name": f"Value #{ref}" if refs > 1 else "Value",
                "type": "number",
                "values": [sample(s["value"][1]) for s in result],
            },
        ]
        return [{"refId": ref, "fields": fields}]
    # A legend without {{label}} is the series' display name (Grafana's backend sets it so).
    legend = target.get("legendFormat", "")
    config = {"displayNameFromDS": legend} if legend and "{{" not in legend else {}
    return [
        {
            "refId": ref,
            "fields": [
                {"name": "Time", "type": "time", "values": [series["value"][0] * 1000]},
                {
                    "name": "Value",
                    "type": "number",
                    "values": [sample(series["value"][1])],
                    "labels": series["metric"],
                    "config": config,
                },
            ],
        }
        for series in result
    ]


def row_labels(expr: str) -> list[str]:
    """The labels a table query is grouped by (``max by (...)`` around each query)."""
    found = re.match(r"max by \(([^)]*)\)", expr)
    assert found, f"a table query must be grouped: {expr}"
    return [label.strip() for label in found.group(1).split(",")]


def transform(node_modules: Path, panels: list[dict[str, Any]]) -> dict[str, Any]:
    result = subprocess.run(
        [NODE or "node", str(TRANSFORM)],
        input=json.dumps({"panels": panels}),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={**os.environ, "NODE_PATH": str(node_modules)},
    )
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    for panel in output.values():
        for frame in panel["frames"]:
            for field in frame["fields"]:
                field["values"] = [decoded(value) for value in field["values"]]
    return output


def expected_level(ref: str, value: float, account: tuple[str, str], absent: bool) -> int:
    """What level column ``<ref>_level`` must read for ``value`` of column ``ref``.

    Waits by the scenario's deadlines (the exporter's, whatever the target series); a rate or
    a response time by the account's configured targets, the built-in ones when ``absent``.
    """
    if ref == "oldest":
        return WAIT_LEVEL[account]
    targets = DEFAULT if absent else CONFIGURED[account]
    if ref == "rate":
        return 2 if value < targets["rate"] else 0
    return 2 if value > targets["response"] else 0


async def panel_inputs(
    session: aiohttp.ClientSession, url: str, at: float, rename: tuple[str, str] | None = None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Each table and stat panel's frames from Prometheus at ``at`` (``rename`` in each query)."""
    inputs, panels = [], {}
    for uid, model in build_all().items():
        for panel in model["panels"]:
            targets = panel.get("targets", [])
            if panel["type"] not in ("table", "stat") or (uid, panel["title"]) in EMPTY_BY_DESIGN:
                continue
            results = []
            for target in targets:
                expr = substitute(target["expr"])
                if rename is not None:
                    expr = expr.replace(*rename)
                async with session.get(
                    f"{url}/api/v1/query", params={"query": expr, "time": str(at)}
                ) as response:
                    body = await response.json()
                assert body["status"] == "success", (panel["title"], body)
                results.append((target, body["data"]["result"]))
            answering = sum(1 for _, result in results if result)
            key = f"{uid} / {panel['title']}"
            panels[key] = (uid, panel, results)
            inputs.append(
                {
                    "key": key,
                    "transformations": panel.get("transformations", []),
                    "frames": [
                        frame
                        for target, result in results
                        for frame in frames_for(target, result, answering)
                    ],
                }
            )
    return inputs, panels


def config_queries(panel: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The panel's configFromData transformations, by the refId of their config query."""
    return {
        t["options"]["configRefId"]: t
        for t in panel.get("transformations", [])
        if t["id"] == "configFromData"
    }


def check_levels(key: str, fields: dict[str, list[Any]], keys: list[str], absent: bool) -> int:
    """Each level column against its value column and the row account's targets; returns how
    many cells the configured targets judge differently from the built-in ones."""
    differing = 0
    for name, levels in fields.items():
        if not name.endswith("_level"):
            continue
        ref = name.removeprefix("Value #").removesuffix("_level")
        values = fields[f"Value #{ref}"]
        for row, (level, value) in enumerate(zip(levels, values, strict=True)):
            if value is None:  # e.g. no decided wait yet: no rate, no level
                assert level is None, (key, name, row, level)
                continue
            assert level in LEVEL_TEXT, (key, name, row, level, value)
            account = (fields["platform"][row], fields["account"][row])
            expected = expected_level(ref, value, account, absent)
            assert level == expected, (key, name, account, value, level)
            differing += expected_level(ref, value, account, False) != expected_level(
                ref, value, account, True
            )
    assert "account" in keys or not differing
    return differing


def hidden_columns(panel: dict[str, Any]) -> set[str]:
    """The columns the panel's organize transformation leaves out."""
    return {
        name
        for t in panel.get("transformations", [])
        if t["id"] == "organize"
        for name, hidden in t["options"].get("excludeByName", {}).items()
        if hidden
    }


def rows_by_account(fields: dict[str, list[Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """A table's cells by row account: {(platform, account): {column: value}}."""
    count = len(fields["account"])
    table = {}
    for row in range(count):
        account = (fields["platform"][row], fields["account"][row])
        assert account not in table, f"two rows for {account}"
        table[account] = {name: values[row] for name, values in fields.items()}
    return table


def check_waits(output: dict[str, Any]) -> None:
    """Customers waiting: counted from every account's series, cafe-fb's at 0; the on-call
    table lists only accounts where someone waits, each at its deadline's level."""

    def number(key: str) -> list[Any]:
        (frame,) = output[key]["frames"]
        return [f["values"] for f in frame["fields"] if f["type"] == "number"]

    def table(key: str) -> dict[tuple[str, str], dict[str, Any]]:
        (frame,) = output[key]["frames"]
        return rows_by_account({f["name"]: f["values"] for f in frame["fields"]})

    assert number("replywatch-oncall / Customers waiting") == [[len(WAITING)]]
    assert number("replywatch-overview / Customers waiting now") == [[len(WAITING)]]
    # Only late-fb: night-fb's customer waited as long as shop-fb's, outside its hours.
    assert number("replywatch-oncall / Waiting past the target") == [[1]]
    overview = table("replywatch-overview / Accounts, worst response rate first")
    assert set(overview) == ACCOUNTS
    assert overview[CAFE]["Value #open"] == 0 and overview[CAFE]["Value #oldest"] == 0
    for account, waited in WAITED.items():
        assert overview[account]["Value #open"] == 1, account
        assert overview[account]["Value #oldest"] >= waited.total_seconds(), account
    waiting = table("replywatch-oncall / Waiting now, longest first")
    assert set(waiting) == WAITING
    for account, row in waiting.items():
        assert row["Value #oldest_level"] == WAIT_LEVEL[account], (account, row)
        assert row["Value #target"] == CONFIGURED[account]["response"], (account, row)
        left = row["Value #to_target"]
        if WAIT_LEVEL[account] == 2:
            assert left <= 0, (account, row)
        else:
            assert left > 0, (account, row)
    # In calendar time night-fb's customer is past the target; by its hours, days from it.
    assert waiting[NIGHT]["Value #oldest"] > DEFAULT["response"]
    assert waiting[NIGHT]["Value #to_target"] > timedelta(days=1).total_seconds()


async def test_panels_through_grafanas_transformers(
    prometheus: tuple[str, str], grafana_data: Path
) -> None:
    """Tables: one row per account (or grouping value), expected columns, levels against each
    account's own targets; stats: one value each, thresholds from the configured target."""
    url, _ = prometheus
    async with aiohttp.ClientSession() as session:
        await wait_until_scraped(session, url)
        at = datetime.now(UTC).timestamp()
        inputs, panels = await panel_inputs(session, url, at)
        absent_inputs, _ = await panel_inputs(session, url, at, (TARGET_PREFIX, ABSENT_PREFIX))
    output = transform(grafana_data, inputs)
    absent_output = transform(grafana_data, absent_inputs)
    tables = differing = from_targets = 0
    for key, (_uid, panel, results) in panels.items():
        frames = output[key]["frames"]
        configs = config_queries(panel)
        if configs:
            from_targets += 1
            check_config_from_targets(key, panel, output[key]["config"], absent_output[key])
        if panel["type"] == "stat":
            values = [f for frame in frames for f in frame["fields"] if f["type"] == "number"]
            assert len(values) == len(panel["targets"]) - len(configs), key
            assert all(len(field["values"]) == 1 for field in values), key
            continue
        tables += 1
        assert len(frames) == 1, f"{key}: {len(frames)} frames"
        fields = {field["name"]: field["values"] for field in frames[0]["fields"]}
        # The row labels every query is grouped by; a query may add its own (Column.labels).
        grouped = [row_labels(t["expr"]) for t in panel["targets"]]
        keys = [label for label in grouped[0] if all(label in g for g in grouped)]
        extra = {label for t, _ in results for label in row_labels(t["expr"])} - set(keys)
        expected_columns = {*keys, *extra, *(f"Value #{t['refId']}" for t, _ in results)}
        if len(results) == 1:
            expected_columns = {*keys, *extra, "Value"}
        assert set(fields) == expected_columns - hidden_columns(panel), key
        rows = list(zip(*(fields[label] for label in keys), strict=True))
        # Every key any query returned, once.
        returned = {tuple(s["metric"][label] for label in keys) for _, r in results for s in r}
        assert sorted(rows) == sorted(returned), key
        differing += check_levels(key, fields, keys, absent=False)
        absent_frames = absent_output[key]["frames"]
        absent_fields = {field["name"]: field["values"] for field in absent_frames[0]["fields"]}
        check_levels(key, absent_fields, keys, absent=True)
        if key == "replywatch-overview / Accounts, worst response rate first":
            assert set(rows) == ACCOUNTS
        if key == "replywatch-connectors / Accounts by polling state":
            states = rows_by_account(fields)
            assert set(states) == ACCOUNTS
            assert {row["state"] for row in states.values()} == {"ok"}, states
            # Only cafe-fb's long conversation lost messages; every page reports its quota.
            assert states[CAFE]["Value #missed"] > 0, states
            assert all(row["Value #missed"] is None for a, row in states.items() if a != CAFE)
            assert all(0 <= row["Value #quota"] <= 1 for row in states.values()), states
        if key == "replywatch-account / Polling":
            (row,) = rows_by_account(fields).values()
            assert row["state"] == "ok" and row["Value #interval"] == 2.0, row
            assert 0 <= row["Value #since_success"] < READY_TIMEOUT, row
            assert row["Value #duration"] is not None, row
        if key == "replywatch-account / Channels side by side":
            assert set(rows) == SHOP_CHANNELS
            # open waits per channel only where someone waits (shop-fb's Messenger).
            waiting_channels = {r for r, n in zip(rows, fields["Value #open"], strict=True) if n}
            assert waiting_channels == {(*SHOP, "dm")}
    assert tables == 5  # every table but "Alerts firing"
    check_waits(output)
    # The scenario separates configured from built-in targets (else the checks prove nothing):
    # shop-fb's mean, and its Messenger channel's, are within 45 min and past 15 min.
    assert differing >= 2, differing
    assert from_targets >= 2


def check_config_from_targets(
    key: str, panel: dict[str, Any], found: list[dict[str, Any]], absent: dict[str, Any]
) -> None:
    """The config query's frame holds, under the name the mapping reads, the configured target
    of the selected account (shop-fb); with no target series it holds nothing, and the panel's
    own thresholds, which Grafana then keeps, are the built-in targets."""
    shop = CONFIGURED[("facebook", VARIABLES["$account"])]
    for (ref, transformation), config in zip(config_queries(panel).items(), found, strict=True):
        assert config["refId"] == ref, key
        (mapping,) = transformation["options"]["mappings"]
        assert mapping["handlerKey"] == "threshold1", key
        named = [f for f in config["fields"] if f["displayName"] == mapping["fieldName"]]
        assert len(named) == 1, (key, config)
        assert named[0]["values"] == [shop["response"]], (key, named)
        assert shop["response"] != DEFAULT["response"]
    (nothing,) = absent["config"]
    assert nothing["fields"] == [], (key, nothing)
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == DEFAULT["response"], key
