"""docs/operations.md documents every metric the service exports."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ROOT

LIBRARY_PREFIXES = ("process_", "python_")


async def test_every_exported_metric_is_documented(anon: httpx.AsyncClient) -> None:
    scraped = (await anon.get("http://testserver/metrics")).text
    families = {
        f"{family.name}_total" if family.type == "counter" else family.name
        for family in text_string_to_metric_families(scraped)
    }
    # prometheus-client adds a ``<name>_created`` timestamp beside each counter and histogram.
    ours = {name for name in families if not name.startswith(LIBRARY_PREFIXES) and not name.endswith("_created")}
    page = (ROOT / "docs" / "operations.md").read_text()

    undocumented = sorted(name for name in ours if f"`{name}" not in page)

    assert len(ours) >= 10
    assert undocumented == []
