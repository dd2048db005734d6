"""The hour-of-week chart: a valid, deterministic PNG, right to left and shaped in Persian."""

from __future__ import annotations

import io
import struct
import unicodedata

import pytest
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties, findfont
from matplotlib.ft2font import FT2Font
from matplotlib.patches import Rectangle

from monitor.summary import charts
from monitor.summary.charts import HOURS_IN_WEEK, hour_of_week_chart
from monitor.summary.locale import Locale, get_locale
from tests.summary.fonts import needs_persian_fonts

EN, FA = get_locale("en"), get_locale("fa")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Visual-order Arabic presentation forms (from arabic-reshaper + python-bidi), forced left to
# right with LRO...PDF: what correct shaping and bidi must produce on screen.
LRO, PDF = "\u202d", "\u202c"
SHAPED_REFERENCE = {
    "سه‌شنبه": "\ufeea\ufe92\ufee8\ufeb7\u200c\ufeea\ufeb3",
    "بی‌پاسخ در مهلت هدف": (
        "\ufed1\ufeaa\ufeeb \ufe96\ufee0\ufeec\ufee3 \ufead\ufea9 "
        "\ufea6\ufeb3\ufe8e\ufb58\u200c\ufbfd\ufe91"
    ),
}


def week() -> tuple[list[int], list[int]]:
    """A plausible week: busy days, quiet nights, misses in the evenings."""
    arrivals = [(hour % 24 >= 8) * (3 + hour % 7) for hour in range(HOURS_IN_WEEK)]
    missed = [count // 3 if hour % 24 >= 18 else 0 for hour, count in enumerate(arrivals)]
    return arrivals, missed


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert data[:8] == PNG_MAGIC
    length, kind = struct.unpack(">I4s", data[8:16])
    assert (length, kind) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def drawn(text: str, families: list[str]) -> bytes:
    """``text`` drawn alone by matplotlib as the chart draws its labels, as a PNG."""
    figure = Figure(figsize=(3, 0.6), dpi=100)
    FigureCanvasAgg(figure)
    figure.text(0.5, 0.5, text, family=families, fontsize=16, ha="center", va="center")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def legend_texts(axes: Axes) -> list[str]:
    """The legend's entries, left to right."""
    legend = axes.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


@pytest.mark.parametrize("locale", [EN, FA], ids=["en", "fa"])
def test_chart_is_a_png_of_the_mail_size(locale: Locale) -> None:
    """About 900 x 320 px in a mail client, drawn at 150 dpi."""
    arrivals, missed = week()
    data = hour_of_week_chart(arrivals, missed, locale, short_hours=[18, 19, 42])
    assert png_size(data) == (1350, 480)
    assert data.endswith(b"IEND\xaeB`\x82")


def test_same_week_same_bytes_other_week_other_bytes() -> None:
    """Deterministic output: no timestamp or version in the file; the data shows in it."""
    arrivals, missed = week()
    first = hour_of_week_chart(arrivals, missed, FA, [20])
    assert hour_of_week_chart(list(arrivals), list(missed), FA, [20]) == first
    assert b"tIME" not in first and b"Software" not in first
    changed = list(arrivals)
    changed[100] += 5
    assert hour_of_week_chart(changed, missed, FA, [20]) != first
    assert hour_of_week_chart(arrivals, missed, FA, [21]) != first


@pytest.mark.parametrize(
    ("arrivals", "missed", "short", "message"),
    [
        ([0] * 167, [0] * 168, (), "arrivals needs 168 hourly counts, got 167"),
        ([0] * 168, [0] * 169, (), "missed needs 168 hourly counts, got 169"),
        ([1] * 168, [0] * 167 + [2], (), r"missed \(2\) exceeds arrivals \(1\) in hour 167"),
        ([0] * 5 + [-1] + [0] * 162, [0] * 168, (), "arrivals is negative in hour 5"),
        ([0] * 168, [0] * 168, (168,), "short hour 168"),
    ],
)
def test_bad_input_is_refused_with_the_problem_named(
    arrivals: list[int], missed: list[int], short: tuple[int, ...], message: str
) -> None:
    """Wrong lengths, impossible counts and hours outside the week are caller bugs."""
    with pytest.raises(ValueError, match=message):
        hour_of_week_chart(arrivals, missed, EN, short)


def test_an_empty_week_still_renders_a_clear_chart() -> None:
    """No customers: a y axis from zero up, and a sentence saying so."""
    zeros = [0] * HOURS_IN_WEEK
    assert png_size(hour_of_week_chart(zeros, zeros, FA)) == (1350, 480)
    axes = charts._figure(zeros, zeros, EN, ()).axes[0]
    bottom, top = axes.get_ylim()
    assert bottom == 0 and top > 0
    assert EN.text("no_waits") in [text.get_text() for text in axes.texts]


def test_short_hours_are_marked_as_bands() -> None:
    """Adjacent short hours merge into one band; the legend explains it."""
    arrivals, missed = week()
    axes = charts._figure(arrivals, missed, EN, [19, 20, 21, 100]).axes[0]
    bands = [p for p in axes.patches if isinstance(p, Rectangle) and p.get_zorder() == 0]
    spans = sorted((band.get_x(), band.get_width()) for band in bands)
    assert spans == [(19, 3), (100, 1)]
    assert len(axes.patches) == 2 + 2 * HOURS_IN_WEEK  # two bands, arrivals and missed bars
    keys = ("legend_arrivals", "legend_missed", "legend_short")
    assert legend_texts(axes) == [EN.text(key) for key in keys]


def test_english_runs_left_to_right() -> None:
    """Monday on the left, the y axis on the left."""
    arrivals, missed = week()
    axes = charts._figure(arrivals, missed, EN, ()).axes[0]
    assert not axes.xaxis_inverted()
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
    ]  # fmt: skip


