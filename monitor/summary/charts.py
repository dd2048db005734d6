"""The summary's one chart: who wrote in each hour of the week, and who was not answered in time.

Drawn with a bare ``Figure`` on the Agg canvas (no pyplot, no global state), so summaries can
be rendered from several threads. Persian text goes to matplotlib in logical order: since 3.11
matplotlib lays text out with libraqm (HarfBuzz shaping, FriBidi ordering), so shaping it here
as well (arabic-reshaper, python-bidi) would reverse it a second time.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from functools import cache

from matplotlib import font_manager, ft2font
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from monitor.summary.locale import Locale

__all__ = ["HOURS_IN_WEEK", "hour_of_week_chart"]

HOURS_IN_WEEK = 168

# About 900 x 320 CSS pixels in a mail client, drawn at 150 dpi so it stays sharp on
# high-density screens and in the PDF.
_SIZE_INCHES = (9.0, 3.2)
_DPI = 150

_ARRIVALS = "#b4bac4"
_MISSED = "#e4572e"
_SHORT = "#fde7a6"
_SEPARATOR = "#667085"
_GRID = "#e4e7ec"
_INK = "#101828"

# First installed family wins; the last one is the fallback for glyphs the first lacks
# (matplotlib picks each glyph from the first family in the list that has it).
_RTL_FAMILIES = ("Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic", "DejaVu Sans")
_LTR_FAMILIES = ("DejaVu Sans",)
_FALLBACK = "DejaVu Sans"

# Older matplotlib drew each character's isolated form left to right: Persian came out as
# unjoined letters in reverse order.
_LAYS_OUT_TEXT = hasattr(ft2font, "__libraqm_version__")


def hour_of_week_chart(
    arrivals: Sequence[int],
    missed: Sequence[int],
    locale: Locale,
    short_hours: Sequence[int] = (),
) -> bytes:
    """A PNG: customers who wrote in each of the 168 hours of the week (Monday 00:00 = index 0,
    local time) and how many of them were not answered within the target, with the
    short-staffed hours marked."""
    figure = _figure(arrivals, missed, locale, short_hours)
    buffer = io.BytesIO()
    # No "Software" entry and no timestamps: the same week gives the same bytes.
    figure.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(
    arrivals: Sequence[int],
    missed: Sequence[int],
    locale: Locale,
    short_hours: Sequence[int],
) -> Figure:
    _check(arrivals, missed, short_hours)
    rtl = locale.direction == "rtl"
    if rtl and not _LAYS_OUT_TEXT:
        raise RuntimeError("right-to-left charts need matplotlib >= 3.11 (text layout by libraqm)")
    families = _families(rtl)

    figure = Figure(figsize=_SIZE_INCHES, dpi=_DPI, facecolor="white")
    FigureCanvasAgg(figure)
    # Room for hour numbers, day names and the axis title below, the legend above; the y axis
    # sits on the reader's starting side (right in Persian).
    if rtl:
        figure.subplots_adjust(left=0.015, right=0.93, top=0.86, bottom=0.24)
    else:
        figure.subplots_adjust(left=0.07, right=0.985, top=0.86, bottom=0.18)
    axes = figure.add_subplot()

    for start, end in _runs(sorted(set(short_hours))):
        axes.axvspan(start, end, color=_SHORT, linewidth=0, zorder=0)
    hours = [hour + 0.5 for hour in range(HOURS_IN_WEEK)]
    axes.bar(hours, arrivals, width=0.82, color=_ARRIVALS, linewidth=0, zorder=2)
    axes.bar(hours, missed, width=0.82, color=_MISSED, linewidth=0, zorder=3)
    for day in range(1, 7):
        axes.axvline(day * 24, color=_SEPARATOR, linewidth=0.8, zorder=4)

    peak = max(arrivals)
    # An empty week still gets a y axis from 0 to a few customers, not a degenerate 0..0.
    axes.set_ylim(0, max(4.0, peak * 1.12))
    axes.set_xlim(0, HOURS_IN_WEEK)
    if rtl:
        axes.invert_xaxis()  # Monday on the right, where a Persian reader starts
        axes.yaxis.tick_right()
        axes.yaxis.set_label_position("right")

    # Day names are the major ticks (centred on each day, no tick mark); the hours every six
    # hours are minor ticks, drawn closer to the axis.
    axes.xaxis.remove_overlapping_locs = False
    axes.set_xticks(
        [day * 24 + 12 for day in range(7)],
        [locale.weekday(day, short=True) for day in range(7)],
    )
    axes.xaxis.set_minor_locator(FixedLocator([float(h) for h in range(0, HOURS_IN_WEEK, 6)]))
    axes.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: locale.number(int(x) % 24)))
    axes.tick_params(axis="x", which="major", length=0, pad=14, labelsize=9, labelcolor=_INK)
    axes.tick_params(axis="x", which="minor", length=3, pad=1.5, labelsize=7.5, colors=_SEPARATOR)
    axes.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda y, _: locale.number(y)))
    axes.tick_params(axis="y", labelsize=8, colors=_SEPARATOR, length=0)
    axes.tick_params(axis="both", which="both", labelfontfamily=families)
    axes.set_xlabel(locale.text("axis_hour"), fontsize=8, family=families, labelpad=2)
    axes.set_ylabel(locale.text("axis_count"), fontsize=8, family=families)
    axes.grid(axis="y", color=_GRID, linewidth=0.6)
    axes.set_axisbelow(True)
    for side in ("top", "right", "left"):
        axes.spines[side].set_visible(False)
    axes.spines["bottom"].set_color(_SEPARATOR)

    if peak == 0:
        axes.text(
            0.5,
            0.55,
            locale.text("no_waits"),
            transform=axes.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color=_SEPARATOR,
            family=families,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 4},
            zorder=5,
        )

    _legend(axes, locale, bool(short_hours), families)
    return figure


def _legend(axes: Axes, locale: Locale, with_short: bool, families: list[str]) -> None:
    keys = ["legend_arrivals", "legend_missed"] + (["legend_short"] if with_short else [])
    colours = {"legend_arrivals": _ARRIVALS, "legend_missed": _MISSED, "legend_short": _SHORT}
    handles = [Patch(color=colours[key], label=locale.text(key)) for key in keys]
    rtl = locale.direction == "rtl"
    if rtl:
        # One row read from the right: the first entry in the rightmost column, swatch right.
        handles.reverse()
    axes.legend(
        handles=handles,
        loc="lower right" if rtl else "lower left",
        bbox_to_anchor=(1.0 if rtl else 0.0, 1.02),
        ncol=len(handles),
        frameon=False,
        markerfirst=not rtl,
        prop=FontProperties(family=families, size=8),
        handlelength=1.1,
        handletextpad=0.5,
        columnspacing=1.6,
        borderaxespad=0.0,
    )


def _check(arrivals: Sequence[int], missed: Sequence[int], short_hours: Sequence[int]) -> None:
    for name, values in (("arrivals", arrivals), ("missed", missed)):
        if len(values) != HOURS_IN_WEEK:
            raise ValueError(f"{name} needs {HOURS_IN_WEEK} hourly counts, got {len(values)}")
        negative = [hour for hour, value in enumerate(values) if value < 0]
        if negative:
            raise ValueError(f"{name} is negative in hour {negative[0]} of the week")
    over = [hour for hour in range(HOURS_IN_WEEK) if missed[hour] > arrivals[hour]]
    if over:
        hour = over[0]
        raise ValueError(
            f"missed ({missed[hour]}) exceeds arrivals ({arrivals[hour]}) in hour {hour} "
            "of the week"
        )
    outside = [hour for hour in short_hours if not 0 <= hour < HOURS_IN_WEEK]
    if outside:
        raise ValueError(f"short hour {outside[0]} is outside 0..{HOURS_IN_WEEK - 1}")


def _runs(hours: Sequence[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for hour in hours:
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + 1)
        else:
            runs.append((hour, hour + 1))
    return runs


def _families(rtl: bool) -> list[str]:
    wanted = _RTL_FAMILIES if rtl else _LTR_FAMILIES
    return [name for name in wanted if name in _installed_families()] or [_FALLBACK]


@cache
def _installed_families() -> frozenset[str]:
    # Asking only for installed names keeps matplotlib from logging "font not found".
    known = {entry.name for entry in font_manager.fontManager.ttflist}
    if not known & (set(_RTL_FAMILIES) - {_FALLBACK}):
        # matplotlib lists the system's fonts once and keeps the list in its cache: fonts
        # installed later (fonts-noto-core after a first run) are missing from it. Add them.
        listed = {entry.fname for entry in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in listed:
                # Broad as in matplotlib's own font scan: a font file its parser cannot read
                # raises whatever the parser hit, and one bad file must not stop the chart.
                with contextlib.suppress(Exception):
                    font_manager.fontManager.addfont(path)
        known = {entry.name for entry in font_manager.fontManager.ttflist}
    return frozenset(known)
