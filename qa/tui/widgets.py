"""Widgets of the chat screen. Everything shown that came from an article goes through
`safe()`: literal text (never markup) with control characters made visible."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from qa.answers import Answer, Citation, Result, citation_date, confidence_words, not_found_message
from qa.text import excerpt, terminal_safe


def safe(text: str) -> Content:
    """Article text as inert, literal content."""
    return Content(terminal_safe(text))


def answer_content(answer: Answer, first_marker: int) -> Content:
    """The answer sentence with its span highlighted and its citation markers."""
    before, span, after = answer.pieces()
    parts: list[Content | tuple[str, str] | str] = [terminal_safe(before)]
    if span:
        parts += [(terminal_safe(span), "bold reverse"), terminal_safe(after)]
    markers = " ".join(f"[{first_marker + i}]" for i in range(len(answer.citations)))
    parts.append((f"  {markers}", "bold cyan"))
    parts.append((f"  {confidence_words(answer.score)}", "dim"))
    return Content.assemble(*parts)


class QuestionCard(Static):
    """A question in the transcript."""

    DEFAULT_CSS = """
    QuestionCard { margin: 1 0 0 0; padding: 0 1; color: $text; text-style: bold; }
    """

    def __init__(self, question: str, query: str | None = None) -> None:
        self.question = question
        super().__init__(self._content(query), markup=False)

    def _content(self, query: str | None) -> Content:
        shown = Content.assemble(("You: ", "bold blue"), terminal_safe(self.question))
        if query and query != self.question:
            shown = Content.assemble(shown, ("\n(searched: ", "dim"), (terminal_safe(query), "dim"),
                                     (")", "dim"))  # fmt: skip
        return shown

    def show_query(self, query: str) -> None:
        """What was searched in the end (a question with two interpretations keeps the better)."""
        self.update(self._content(query))


class AnswerCard(Static, can_focus=True):
    """One answer (or the not-found notice) in the transcript; focus it to see its sources,
    Enter opens the article at its first source."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_source", "Open source", tooltip="Show the cited article"),
    ]

    DEFAULT_CSS = """
    AnswerCard { padding: 0 1 0 3; margin: 0 0 0 0; }
    AnswerCard:focus { background: $boost; border-left: thick $accent; padding-left: 2; }
    AnswerCard.not-found { color: $warning; }
    """

    @dataclass
    class Selected(Message):
        """An answer was focused or clicked: its sources should be shown."""

        card: AnswerCard

    def __init__(self, result: Result, answer_index: int | None, first_marker: int = 1) -> None:
        self.result = result
        self.answer_index = answer_index
        self.first_marker = first_marker
        """Number of the answer's first citation: citations are numbered through the whole
        conversation, the same in the transcript, the Sources panel and an export."""
        if answer_index is None:
            super().__init__(
                self._not_found(result, first_marker), markup=False, classes="not-found"
            )
            return
        answer = result.answers[answer_index]
        lines = [Content.assemble((f"{answer_index + 1}. ", "bold"),
                                  answer_content(answer, first_marker))]  # fmt: skip
        if answer.dates:
            lines.append(Content.styled(f"   when: {terminal_safe(answer.when())}", "dim"))
        for offset, citation in enumerate(answer.citations):
            lines.append(
                Content.assemble(
                    (f"   [{first_marker + offset}] ", "bold cyan"),
                    (terminal_safe(citation.title), "italic"),
                    (f" — {citation_date(citation)}", "dim"),
                )
            )
        super().__init__(Content("\n").join(lines), markup=False)

    @staticmethod
    def _not_found(result: Result, first_marker: int) -> Content:
        message = not_found_message(result.reason)
        lines = [Content.styled(terminal_safe(message), "bold")]
        if result.related:
            lines.append(Content.styled("Related passages (select to see them):", "dim"))
            for number, citation in enumerate(result.related, first_marker):
                lines.append(
                    Content.assemble(
                        (f"   [{number}] ", "bold"),
                        (terminal_safe(citation.title), "italic"),
                        (f" — {citation_date(citation)}", "dim"),
                    )
                )
        return Content("\n").join(lines)

    @property
    def citations(self) -> list[Citation]:
        if self.answer_index is None:
            return list(self.result.related)
        return list(self.result.answers[self.answer_index].citations)

    @property
    def answer(self) -> Answer | None:
        if self.answer_index is None:
            return None
        return self.result.answers[self.answer_index]

    @dataclass
    class OpenRequested(Message):
        """Enter on an answer: open its first source."""

        card: AnswerCard

    def on_focus(self) -> None:
        self.post_message(self.Selected(self))

    def action_open_source(self) -> None:
        self.post_message(self.OpenRequested(self))

    def on_click(self) -> None:
        self.focus()


