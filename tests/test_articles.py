"""The article loader: every format, the seed article field by field, every bad input kind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa.articles import Article, decode_text, load_corpus
from qa.formats import parse_date
from tests.conftest import BUNDLED_SEED, REPO, SEED


def only(root: Path) -> Article:
    result = load_corpus(root)
    assert len(result.articles) == 1, result.problems
    return result.articles[0]


def check_paragraphs(article: Article) -> None:
    """Paragraph ranges tile the body: each is non-empty and separated by one blank line."""
    assert article.paragraphs
    position = 0
    for start, end in article.paragraphs:
        assert start == position
        assert end > start
        assert "\n" not in article.body[start:end]
        position = end + 2
    assert article.paragraphs[-1][1] == len(article.body)


# --------------------------------------------------------------------------- seed


def test_bundled_seed_is_the_seed_byte_for_byte() -> None:
    assert BUNDLED_SEED.read_bytes() == SEED.read_bytes()


def test_seed_article_fields(seed_corpus: Path) -> None:
    article = only(seed_corpus)
    assert article.title == "N.Korea Purges Military Officers with Ties to Defectors"
    assert article.byline == "Kim Myong-song"
    assert article.published == "2016-11-01T11:56"
    assert article.source == "Chosunilbo & Chosun.com"
    assert article.path == "chosun/seed.txt"
    assert article.record is None
    assert article.url is None
    assert len(article.id) == 16
    body = article.body
    assert body.startswith(
        "North Korea is apparently purging military officers with family members who have "
        "defected to South Korea.\n\n"
    )
    assert body.endswith(
        '"But there may be rumors that we compensate defectors who provide intelligence."'
    )
    # every paragraph of the story is kept, the photo caption included
    assert len(article.paragraphs) == 13
    assert "North Koreans gather for a mass rally" in body
    assert "Around 1,000 officers and enlisted soldiers have been dishonorably discharged" in body
    # bullets, copyright and navigation are gone
    for dropped in ("•", "Copyright", "©", "Previous Next", "All Headlines", "Back to Top"):
        assert dropped not in body
    assert "By Kim" not in body and "November 01, 2016" not in body
    check_paragraphs(article)


def test_ids_are_stable_and_depend_on_path(seed_corpus: Path, tmp_path: Path) -> None:
    first = only(seed_corpus)
    assert only(seed_corpus).id == first.id
    other = tmp_path / "other"
    other.mkdir()
    (other / "renamed.txt").write_bytes(BUNDLED_SEED.read_bytes())
    renamed = only(other)
    assert renamed.id != first.id
    assert renamed.sha256 == first.sha256


# --------------------------------------------------------------------------- plain text


def test_bbc_layout(tmp_path: Path, bbc: Path) -> None:
    source = bbc / "business" / "001.txt"
    (tmp_path / "001.txt").write_bytes(source.read_bytes())
    article = only(tmp_path)
    assert article.title == "Ad sales boost Time Warner profit"
    assert article.byline is None and article.published is None
    assert article.body.startswith("Quarterly profits at US media giant TimeWarner jumped 76%")
    paragraphs = [p.strip() for p in source.read_text().split("\n\n")[1:] if p.strip()]
    assert len(article.paragraphs) == len(paragraphs)
    check_paragraphs(article)


def test_body_paragraph_starting_with_by_is_not_a_byline(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text(
        "Storm hits coast\n\nBy the time rescuers arrived, the road was gone.\n\nMore text."
    )
    article = only(tmp_path)
    assert article.byline is None
    assert article.body.startswith("By the time rescuers arrived")


def test_hard_wrapped_paragraph_is_joined(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Title\n\nBy Jane Doe\n2020-05-03\n\nOne line\nwrapped here.\n")
    article = only(tmp_path)
    assert article.byline == "Jane Doe"
    assert article.published == "2020-05-03"
    assert article.body == "One line wrapped here."


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("November 01, 2016 11:56", "2016-11-01T11:56"),
        ("Published: 3 May 2020", "2020-05-03"),
        ("2020-05-03T10:15:00Z", "2020-05-03T10:15"),
        ("Tuesday, Nov 1, 2016", "2016-11-01"),
        ("2004-11-13", "2004-11-13"),
        ("Officers were driven out", None),
        ("", None),
    ],
)
def test_parse_date(text: str, iso: str | None) -> None:
    assert parse_date(text) == iso


# --------------------------------------------------------------------------- markdown


def test_markdown_with_front_matter(tmp_path: Path) -> None:
    (tmp_path / "story.md").write_text(
        "---\n"
        "title: Port strike ends\n"
        "date: 2021-03-04\n"
        "author: [Ann Lee, Bo Chan]\n"
        "url: https://example.com/strike\n"
        "source: Example Times\n"
        "tags: [labour, shipping]\n"
        "---\n"
        "# Port strike ends\n\n"
        "Dock workers **returned** to work on [Monday](https://x.y/z).\n"
        "The strike lasted nine days.\n\n"
        "- Ships queued offshore.\n"
        "- Prices rose.\n"
    )
    article = only(tmp_path)
    assert article.title == "Port strike ends"
    assert article.published == "2021-03-04"
    assert article.byline == "Ann Lee, Bo Chan"
    assert article.url == "https://example.com/strike"
    assert article.source == "Example Times"
    assert article.categories == ("labour", "shipping")
    # parsed as Markdown (markdown-it-py): the headline is not repeated as the first
    # paragraph, list items are paragraphs without their dashes, links keep their text
    assert article.body.split("\n\n") == [
        "Dock workers returned to work on Monday. The strike lasted nine days.",
        "Ships queued offshore.",
        "Prices rose.",
    ]
    check_paragraphs(article)


def test_markdown_without_front_matter_takes_heading_as_title(tmp_path: Path) -> None:
    (tmp_path / "story.md").write_text(
        "# Heading here\n\nFirst paragraph with `code` and ![a chart](c.png) an image.\n\n"
        "## Background\n\n* The co-op has 212 member boats\n\n```\nnot text\n```\n"
        "<div>raw html</div>\n\n> A quote.\n"
    )
    article = only(tmp_path)
    assert article.title == "Heading here"
    assert article.body.split("\n\n") == [
        "First paragraph with code and an image.",
        "Background",
        "The co-op has 212 member boats",
        "A quote.",
    ]


# --------------------------------------------------------------------------- JSON / JSONL


def record(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"r{i}", "title": f"Title {i}", "body": f"Body of article {i}.", **extra}


def test_json_single_list_and_wrapped(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps(record(1, date="2005-01-02", url="u1")))
    (tmp_path / "list.json").write_text(json.dumps([record(2), record(3)]))
    (tmp_path / "wrapped.json").write_text(json.dumps({"articles": [record(4)]}))
    result = load_corpus(tmp_path)
    assert result.problems == []
    by_title = {a.title: a for a in result.articles}
    assert sorted(by_title) == ["Title 1", "Title 2", "Title 3", "Title 4"]
    first = by_title["Title 1"]
    assert (first.published, first.url, first.record, first.path) == (
        "2005-01-02",
        "u1",
        "r1",
        "one.json",
    )
    assert first.ref == "one.json#r1"


def test_jsonl_records_with_paragraphs_and_metadata(tmp_path: Path) -> None:
    lines = [
        record(1, body="Para one.\n\nPara two.", categories=["politics"], source="Wikinews"),
        {"id": "r2", "title": "Two", "text": "Text key works too.", "author": "Al Roe"},
    ]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    articles = load_corpus(tmp_path).articles
    assert [a.body for a in articles] == ["Para one.\n\nPara two.", "Text key works too."]
    assert articles[0].categories == ("politics",) and articles[0].source == "Wikinews"
    assert articles[1].byline == "Al Roe"
    check_paragraphs(articles[0])


def test_bundled_wikinews_records_keep_title_date_url() -> None:
    from tests.conftest import REPO

    result = load_corpus(REPO / "corpus" / "wikinews" / "wikinews-2004.jsonl")
    assert result.problems == []
    first = result.articles[0]
    assert first.title == "President of China lunches with Brazilian President"
    assert first.published == "2004-11-13"
    assert first.url == "https://en.wikinews.org/w/index.php?curid=736"
    assert first.source == "Wikinews"
    assert first.record == "ID736"


# --------------------------------------------------------------------------- HTML

NEWS_PAGE = """<!doctype html><html><head>
<title>Dam breach floods valley | Daily Example</title>
<meta property="og:title" content="Dam breach floods valley">
<meta property="article:published_time" content="2019-07-08T09:30:00Z">
<meta name="author" content="Sam Park">
<meta property="og:site_name" content="Daily Example">
</head><body>
<nav><a href="/">Home</a> | <a href="/world">World</a> | <a href="/sport">Sport</a></nav>
<article><h1>Dam breach floods valley</h1>
<p>A dam upstream of the town gave way early on Monday, flooding hundreds of homes in the valley
below and forcing the evacuation of more than two thousand residents.</p>
<p>Engineers had warned for years that the structure, built in 1931, needed urgent repairs, the
regional water authority confirmed in a statement on Monday afternoon.</p>
</article>
<footer>Copyright 2019 Daily Example. All rights reserved. Privacy | Terms</footer>
</body></html>"""


def test_html_page(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(NEWS_PAGE)
    article = only(tmp_path)
    assert article.title == "Dam breach floods valley"
    assert article.published == "2019-07-08"
    assert article.byline == "Sam Park"
    assert article.body.startswith("A dam upstream of the town gave way early on Monday")
    assert "regional water authority confirmed" in article.body
    for boilerplate in ("Home", "Privacy", "Copyright"):
        assert boilerplate not in article.body
    assert len(article.paragraphs) == 2


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_are_reported_and_never_stop_the_load(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("Good title\n\nGood body.")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02binary junk" * 10)
    (tmp_path / "picture.html").write_bytes(b"\x89PNG\r\n\x1a\nrest")
    (tmp_path / "empty.txt").write_text("  \n\n ")
    (tmp_path / "latin1.txt").write_bytes("Price\n\nIt costs £5 today.".encode("latin-1"))
    (tmp_path / "big.txt").write_text("Big\n\n" + "word " * 300)
    (tmp_path / "broken.json").write_text('{"title": "x", "body": ')
    (tmp_path / "lines.jsonl").write_text(
        json.dumps(record(1))
        + "\n{not json\n"
        + json.dumps({"title": "no body"})
        + "\n"
        + json.dumps(record(2))
        + "\n[1, 2]\n"
    )
    (tmp_path / "notes.docx").write_text("whatever")
    (tmp_path / "front.md").write_text("---\ntitle: [unclosed\n---\nBody.\n")
    (tmp_path / "README.md").write_text("# About this corpus\n\nNot an article.")
    (tmp_path / ".hidden.txt").write_text("Hidden\n\nNot an article either.")

    result = load_corpus(tmp_path, max_bytes=1000)
    reasons = {p.path: (p.reason, p.action) for p in result.problems}
    assert reasons["binary.txt"] == ("binary file, not text", "skipped")
    assert reasons["picture.html"] == ("binary file, not text", "skipped")
    assert reasons["empty.txt"] == ("empty file", "skipped")
    assert reasons["latin1.txt"][0].startswith("invalid UTF-8 (1 byte, first at offset 16)")
    assert reasons["latin1.txt"][1] == "repaired"
    assert reasons["big.txt"][0].startswith("file too large")
    assert reasons["broken.json"][0].startswith("malformed JSON at line 1")
    assert reasons["lines.jsonl:2"][0].startswith("malformed JSON")
    assert reasons["lines.jsonl:3"][0].startswith("no body field")
    assert reasons["lines.jsonl:5"][0] == "record is a JSON list, not an object"
    assert reasons["notes.docx"] == ("unsupported file type .docx", "skipped")
    assert reasons["front.md"][0].startswith("malformed YAML front matter")
    assert len(result.problems) == 11

    loaded = {a.ref: a for a in result.articles}
    assert sorted(loaded) == ["good.txt", "latin1.txt", "lines.jsonl#r1", "lines.jsonl#r2"]
    assert loaded["latin1.txt"].body == "It costs £5 today."
    # README and hidden files are not counted as corpus files at all
    assert result.file_count == 10


def test_decode_text_repairs_stray_bytes_and_normalises_newlines() -> None:
    text, bad, first = decode_text(b"\xef\xbb\xbfa\r\nb\rc \x93quoted\x94 \x81")
    assert text == "a\nb\nc “quoted” \x81"
    assert (bad, first) == (3, 10)  # file offset, BOM included
    assert decode_text("naïve".encode()) == ("naïve", 0, -1)


def test_missing_corpus_is_a_clear_error(tmp_path: Path) -> None:
    from qa.errors import CorpusError

    with pytest.raises(CorpusError, match="no such corpus folder"):
        load_corpus(tmp_path / "nope")


def test_duplicates_are_recognised(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.txt").write_text("Same story\n\nSame text.")
    (tmp_path / "two.txt").write_text("Same story\n\n  Same   text.\n")
    (tmp_path / "three.txt").write_text("Other story\n\nOther text.")
    result = load_corpus(tmp_path)
    assert result.unique == 2
    assert result.duplicate_groups() == [["a/one.txt", "two.txt"]]


def test_bundled_wikinews_text_is_clean_and_in_paragraphs() -> None:
    import re
    import statistics

    markup = re.compile(r"==|<!--|-->|</?[a-zA-Z]+[ >/]|&[a-z]+;|&#\d+;|\bCategory:|infobox|\{\{")
    result = load_corpus(REPO / "corpus" / "wikinews")
    assert len(result.articles) > 4500
    dirty = [a.ref for a in result.articles if markup.search(a.title + " " + a.body)]
    assert not dirty, dirty[:5]
    assert statistics.median(len(a.paragraphs) for a in result.articles) >= 3


def test_wikinews_import_cleans_what_upstream_left() -> None:
    import sys

    sys.path.insert(0, str(REPO / "scripts"))
    from import_wikinews import clean_body

    body = (
        "United States infobox President Bush spoke &ndash; briefly. <!-- editor note --> "
        "Senator Hagel () agreed. <div>Boxed</div> ==Delegate ministers== Smith and Jones. "
        "== Related news == * Older story, May 2005 * Another one"
    )
    assert clean_body(body) == [
        "President Bush spoke – briefly. Senator Hagel agreed.",
        "Boxed",
        "Delegate ministers",
        "Smith and Jones.",
    ]


def test_the_bundled_corpus_has_no_import_defects() -> None:
    """What readers would meet in quotes: labels glued to first sentences, split words,
    empty parentheses, doubled commas, holes where links were (scripts/corpus_quality.py)."""
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "corpus_quality.py"), str(REPO / "corpus")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout
    for kind in ("leading prefix", "split suffix", "empty parentheses", "doubled commas", "holes"):
        assert f"{kind}: 0 articles" in result.stdout


def test_wikinews_repairs_use_what_the_corpus_shows() -> None:
    sys.path.insert(0, str(REPO / "scripts"))
    from import_wikinews import repair

    from qa.text_defects import defects

    bodies = [
        "Iraq At least seven inmates have died.",
        "Iraq The ministry said so.",
        "USA Sheila Dixon, the mayor of Baltimore, was indicted.",
        "USA The Senate voted.",
        "USA A storm hit Ohio.",
        "New Zealand The New Zealand Government said.",
        "New Zealand Prime Minister Helen Clark said so.",
        "Economy and business Fiat announced on Friday that the Russia n and Egypt ian "
        "markets grew, Congo 's too, and Smith,, Jones agreed.",
        "He met the President of the, who agreed.",
        "On a visit to the New Zealand Prime Minister's office, he spoke.",
        "Russian and Egyptian officials met; the Kenya n delegate did not.",
    ]
    repaired = repair(bodies)
    assert repaired[0] == "At least seven inmates have died."
    assert repaired[1] == "The ministry said so."
    assert repaired[2] == "Sheila Dixon, the mayor of Baltimore, was indicted."
    assert repaired[3] == "The Senate voted."
    assert repaired[5] == "The New Zealand Government said."
    assert repaired[6] == bodies[6]  # "Zealand Prime" occurs inside a sentence: a sentence
    assert repaired[7] == (
        "Fiat announced on Friday that the Russian and Egyptian markets grew, Congo's too, "
        "and Smith, Jones agreed."
    )
    assert not defects(repaired[7])
    assert [kind for kind, _ in defects(repaired[8])] == ["holes"]
    # "Kenyan" occurs nowhere else: not joined, so the import leaves the article out
    assert [kind for kind, _ in defects(repaired[10])] == ["split suffix"]  # left out by the import


def test_html_takes_the_visible_headline_byline_and_drops_comments(tmp_path: Path) -> None:
    (tmp_path / "page.html").write_text(
        "<html><head><title>Local News</title></head><body>"
        '<div class="nav"><a href="/">Home</a> | <a href="/news">News</a></div>'
        '<div class="story"><h2>Council approves new harbour budget</h2>'
        "<p>Posted by Jane Smith</p>"
        "<p>The town council approved a budget of 4.2 million pounds for the harbour on "
        "Tuesday, after a debate that lasted three hours.</p>"
        "<p>The money will pay for new pontoons and for dredging the channel, which has "
        "silted up since the storms of last winter.</p>"
        "<p>Comments (12)</p><p>Great news, finally!</p></div></body></html>"
    )
    article = only(tmp_path)
    assert article.title == "Council approves new harbour budget"
    assert article.byline == "Jane Smith"
    assert article.body.startswith("The town council approved")
    assert "Comments" not in article.body and "Great news" not in article.body


def test_an_html_date_comes_from_metadata_or_a_dateline_never_from_the_text(
    tmp_path: Path,
) -> None:
    story = (
        "<h1>Harbour plans go to the council</h1>"
        "<p>The council will decide in autumn 2019 whether to fund the new harbour wall, "
        "after a debate that has lasted for years in the town.</p>"
        "<p>The money would pay for pontoons and for dredging the channel, which has "
        "silted up since the storms of last winter.</p>"
    )
    (tmp_path / "undated.html").write_text(f"<html><body><article>{story}</article></body></html>")
    assert only(tmp_path).published is None  # not 2019-01-01 from "autumn 2019"
    (tmp_path / "undated.html").unlink()
    (tmp_path / "meta.html").write_text(
        "<html><head><meta property='article:published_time' content='2021-03-04T10:00:00Z'>"
        f"</head><body><article>{story}</article></body></html>"
    )
    assert (only(tmp_path).published or "").startswith("2021-03-04")
    (tmp_path / "meta.html").unlink()
    (tmp_path / "dateline.html").write_text(
        "<html><body><article><h1>Harbour plans go to the council</h1>"
        "<p>Posted by Jane Smith on March 3, 2021</p>"
        f"{story.split('</h1>', 1)[1]}</article></body></html>"
    )
    article = only(tmp_path)
    assert (article.published, article.byline) == ("2021-03-03", "Jane Smith")


def test_a_text_too_long_for_an_article_is_a_problem_and_the_others_are_kept(
    tmp_path: Path,
) -> None:
    from qa.articles import MAX_ARTICLE_CHARS

    (tmp_path / "dump.txt").write_text("Dump\n\n" + "word " * (MAX_ARTICLE_CHARS // 5 + 10))
    (tmp_path / "story.txt").write_text("Harbour reopens\n\nThe harbour reopened on Tuesday.\n")
    result = load_corpus(tmp_path)
    assert [a.path for a in result.articles] == ["story.txt"]
    (problem,) = result.problems
    assert problem.path == "dump.txt" and "one article may have" in problem.reason