def test_persian_runs_right_to_left() -> None:
    """Monday on the right, the y axis on the right, the legend read from the right."""
    arrivals, missed = week()
    axes = charts._figure(arrivals, missed, FA, [20]).axes[0]
    assert axes.xaxis_inverted()
    left, right = axes.get_xlim()
    assert (left, right) == (HOURS_IN_WEEK, 0)
    assert axes.yaxis.get_ticks_position() == "right"
    keys = ("legend_short", "legend_missed", "legend_arrivals")
    assert legend_texts(axes) == [FA.text(key) for key in keys]


def test_persian_labels_go_to_matplotlib_in_logical_order() -> None:
    """Matplotlib >= 3.11 shapes and orders text itself: shaping here too would reverse it."""
    arrivals, missed = week()
    figure = charts._figure(arrivals, missed, FA, ())
    figure.canvas.draw()
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_xticklabels()] == [
        FA.weekday(day, short=True) for day in range(7)
    ]
    hours = [label.get_text() for label in axes.get_xticklabels(minor=True)]
    assert hours[:4] == ["۰", "۶", "۱۲", "۱۸"]
    assert axes.get_xlabel() == FA.text("axis_hour")


@pytest.mark.parametrize("text", sorted(SHAPED_REFERENCE))
def test_matplotlib_joins_and_orders_persian(text: str) -> None:
    """What the chart hands matplotlib comes out as correctly joined, right-to-left letters."""
    families = charts._families(rtl=True)
    shown = drawn(text, families)
    # Same PNG bytes means the same pixels (both files are written without metadata).
    assert shown == drawn(LRO + SHAPED_REFERENCE[text] + PDF, families)
    # The comparison can fail: the same letters left to right look different.
    assert shown != drawn(LRO + text + PDF, families)


@needs_persian_fonts
def test_persian_fonts_have_every_glyph_the_chart_needs() -> None:
    """No empty boxes: each letter and digit of the chart is in one of the chosen fonts."""
    families = charts._families(rtl=True)
    assert families[0] in ("Vazirmatn", "Noto Sans Arabic", "Noto Naskh Arabic")
    fonts = [FT2Font(findfont(FontProperties(family=name))) for name in families]
    keys = ("legend_arrivals", "legend_missed", "legend_short", "axis_hour", "axis_count")
    texts = [FA.text(key) for key in keys] + [FA.text("no_waits"), FA.number(1234567890)]
    texts += [FA.weekday(day, short=True) for day in range(7)]
    for char in set("".join(texts)):
        if unicodedata.category(char) in ("Cf", "Zs"):
            continue
        assert any(font.get_char_index(ord(char)) for font in fonts), f"U+{ord(char):04X}"


def test_persian_needs_a_matplotlib_that_lays_out_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """On an old matplotlib a Persian chart fails loudly instead of drawing reversed letters."""
    monkeypatch.setattr(charts, "_LAYS_OUT_TEXT", False)
    arrivals, missed = week()
    with pytest.raises(RuntimeError, match=r"matplotlib >= 3\.11"):
        hour_of_week_chart(arrivals, missed, FA)
    assert hour_of_week_chart(arrivals, missed, EN)[:8] == PNG_MAGIC


@pytest.mark.parametrize("locale", [EN, FA], ids=["en", "fa"])
def test_every_label_fits_in_the_picture(locale: Locale) -> None:
    """Nothing is cut off at the edges: Persian letters stand taller than Latin ones."""
    arrivals, missed = week()
    figure = charts._figure(arrivals, missed, locale, [20])
    figure.draw_without_rendering()  # places the axis titles, as saving would
    # Everything drawn for the axes: tick labels, axis titles, legend.
    drawn_box = figure.axes[0].get_tightbbox()
    assert drawn_box is not None
    page = figure.bbox
    assert page.x0 <= drawn_box.x0 and drawn_box.x1 <= page.x1
    assert page.y0 <= drawn_box.y0 and drawn_box.y1 <= page.y1
