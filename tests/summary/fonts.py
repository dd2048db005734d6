"""Skip markers for tests that need what a bare machine lacks: Persian fonts, and the Pango
library WeasyPrint draws PDFs with."""

from __future__ import annotations

import shutil
import subprocess

import pytest

# The Persian families the chart chooses from (monitor.summary.charts), best first.
PERSIAN = ("Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic")


def _families() -> set[str]:
    """Every font family fontconfig knows (none on a bare machine)."""
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return set()
    found = subprocess.run(
        [fc_list, ":", "family"], capture_output=True, text=True, check=False
    ).stdout
    return {name.strip() for line in found.splitlines() for name in line.split(",")}


def _weasyprint() -> bool:
    """Whether WeasyPrint loads: it needs Pango, a system library, at import."""
    try:
        import weasyprint  # noqa: F401
    except (ImportError, OSError):
        return False
    return bool(_families())


needs_pdf = pytest.mark.skipif(
    not _weasyprint(),
    reason="no PDF renderer: apt-get install libpango-1.0-0 libpangoft2-1.0-0 "
    "fonts-dejavu-core (scripts/services)",
)
needs_persian_fonts = pytest.mark.skipif(
    not _families() & set(PERSIAN),
    reason="no Persian font: apt-get install fonts-noto-core (scripts/services)",
)
