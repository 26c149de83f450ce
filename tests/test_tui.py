"""The terminal UI driven through Textual's Pilot, with the real model on a small corpus."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest
from textual.widgets import Input

from qa.conversations import ConversationStore
from qa.index import sync_index
from qa.tui.app import QAApp, create_app
from qa.tui.screens import ArticleScreen, BuildScreen
from qa.tui.widgets import AnswerCard, QuestionCard, SourcesPanel
from tests.conftest import BUNDLED_SEED, REPO
from tests.fakes import HashEncoder

pytestmark = pytest.mark.model

SIZE = (120, 40)


@pytest.fixture(scope="module")
def encoder() -> Any:
    """A fake encoder (hashed words): the TUI tests check the app, not the model; the trained
    reader still reads the passages."""
    return HashEncoder()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tui") / "corpus"
    root.mkdir()
    shutil.copy(BUNDLED_SEED, root / "seed.txt")
    (root / "markup.txt").write_text(
        "Quuxville [bold]alert[/bold] story\n\n"
        "The [link=https://evil.example]mayor[/link] of Quuxville said \x1b[31mred\x1b[0m "
        "alerts were issued on Tuesday.\n"
    )
    return root


@pytest.fixture(scope="module")
def index(corpus: Path, encoder: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("tui-index")
    sync_index(corpus, target, lambda _: encoder, full=True)
    return target


@pytest.fixture
def make_app(index: Path, corpus: Path, encoder: Any, tmp_path: Path) -> Callable[..., QAApp]:
    def make(index_dir: Path | None = None) -> QAApp:
        store = ConversationStore(tmp_path / "conversations.sqlite")
        return create_app(index_dir or index, corpus, store=store, encoder=encoder)

    return make


def run(app: QAApp, script: Callable[[Any], Awaitable[None]], size: tuple[int, int] = SIZE) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await script(pilot)

    asyncio.run(main())


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 90) -> None:
    """Until `condition` holds: the app's workers (model loading, asking, building) are
    awaited, then the messages they posted are processed."""

    async def settle() -> None:
        while not condition():
            await pilot.app.workers.wait_for_complete()
            await pilot.pause()

    try:
        await asyncio.wait_for(settle(), timeout)
    except TimeoutError:
        raise AssertionError("timed out waiting for the app") from None


async def ask(pilot: Any, question: str) -> list[AnswerCard]:
    app = pilot.app
    before = len(app.conversation.turns)
    box = app.query_one("#question")
    box.value = question
    await pilot.press("enter")
    await wait_for(pilot, lambda: len(app.conversation.turns) > before and not app.asking)
    await pilot.pause()
    return list(app.query(AnswerCard))


async def command(pilot: Any, text: str) -> None:
    pilot.app.query_one("#question").value = text
    await pilot.press("enter")
    await pilot.pause()


def plain(widget: Any) -> str:
    return str(widget.render())


def test_ask_and_follow_up(make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        cards = await ask(pilot, "Who led the purge of North Korean officers?")
        assert cards, "an answer card is shown"
        shown = plain(cards[0])
        assert "[1]" in shown and "N.Korea Purges Military Officers" in shown
        sources = app.query_one(SourcesPanel)
        assert sources.citations and sources.citations[0].title.startswith("N.Korea")
        await ask(pilot, "How many were discharged?")
        questions = list(app.query(QuestionCard))
        assert "searched:" in plain(questions[-1]) and "purge" in plain(questions[-1])
        last = app.conversation.turns[-1].result
        assert "1,000" in last.answers[0].text
        # history: Up brings back the last question
        await pilot.click("#question")
        await pilot.press("up")
        assert app.query_one("#question", Input).value == "How many were discharged?"

    run(app, script)
    saved = app.store.recent()
    assert len(saved) == 1 and saved[0].turns == 2


def test_question_typed_before_the_model_is_ready_is_answered(
    make_app: Callable[..., QAApp], monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from qa.engine import Engine

    gate = threading.Event()
    real_warm_up = Engine.warm_up

    def slow_warm_up(self: Engine) -> None:
        gate.wait(30)  # the model "loads" until the test lets it finish
        real_warm_up(self)

    monkeypatch.setattr(Engine, "warm_up", slow_warm_up)
    app = make_app()

    async def script(pilot: Any) -> None:
        assert app.engine is None, "the first frame is up while the model loads"
        box = app.query_one("#question", Input)
        box.value = "How many officers were dishonorably discharged?"
        await pilot.press("enter")
        await pilot.pause()
        assert list(app.pending) == ["How many officers were dishonorably discharged?"]
        assert "model is loading" in plain(app.query_one("#status"))
        gate.set()
        await wait_for(pilot, lambda: bool(app.conversation.turns))
        assert "1,000" in app.conversation.turns[0].result.answers[0].text

    run(app, script)


def test_open_citation_highlights_the_cited_characters(make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        await ask(pilot, "How many officers were dishonorably discharged?")
        citation = app.query_one(SourcesPanel).citations[0]
        sources = app.query_one("#sources-list")
        sources.focus()
        await pilot.press("enter")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, ArticleScreen)
        assert screen.highlighted == citation.quote
        assert "1,000" in screen.highlighted
        await pilot.press("escape")
        assert not isinstance(app.screen, ArticleScreen)
        # Enter on a focused answer opens its first source too
        app.query(AnswerCard).first().focus()
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, ArticleScreen)
        await pilot.press("escape")
        # typing while an answer has focus goes to the question box
        app.query(AnswerCard).first().focus()
        await pilot.press("h", "i")
        assert app.focused is app.query_one("#question")
        assert app.query_one("#question", Input).value == "hi"

    run(app, script)


def test_filter_changes_results(make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        await command(pilot, "/filter since:2030-01-01")
        assert app.filters.since == "2030-01-01"
        cards = await ask(pilot, "How many officers were dishonorably discharged?")
        assert app.conversation.turns[-1].result.not_found
        assert "no article matches the filter since:2030-01-01" in plain(cards[-1])
        await command(pilot, "/filter since:2009-02-30")  # not a date: refused, filter kept
        assert app.filters.since == "2030-01-01"
        await command(pilot, "/filter")
        assert not app.filters
        await ask(pilot, "How many officers were dishonorably discharged?")
        assert not app.conversation.turns[-1].result.not_found

    run(app, script)


def test_export_writes_markdown_with_citations(
    make_app: Callable[..., QAApp], tmp_path: Path
) -> None:
    app = make_app()
    target = tmp_path / "out" / "chat.md"

    async def script(pilot: Any) -> None:
        await ask(pilot, "How many officers were dishonorably discharged?")
        await command(pilot, f"/export {target}")

    run(app, script)
    text = target.read_text()
    assert "# qa conversation" in text
    assert "How many officers were dishonorably discharged?" in text
    assert "[1] N.Korea Purges Military Officers with Ties to Defectors" in text
    assert "> Around 1,000 officers" in text


def test_article_text_with_markup_and_escapes_renders_literally(
    make_app: Callable[..., QAApp],
) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        cards = await ask(pilot, "What did the mayor of Quuxville say about alerts?")
        shown = plain(cards[0])
        assert "[link=https://evil.example]mayor[/link]" in shown
        assert "\\x1b[31mred" in shown and "\x1b" not in shown
        assert "[bold]alert[/bold]" in shown  # the title, literally
        citation = app.query_one(SourcesPanel).citations[0]
        app.query_one("#sources-list").focus()
        await pilot.press("enter")
        await pilot.pause()
        assert "\\x1b[31mred" in cast(Any, app.screen).highlighted
        assert citation.quote.replace("\x1b", "\\x1b") == cast(Any, app.screen).highlighted

    run(app, script)


def test_missing_index_leads_to_the_build_screen(
    make_app: Callable[..., QAApp], tmp_path: Path
) -> None:
    app = make_app(index_dir=tmp_path / "new-index")

    async def script(pilot: Any) -> None:
        await pilot.pause()
        assert isinstance(app.screen, BuildScreen)
        await pilot.click("#build")
        await wait_for(pilot, lambda: app.engine is not None, timeout=60)
        cards = await ask(pilot, "How many officers were dishonorably discharged?")
        assert cards

    run(app, script)
    assert (tmp_path / "new-index" / "store.sqlite").exists()


def test_history_reopens_a_conversation(make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        await ask(pilot, "How many officers were dishonorably discharged?")
        await command(pilot, "/new")
        assert not app.conversation.turns
        conversation_id = app.store.recent()[0].id
        app._reopen(conversation_id)
        await pilot.pause()
        assert len(app.conversation.turns) == 1
        assert app.query(AnswerCard)

    run(app, script)


def test_core_modules_do_not_import_textual() -> None:
    modules = [
        "qa", "qa.articles", "qa.formats", "qa.chunking", "qa.encoders", "qa.encoders.minilm",
        "qa.encoders.onnx_runtime", "qa.index", "qa.retrieval", "qa.extractor", "qa.weights",
        "qa.chat", "qa.engine", "qa.batch", "qa.datasets", "qa.evaluate", "qa.conversations",
        "qa.cli", "qa.cluster", "qa.text",
    ]  # fmt: skip
    code = (
        f"import importlib, sys\nfor m in {modules!r}:\n    importlib.import_module(m)\n"
        "assert 'textual' not in sys.modules, 'a core module imported textual'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --------------------------------------------------------------------------- snapshots


def _fixed_status(app: QAApp) -> None:
    app._index_line = lambda: "2 articles · 4 chunks · all-MiniLM-L6-v2"  # type: ignore[method-assign]
    app.refresh_status()
    # a blinking cursor would make the picture depend on the moment it is taken
    app.query_one("#question", Input).cursor_blink = False


def test_snapshot_chat(snap_compare: Any, make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def before(pilot: Any) -> None:
        _fixed_status(app)
        await ask(pilot, "How many officers were dishonorably discharged?")
        _fixed_status(app)
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_help(snap_compare: Any, make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def before(pilot: Any) -> None:
        _fixed_status(app)
        await pilot.press("f1")
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_snapshot_build_screen(snap_compare: Any, corpus: Path, encoder: Any) -> None:
    app = create_app(Path("no-index-here"), Path("corpus"), False, encoder=encoder)

    async def before(pilot: Any) -> None:
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=before)


def test_export_asks_before_overwriting_and_numbers_citations_as_the_chat(
    make_app: Callable[..., QAApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_DATA_DIR", str(tmp_path / "data"))
    app = make_app()
    target = tmp_path / "chat.md"
    target.write_text("my notes\n")
    folder = tmp_path / "exports-here"
    folder.mkdir()

    async def script(pilot: Any) -> None:
        first = await ask(pilot, "How many officers were dishonorably discharged?")
        second = await ask(pilot, "How many officers were dishonorably discharged?")
        await command(pilot, f"/export {target}")
        assert target.read_text() == "my notes\n", "an existing file is not replaced silently"
        await command(pilot, f"/export {target}!")
        await command(pilot, "/export")
        # a folder, with or without "!": a new file inside it, nothing left behind
        await command(pilot, f"/export {folder}!")
        # the second answer's citations continue the first's numbers, in the chat and export
        card = second[len(first)]  # `ask` returns every answer card so far
        number = card.first_marker
        assert number > 1 and f"[{number}]" in plain(card)
        assert first[0].first_marker == 1

    run(app, script)
    text = target.read_text()
    assert text.count("[1] ") >= 1 and "my notes" not in text
    exports = list((tmp_path / "data" / "exports").glob("qa-*.md"))
    assert len(exports) == 1 and exports[0].read_text().startswith("# qa conversation")
    (into_folder,) = folder.iterdir()
    assert into_folder.name.startswith("qa-") and into_folder.read_text().startswith("# qa ")
    assert not list(tmp_path.glob(".*.tmp"))


def test_help_is_generated_from_the_bindings_and_fits_80_columns() -> None:
    from qa.tui.screens import help_text

    text = help_text(QAApp.BINDINGS)
    for key in ("F1", "Ctrl+N", "Ctrl+R", "Ctrl+S", "F5", "Ctrl+Q", "Ctrl+Y", "Ctrl+X",
                "Ctrl+P", "Tab", "/filter", "/export", "/history"):  # fmt: skip
        assert key in text, key
    assert max(len(line) for line in text.splitlines()) <= 72  # inside its box on 80 columns


def test_palette_has_the_apps_commands_and_the_theme_persists(
    make_app: Callable[..., QAApp], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_CONFIG_DIR", str(tmp_path / "config"))
    app = make_app()

    async def script(pilot: Any) -> None:
        titles = [command.title for command in app.get_system_commands(app.screen)]
        for title in ("Help", "New chat", "History", "Export", "Update", "Filter"):
            assert title in titles, title
        assert any("theme" in title.lower() for title in titles)
        app.theme = "nord"
        await pilot.pause()

    run(app, script)
    assert 'theme = "nord"' in (tmp_path / "config" / "config.toml").read_text()
    again = make_app()

    async def check(pilot: Any) -> None:
        assert again.theme == "nord"

    run(again, check)


def test_80x24_sources_collapse_tab_goes_to_the_newest_answer(
    make_app: Callable[..., QAApp],
) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        await wait_for(pilot, lambda: app.engine is not None)
        panel = app.query_one(SourcesPanel)
        assert not panel.display, "an empty Sources panel takes no room"
        await wait_for(pilot, lambda: bool(app.query("FooterKey")))
        footer_keys = [cast(Any, key).key for key in app.query("FooterKey")][:6]
        assert "f1" in footer_keys, footer_keys
        first = await ask(pilot, "How many officers were dishonorably discharged?")
        assert panel.display
        await ask(pilot, "What did the mayor of Quuxville say about alerts?")
        app.query_one("#question").focus()
        await pilot.pause()
        await pilot.press("tab")
        await wait_for(pilot, lambda: isinstance(app.focused, AnswerCard))
        focused = app.focused
        assert isinstance(focused, AnswerCard)
        assert focused.result is app.query(AnswerCard).last().result
        assert focused is not first[0]

    run(app, script, size=(80, 24))


def test_empty_chat_shows_the_index_and_starter_questions(
    make_app: Callable[..., QAApp],
) -> None:
    from qa.tui.widgets import StarterQuestion

    app = make_app()

    async def script(pilot: Any) -> None:
        def laid_out() -> bool:
            # mounted is not enough: a click on a widget not yet laid out lands nowhere
            starters = list(app.query(StarterQuestion))
            return bool(starters) and starters[0].region.width > 0

        await wait_for(pilot, laid_out)
        await pilot.pause()
        note = plain(app.query(".welcome").first())
        assert "2 articles" in note
        starters = list(app.query(StarterQuestion))
        story = next(s for s in starters if "N.Korea Purges" in s.question)
        await pilot.click(story)
        await wait_for(pilot, lambda: len(app.conversation.turns) == 1 and not app.asking)
        assert not app.query(StarterQuestion), "the suggestions go once the chat starts"
        # the first click answers with the story it names: its lead, verbatim and cited
        result = app.conversation.turns[0].result
        assert not result.not_found
        answer = result.answers[0]
        citation = answer.citations[0]
        assert citation.title == "N.Korea Purges Military Officers with Ties to Defectors"
        assert citation.published and citation.published.startswith("2016-11-01")
        assert citation.char_start == 0 and answer.text.startswith("North Korea is apparently")
        body = BUNDLED_SEED.read_text(encoding="utf-8")
        assert answer.text in body
        card = plain(app.query(AnswerCard).last())
        assert "North Korea is apparently purging military officers" in card

    run(app, script)


def test_build_screen_footer_shows_only_its_keys(
    make_app: Callable[..., QAApp], tmp_path: Path
) -> None:
    app = make_app(tmp_path / "no-index")

    async def script(pilot: Any) -> None:
        await wait_for(pilot, lambda: isinstance(app.screen, BuildScreen))
        assert app.check_action("export", ()) is False
        assert app.check_action("history", ()) is False
        assert app.check_action("quit", ()) is True

    run(app, script)


def test_related_passages_are_numbered_on_through_the_conversation() -> None:
    from qa.answers import Citation, Result
    from qa.batch import markdown_record

    related = tuple(
        Citation(
            article_id=f"a{n}", title=f"Story {n}", path=f"s{n}.txt", published=None, url=None,
            paragraph=1, char_start=0, char_end=10, quote="Some text.",
        )
        for n in (1, 2)
    )  # fmt: skip
    result = Result(
        question="Who?", query="Who?", not_found=True, answers=(), related=related, confidence=0.1
    )
    card = AnswerCard(result, None, 4)  # three citation markers came before it
    assert "[4]" in plain(card) and "[5]" in plain(card) and "[1]" not in plain(card)
    markdown = markdown_record({"id": 2, **result.as_dict()}, first_citation=4)
    assert "related [4]" in markdown and "related [5]" in markdown


def test_a_long_source_path_is_cut_whole_not_wrapped_mid_token() -> None:
    from qa.answers import Citation

    path = "wikinews/wikinews-2018.jsonl#ID2837166"
    citation = Citation(
        article_id="a", title="Amazon to buy Ring", path=path, published="2018-03-02",
        url=None, paragraph=3, char_start=0, char_end=5, quote="Ring.",
    )  # fmt: skip
    panel = SourcesPanel()
    lines = str(panel._prompt(1, citation, None, width=28)).splitlines()
    assert lines[1] == "2018-03-02" and lines[2] == "…news-2018.jsonl#ID2837166:3"
    assert all(len(line) <= 28 for line in lines[1:3])
    wide = str(panel._prompt(1, citation, None, width=80)).splitlines()
    assert wide[1] == f"2018-03-02 — {path}:3"  # on one line where it fits


def test_notices_show_what_was_typed_or_named_as_text(make_app: Callable[..., QAApp]) -> None:
    app = make_app()

    async def script(pilot: Any) -> None:
        await command(pilot, "/filter source:[bold]x[/bold]")
        await command(pilot, "/[red]nope")
        app.notify("a file named \x1b[2Jclear.txt")
        await pilot.pause()
        shown = [n.message for n in app._notifications]
        assert "Filter: source:[bold]x[/bold]" in shown  # as typed, not bold markup
        assert any("Unknown command /[red]nope" in m for m in shown)
        assert "a file named \\x1b[2Jclear.txt" in shown  # the escape is shown, not run
        assert all(not n.markup for n in app._notifications)

    run(app, script)