class SourcesPanel(Vertical):
    """The citations of the selected answer, each with its quote; Enter opens the article."""

    DEFAULT_CSS = """
    SourcesPanel { width: 2fr; border-left: solid $primary-darken-2; padding: 0 1; }
    SourcesPanel > #sources-title { text-style: bold; padding: 0 0 1 0; }
    SourcesPanel > OptionList { height: 1fr; border: none; }
    """

    @dataclass
    class Opened(Message):
        """A citation was chosen: show the article around it."""

        citation: Citation
        span: tuple[int, int] | None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.citations: list[Citation] = []
        self._card: AnswerCard | None = None
        self._span: tuple[int, int] | None = None

    def compose(self) -> Any:
        yield Static("Sources", id="sources-title")
        yield OptionList(id="sources-list")

    def on_resize(self) -> None:
        # paths are fitted to the width: shown again when the panel gets one (it is laid out
        # after an answer is first shown in it on a narrow terminal) or changes it
        if self._card is not None:
            options = self.query_one(OptionList)
            highlighted = options.highlighted
            self.show(self._card)
            if highlighted is not None and highlighted < options.option_count:
                options.highlighted = highlighted

    def show(self, card: AnswerCard | None) -> None:
        self._card = card
        self.citations = card.citations if card else []
        answer = card.answer if card else None
        self._span = None
        if answer and answer.span and answer.span_start is not None:
            self._span = (answer.span_start, answer.span_start + len(answer.span))
        options = self.query_one(OptionList)
        options.clear_options()
        first = card.first_marker if card is not None else 1
        # the room an option's line has (0 before the first layout: nothing is shortened)
        width = max(0, self.content_region.width - 2)
        for offset, citation in enumerate(self.citations):
            prompt = self._prompt(first + offset, citation, answer, width)
            options.add_option(Option(prompt, id=f"citation-{offset}"))
        if self.citations:
            options.highlighted = 0
        title = "Sources" if answer else ("Related passages" if card else "Sources")
        self.query_one("#sources-title", Static).update(Content(title))

    def _prompt(
        self, number: int, citation: Citation, answer: Answer | None, width: int = 0
    ) -> Content:
        quote = citation.quote
        if answer is None:
            quote = excerpt(quote, 400)
        if self._span is not None and answer is not None:
            start, end = self._span
            quoted = Content.assemble(
                terminal_safe(quote[:start]),
                (terminal_safe(quote[start:end]), "bold reverse"),
                terminal_safe(quote[end:]),
            )
        else:
            quoted = safe(quote)
        where = terminal_safe(f"{citation.path}:{citation.paragraph}")
        dated = f"{citation_date(citation)} — {where}"
        if width and len(dated) > width:
            # a path is one token: wrapped, it would break anywhere ("...json" / "l#ID2:3");
            # on a line of its own, cut from the left, the file and paragraph stay whole
            shown = where if len(where) <= width else "…" + where[-(width - 1) :]
            dated = f"{citation_date(citation)}\n{shown}"
        return Content("\n").join(
            [
                Content.assemble(
                    (f"[{number}] ", "bold cyan"), (terminal_safe(citation.title), "bold")
                ),
                Content.styled(dated, "dim"),
                Content.assemble(("“", "dim"), quoted, ("”", "dim")),
                Content(""),
            ]
        )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        index = int((event.option.id or "citation-0").rsplit("-", 1)[1])
        if 0 <= index < len(self.citations):
            self.post_message(self.Opened(self.citations[index], self._span))


class StarterQuestion(Static):
    """A question the empty chat suggests; a click asks it."""

    @dataclass
    class Chosen(Message):
        question: str

    def __init__(self, question: str) -> None:
        self.question = question
        super().__init__(Content("• " + terminal_safe(question)), classes="starter welcome")

    def on_click(self) -> None:
        self.post_message(self.Chosen(self.question))


class HistoryInput(Input):
    """The question box: Up and Down walk through earlier questions; Tab goes to the newest
    answer."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "older", "Older question", show=False),
        Binding("down", "newer", "Newer question", show=False),
        Binding("tab", "app.focus_answers", "Answers", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.history: list[str] = []
        self._position = 0

    def remember(self, text: str) -> None:
        if text and (not self.history or self.history[-1] != text):
            self.history.append(text)
        self._position = len(self.history)

    def action_older(self) -> None:
        if self.history and self._position > 0:
            self._position -= 1
            self.value = self.history[self._position]
            self.cursor_position = len(self.value)

    def action_newer(self) -> None:
        if self._position < len(self.history) - 1:
            self._position += 1
            self.value = self.history[self._position]
        else:
            self._position = len(self.history)
            self.value = ""
        self.cursor_position = len(self.value)
