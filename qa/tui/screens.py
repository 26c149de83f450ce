"""Screens over the chat: the article viewer, the index build screen, help and history."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Footer, OptionList, ProgressBar, Static, TextArea
from textual.widgets.option_list import Option
from textual.widgets.text_area import Selection

from qa.errors import Cancelled, CommittedInterrupt
from qa.text import terminal_safe


def _location(text: str, offset: int) -> tuple[int, int]:
    """(row, column) of a character offset, as TextArea counts them."""
    before = text[:offset]
    row = before.count("\n")
    return row, offset - (before.rfind("\n") + 1)


class ArticleScreen(Screen[None]):
    """The whole article, scrolled to the cited characters, which are selected."""

    AUTO_FOCUS = "*"  # the app's own (the question box) is the chat's alone

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "Back", tooltip="Back to the chat", priority=True),
        Binding("q", "app.pop_screen", "Back", show=False),
    ]
    DEFAULT_CSS = """
    ArticleScreen > #article-head { padding: 0 1; background: $boost; }
    ArticleScreen > TextArea { height: 1fr; }
    """

    def __init__(self, article: Any, char_start: int, char_end: int) -> None:
        super().__init__()
        self.article = article
        body = article.body
        # Offsets move when control characters are shown as escapes: map them through.
        self.text = terminal_safe(body)
        self.start = len(terminal_safe(body[:char_start]))
        self.end = len(terminal_safe(body[:char_end]))

    def compose(self) -> ComposeResult:
        meta = " — ".join(
            part
            for part in (
                (self.article.published or "undated")[:16],
                self.article.byline,
                self.article.source,
                self.article.path,
                self.article.url,
            )
            if part
        )
        yield Static(
            Content.assemble(
                (terminal_safe(self.article.title), "bold"), "\n", (terminal_safe(meta), "dim")
            ),
            id="article-head",
            markup=False,
        )
        yield TextArea(self.text, read_only=True, soft_wrap=True, id="article-text")
        yield Footer()

    def on_mount(self) -> None:
        area = self.query_one(TextArea)
        area.selection = Selection(
            start=_location(self.text, self.start), end=_location(self.text, self.end)
        )
        area.scroll_cursor_visible(center=True, animate=False)
        area.focus()

    @property
    def highlighted(self) -> str:
        return self.query_one(TextArea).selected_text


class BuildScreen(Screen[bool]):
    """No index yet: offer to build it from the corpus, with progress; cancellable."""

    AUTO_FOCUS = "*"  # the app's own (the question box) is the chat's alone

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel / quit"),
        Binding("enter", "build", "Build", show=False),
    ]
    DEFAULT_CSS = """
    BuildScreen { align: center middle; }
    BuildScreen > Vertical { width: 80; height: auto; border: round $primary; padding: 1 2; }
    BuildScreen #build-status { height: auto; margin: 1 0; }
    BuildScreen Horizontal { height: auto; }
    BuildScreen Button { margin-right: 2; }
    BuildScreen #build-progress { display: none; }
    BuildScreen #build-progress.running { display: block; }
    """

    @dataclass
    class Progressed(Message):
        stage: str
        done: int
        total: int

    def __init__(self, corpus: str, index: str, build: Any) -> None:
        super().__init__()
        self.corpus = corpus
        self.index = index
        self.build = build
        self._cancel = threading.Event()
        self.running = False

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(
                Content.assemble(
                    ("No index yet", "bold"),
                    f"\n\nThe folder {terminal_safe(self.index)}/ holds no index yet.\n"
                    f"Build it from the articles in {terminal_safe(self.corpus)}? This reads "
                    "every article, splits "
                    "it into passages and embeds them (minutes for a large corpus).",
                ),
                markup=False,
            )
            yield Static("", id="build-status", markup=False)
            yield ProgressBar(total=None, show_eta=True, id="build-progress")
            with Horizontal():
                yield Button("Build the index", variant="primary", id="build")
                yield Button("Quit", id="quit")
        yield Footer()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "build":
            self.action_build()
        else:
            self.action_cancel()

    def action_build(self) -> None:
        if self.running:
            return
        self.running = True
        self.query_one("#build", Button).disabled = True
        self.query_one("#quit", Button).label = "Cancel"
        self.query_one(ProgressBar).add_class("running")
        self.run_build()

    def action_cancel(self) -> None:
        if self.running:
            self._cancel.set()
            self.query_one("#build-status", Static).update("Cancelling…")
        else:
            self.dismiss(False)

    @work(thread=True, exclusive=True, exit_on_error=False, group="build")
    def run_build(self) -> None:
        def progress(report: Any) -> None:
            self.post_message(self.Progressed(report.stage, report.done, report.total))

        try:
            report = self.build(progress, self._cancel)
        except Cancelled:
            self.app.call_from_thread(self._finished, None, "Cancelled: nothing was changed.")
        except CommittedInterrupt as exc:  # cancelled after the commit: the index is built
            self.app.call_from_thread(self._finished, exc.report, None)
        except Exception as exc:  # shown once, the screen stays usable
            self.app.call_from_thread(self._finished, None, f"Build failed: {exc}")
        else:
            self.app.call_from_thread(self._finished, report, None)

    def on_build_screen_progressed(self, event: BuildScreen.Progressed) -> None:
        from qa.labels import STAGES

        label = STAGES.get(event.stage, (event.stage, ""))[0]
        self.query_one("#build-status", Static).update(f"{label}: {event.done:,} / {event.total:,}")
        self.query_one(ProgressBar).update(total=event.total, progress=event.done)

    def _finished(self, report: Any, error: str | None) -> None:
        self.running = False
        self._cancel.clear()
        if error is None:
            self.dismiss(True)
            return
        self.query_one("#build-status", Static).update(error)
        self.query_one(ProgressBar).remove_class("running")
        self.query_one("#build", Button).disabled = False
        self.query_one("#quit", Button).label = "Quit"


COMMANDS = (
    ("/new", "start a new conversation"),
    ("/filter since:DATE until:DATE source:TEXT", "only search matching articles"),
    ("/filter", "search everything again"),
    ("/export [PATH]", "save the chat as Markdown (~/.local/share/qa/exports)"),
    ("/export PATH!", "the same, replacing an existing file"),
    ("/history", "reopen an earlier conversation"),
    ("/help", "this help"),
)
"""The chat's slash commands, for the help and the README."""

FIXED_KEYS = (
    ("Enter", "ask; on an answer or source: open the article"),
    ("Up / Down", "earlier questions"),
    ("Tab", "to the newest answer, then its sources"),
    ("Escape", "back"),
    ("Ctrl+P", "command palette (every command, themes)"),
)


def _key_name(key: str) -> str:
    return "+".join(part.capitalize() if len(part) > 1 else part.upper()
                    for part in key.split("+"))  # fmt: skip


def help_text(bindings: Any) -> str:
    """The help, generated from the app's bindings and commands (fits 80 columns)."""
    lines = [
        'Ask a question and press Enter. A follow-up ("how old is he?")',
        "uses the last answer; /new starts afresh.",
        "",
        "Keys",
    ]
    keys = list(FIXED_KEYS)
    for binding in bindings:
        keys.append((_key_name(binding.key), binding.tooltip or binding.description))
    lines += [f"  {key:<11} {what}" for key, what in keys]
    lines += ["", "Commands"]
    for command, what in COMMANDS:
        line = f"  {command:<16} {what}"
        lines += [line] if len(line) <= HELP_WIDTH else [f"  {command}", f"      {what}"]
    lines += [
        "",
        "Answers are sentences quoted from the articles; the highlighted part",
        "answers the question, [n] marks its sources (on the right for the",
        "selected answer).",
    ]
    return "\n".join(lines)


HELP_WIDTH = 72
"""The help's longest line: inside its box (border, padding, scroll bar) on 80 columns."""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: auto; max-width: 100%; height: auto;
                                  max-height: 100%; border: round $primary; padding: 0 1;
                                  background: $surface; }
    HelpScreen Static { width: auto; }
    """

    AUTO_FOCUS = "*"  # the app's own (the question box) is the chat's alone

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(self.text, markup=False)

    def on_click(self) -> None:
        self.dismiss()


class HistoryScreen(ModalScreen[int | None]):
    """Earlier conversations; Enter reopens one."""

    AUTO_FOCUS = "*"  # the app's own (the question box) is the chat's alone

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Close")]
    DEFAULT_CSS = """
    HistoryScreen { align: center middle; }
    HistoryScreen > Vertical { width: 100; height: 80%; border: round $primary;
                               background: $surface; padding: 0 1; }
    """

    def __init__(self, conversations: list[Any]) -> None:
        super().__init__()
        self.conversations = conversations

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Content.styled("Conversations (Enter to reopen)", "bold"))
            if not self.conversations:
                yield Static("No saved conversations yet.")
            yield OptionList(
                *[
                    Option(
                        Content.assemble(
                            (c.updated_at.replace("T", " "), "dim"),
                            f"  {terminal_safe(c.title)}  ",
                            (f"({c.turns} question{'s' if c.turns != 1 else ''}, ", "dim"),
                            (f"index {terminal_safe(c.index_dir)})", "dim"),
                        ),
                        id=str(c.id),
                    )
                    for c in self.conversations
                ]
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option.id or "0"))
