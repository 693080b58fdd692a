"""Builds the small demo data files in articles/demo_data/ from the raw data sets in ../shared/data.

Usage (from the repository root)::

    python scripts/make_demo_data.py [--source ../shared/data] [--out articles/demo_data]

Standard library only, deterministic: running it twice on the same inputs gives byte-identical files
(gzip with mtime 0, no random state; every "random" choice is a BLAKE2 hash of fixed strings).

What it writes (all UTF-8 CSV, gzip-compressed, with a header row):

``books.csv.gz``
    The ``--n-books`` (2,000) goodbooks-10k books with the most Goodreads ratings (``books.csv``
    ``ratings_count``, ties by ``book_id``). ``ratings_v1`` cannot rank them: it holds ~100 ratings for
    almost every book. Columns: external_id (goodbooks ``book_id``), title, authors, year
    (``original_publication_year`` as an int, or empty), isbn (ISBN-10 with the leading zeros that the
    CSV lost restored, empty unless the check digit is valid), description (Open Library text where the
    descriptions data set has one, with Markdown links, URLs, footnote marks, "Also contained in" lists
    and the spam "PDF" links removed; empty when there is none or it is not in English), cover_url
    (``image_url``; Goodreads' "nophoto" placeholders become empty), tags (up to 8 genre/topic tags
    joined with ``|``: Goodreads shelf names mapped through the controlled vocabulary ``BOOK_TAGS``
    below, ranked by how many readers shelved the book so; personal shelves such as "to-read",
    "owned", "favorites", "kindle" or "read-in-2015" are not in it).
``book_ratings.csv.gz``
    Real goodbooks-10k v1 ratings (user, book, stars) on those books, of readers with at least
    ``--min-ratings`` (20) ratings there; at most ``--max-readers`` (3,000) of them, picked by hash if
    more qualify. v1's duplicate (user, book) rows keep the last one.
``articles.csv.gz``
    The IBM Watson Studio community articles, deduplicated on ``article_id`` (first row kept).
    Columns: external_id, title (``doc_full_name``), summary (``doc_description``), body (``doc_body``
    with obvious navigation boilerplate dropped, trimmed to about ``BODY_CHARS`` characters at a
    sentence end), author (only where the page says "Posted on ... by NAME", "NAME | 06.29.2016",
    "NAME / July 17, 2015" or Medium's "NAME Blocked Unblock Follow"; else empty), tags (up to 4
    from the controlled vocabulary ``ARTICLE_TAGS``: a tag scores 3 per match in the title, 2 in the
    summary and 1 in the body, and needs a score of 2; "video" marks YouTube pages), published_at
    (SYNTHETIC: the data has no dates; a hash of the article id spreads them over the
    ``DATE_SPAN_DAYS`` days before ``TIME_ANCHOR``). Only articles that have text are shipped: 277
    articles of the interaction log have no text and are left out with their views.
``article_reads.csv.gz``
    The real per-reader views (user-item-interactions) on those articles: user (the first 12 hex
    characters of the pseudonymised e-mail hash), article, views (how many interaction rows that pair
    has). Rows without an e-mail hash are dropped. There are no timestamps; the loader synthesises them.
``manifest.json``
    Row counts, the time anchor, and the two real readers whose history the demo account takes over
    (a goodbooks reader with about 50 varied ratings and an IBM reader with about 20 article views).
"""
from __future__ import annotations

import argparse
import collections
import csv
import gzip
import hashlib
import io
import json
import re
import statistics
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TIME_ANCHOR = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
DATE_SPAN_DAYS = 730
BODY_CHARS = 2000
SALT = "bre-demo-v1"

# Goodreads shelf name -> tag shown on the site. Shelves not listed here are dropped: they are
# personal ("to-read", "owned", "kindle", "read-in-2015", "favorites"), about authors or series, or too rare.
BOOK_TAGS: dict[str, tuple[str, ...]] = {
    "fiction": ("fiction", "general-fiction", "novels", "novel"),
    # Combined shelves ("sci-fi-fantasy") are left out: they put "science fiction" on Harry Potter.
    "fantasy": ("fantasy", "high-fantasy", "epic-fantasy", "dark-fantasy"),
    "science fiction": ("science-fiction", "sci-fi", "scifi", "sf", "space-opera"),
    "romance": ("romance", "contemporary-romance", "historical-romance", "love", "love-stories", "adult-romance"),
    "young adult": ("young-adult", "ya", "ya-fiction", "teen", "young-adult-fiction", "ya-lit", "teen-fiction",
                    "ya-fantasy", "ya-contemporary", "ya-romance", "ya-paranormal"),
    "classics": ("classics", "classic", "classic-literature", "clàssics", "modern-classics", "1001-books",
                 "1001", "1001-books-to-read-before-you-die"),
    "contemporary": ("contemporary", "contemporary-fiction", "realistic-fiction", "realistic"),
    "mystery": ("mystery", "mysteries", "mystery-thriller", "mystery-suspense", "murder-mystery", "detective",
                "mystery-crime", "crime-mystery"),
    "thriller": ("thriller", "thrillers", "suspense", "mystery-thriller", "psychological-thriller",
                 "legal-thriller", "legal-thrillers", "crime-thriller", "horror-thriller", "espionage", "spy"),
    "crime": ("crime", "crime-fiction", "crime-thriller", "mystery-crime", "crime-mystery"),
    "horror": ("horror", "horror-thriller", "gothic", "ghosts"),
    "historical fiction": ("historical-fiction", "historical", "historical-romance"),
    "literary fiction": ("literary-fiction", "literature", "literary", "american-literature", "british-literature",
                         "american-lit", "french-literature"),
    "paranormal": ("paranormal", "supernatural", "paranormal-romance", "pnr", "urban-fantasy", "ya-paranormal"),
    "urban fantasy": ("urban-fantasy",),
    "vampires": ("vampires", "vampire", "vamps", "vampire-books"),
    "werewolves & shifters": ("werewolves", "shapeshifters", "shifters"),
    "magic": ("magic", "witches", "wizards", "magical-realism"),
    "adventure": ("adventure", "action", "action-adventure", "survival"),
    "humor": ("humor", "humour", "funny", "comedy", "satire"),
    "children": ("childrens", "children", "children-s", "kids", "children-s-books", "childrens-books",
                 "kids-books", "children-s-literature", "children-s-lit", "juvenile", "children-books",
                 "picture-books", "picture-book", "chapter-books", "kid-books", "childrens-lit",
                 "juvenile-fiction", "children-s-picture-books", "read-aloud"),
    "middle grade": ("middle-grade", "middle-school"),
    "chick lit": ("chick-lit", "chic-lit", "chicklit"),
    "new adult": ("new-adult", "na"),
    "erotica": ("erotica", "erotic-romance", "erotic", "bdsm", "steamy"),
    "dystopia": ("dystopia", "dystopian", "post-apocalyptic", "apocalyptic", "apocalypse"),
    "non-fiction": ("non-fiction", "nonfiction"),
    "biography & memoir": ("biography", "memoir", "memoirs", "biography-memoir", "memoir-biography",
                           "autobiography", "biographies", "bio"),
    "history": ("history", "american-history", "wwii", "world-war-ii", "ww2", "war", "military", "holocaust"),
    "philosophy": ("philosophy",),
    "psychology": ("psychology", "mental-illness", "mental-health"),
    "science": ("science", "nature"),
    "religion & spirituality": ("religion", "spirituality", "spiritual", "christian", "christianity", "faith",
                                "religious", "theology", "christian-fiction", "christian-books"),
    "self-help": ("self-help", "self-improvement", "personal-development", "self-development",
                  "personal-growth", "inspirational"),
    "business & economics": ("business", "economics", "leadership", "finance"),
    "politics": ("politics", "political", "sociology", "feminism"),
    "poetry": ("poetry",),
    "short stories": ("short-stories", "short-story", "essays"),
    "plays": ("plays", "play", "theatre", "theater", "drama", "shakespeare"),
    "graphic novels": ("graphic-novels", "graphic-novel", "comics", "comic", "graphic", "comics-graphic-novels",
                       "graphic-novels-comics", "comic-books", "comics-and-graphic-novels", "cómics",
                       "graphic-novels-and-comics", "manga"),
    "mythology & fairy tales": ("mythology", "fairy-tales", "fairy-tale", "retellings", "fae", "fairies",
                                "faeries"),
    "coming of age": ("coming-of-age",),
    "time travel": ("time-travel",),
    "steampunk": ("steampunk",),
    "zombies": ("zombies",),
    "angels & demons": ("angels", "demons", "angels-demons"),
    "dragons": ("dragons",),
    "aliens": ("aliens", "space"),
    "lgbt": ("lgbt", "lgbtq", "gay", "queer"),
    "family": ("family", "friendship", "relationships"),
    "animals": ("animals", "dogs", "cats"),
    "travel": ("travel",),
    "food": ("food", "cooking"),
    "music": ("music",),
    "art": ("art",),
    "western": ("western", "westerns"),
    "award winners": ("pulitzer", "pulitzer-prize", "newbery", "newbery-medal", "hugo", "booker",
                      "man-booker", "nebula"),
}
MAX_BOOK_TAGS = 8

# Controlled vocabulary for the articles: tag -> case-insensitive pattern (R alone is case-sensitive).
ARTICLE_TAGS: dict[str, str] = {
    "machine learning": r"machine[- ]learning|\bml\b|scikit|predictive model|supervised|unsupervised",
    "deep learning": r"deep[- ]learning|neural net|\bcnn\b|\brnn\b|\blstm\b|tensorflow|keras|pytorch|caffe",
    "artificial intelligence": r"artificial intelligence|\bai\b|cognitive",
    "python": r"\bpython\b|\bpandas\b|\bnumpy\b|pixiedust",
    "r": r"(?-i:\bR\b(?!['’]))|rstudio|\bshiny\b|sparklyr|\bcran\b|tidyverse|ggplot",
    "apache spark": r"\bspark\b|pyspark|\bmllib\b",
    "notebooks": r"\bnotebooks?\b|jupyter|zeppelin",
    "data visualization": r"visuali[sz]|\bcharts?\b|\bplot(?:s|ly|ting)?\b|dashboard|\bd3\b|brunel",
    "statistics": r"statistic|regression|bayes|probabilit|hypothesis|p-value",
    "natural language processing": r"natural language|\bnlp\b|text analy|sentiment|word2vec|chatbot|\btext mining",
    "iot": r"\biot\b|internet of things|sensor",
    "cloud": r"\bcloud\b|bluemix|serverless|openwhisk|kubernetes|docker",
    "databases": r"database|postgres|mongodb|redis|cassandra|couchdb|cloudant|mysql|\bsql\b|\bdb2\b|"
                 r"elasticsearch|rethinkdb|\betcd\b|rabbitmq|janusgraph|scylla|nosql",
    "watson": r"\bwatson\b",
    "big data": r"big data|hadoop|\bhdfs\b|mapreduce|\bhive\b",
    "streaming": r"streaming|\bstreams\b|kafka|message hub|real[- ]time",
    "time series": r"time[- ]series|forecast",
    "recommender systems": r"recommend(?:er|ation)",
    "data preparation": r"\betl\b|data pipeline|data wrangling|data cleaning|data preparation|data refinery|"
                        r"data integration|data munging",
    "careers": r"career|hiring|interview|\bjobs?\b|become a data scientist|data scientists? (?:need|should)",
    "security": r"security|encrypt|\bssl\b|\btls\b|fraud|privacy",
    "web development": r"\bapi\b|node\.js|javascript|web app|\bnode-red\b|\brest\b|graphql",
    "graphs": r"\bgraphs?\b(?! paper)|network analysis|neo4j|pagerank",
    "optimization": r"optimi[sz]ation|decision optimization|\bcplex\b|linear programming",
    "geospatial": r"geospatial|\bmaps?\b|\bgis\b|geolocation|location data|mapbox",
    "healthcare": r"health|medical|patient|clinical",
    "finance": r"financ|\bbank|\bstocks?\b|trading|insurance",
    "open data": r"open data|public data|data sets?\b|datasets?\b",
    "weekly roundup": r"this week in|news roundup|\bweekly\b",
    "classification & clustering": r"classif|clustering|k-means|decision trees?|random forest",
}
MAX_ARTICLE_TAGS = 4


def _unit(*parts: object) -> float:
    """Return a deterministic number in [0, 1) from the given parts."""
    digest = hashlib.blake2b("\x1f".join(map(str, (SALT, *parts))).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _read_csv(path: Path) -> list[list[str]]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def _write_csv_gz(path: Path, header: list[str], rows: list[list[object]]) -> int:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(buffer.getvalue().encode("utf-8"))
    return len(rows)


# --------------------------------------------------------------------------- books


def _isbn10(raw: str) -> str:
    """Return a valid ISBN-10 from the goodbooks value (leading zeros restored), or ''."""
    value = raw.strip().upper()
    if not re.fullmatch(r"\d{1,9}[\dX]", value):
        return ""
    value = value.zfill(10)
    total = sum((10 - i) * (10 if ch == "X" else int(ch)) for i, ch in enumerate(value))
    if "X" in value[:-1] or total % 11:
        return ""
    return value


_ENGLISH = frozenset("the and of to a in is his her he she with for that it as was on by their they from an".split())
# Frequent words of the other languages found in the descriptions (es, fr, it, de, nl, pt).
_FOREIGN = frozenset("el los las que del una di della il per est les des du et und der die das ist het een van "
                     "não uma com la e da dei delle stato".split())
_MD_LINK = re.compile(r"\[([^\[\]]*(?:\[[^\]]*\][^\[\]]*)*)\]\(((?:https?://|/)[^)\s]*)\)")


def _clean_description(text: str) -> str:
    """Return an Open Library description without links, link lists and spam."""
    text = text.replace("\r\n", "\n")
    text = re.split(r"\n\s*-{3,}\s*\n|Also contained in:|\n\s*Contains:", text)[0]
    text = re.sub(r"(?m)^\s*\[\d+\]:\s*\S+.*$", "", text)  # reference-style link definitions
    # Spam links to "PDF" copies, with the sentence fragment that announces them.
    text = re.sub(r"\(?\**\[[^\]]*\]\(https?://[^)]*chesserresources[^)]*\)\**\)?", "", text)
    text = re.sub(r"\(\[(?:source|Source)\]\[\d+\]\)|\[(?:source|Source)\]\[\d+\]", "", text)
    text = _MD_LINK.sub(lambda m: m.group(1), text)
    text = re.sub(r"\[([^\]]+)\]\[\d+\]", r"\1", text)
    text = re.sub(r"https?://\S+", "", text)
    text = re.sub(r"(?m)^\s*\(?\s*Source\b.*$", "", text)  # "Source: [1], back cover"
    text = re.sub(r"(?<=[\w.,;:)\"'])\[\d+\]", "", text)  # Wikipedia footnote marks "civilization,[16]"
    text = re.sub(r"\*\*|__", "", text)
    text = re.sub(r"\\([\\`*_{}\[\]()#+\-.!>])", r"\1", text)  # Markdown escapes: "\--first edition"
    words = re.findall(r"[a-z']+", text.lower())
    english, foreign = sum(w in _ENGLISH for w in words), sum(w in _FOREIGN for w in words)
    if len(words) >= 20 and (english < 0.10 * len(words) or foreign > english):
        return ""  # Open Library matched an edition in another language
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    return text if len(text) >= 20 else ""


def _book_tags(shelves: list[tuple[int, str]]) -> list[str]:
    shelf_to_tags: dict[str, list[str]] = collections.defaultdict(list)
    for tag, names in BOOK_TAGS.items():
        for name in names:
            shelf_to_tags[name].append(tag)
    scores: collections.Counter[str] = collections.Counter()
    for count, shelf in shelves:
        for tag in shelf_to_tags.get(shelf, ()):
            scores[tag] += count
    order = list(BOOK_TAGS)
    ranked = sorted(scores, key=lambda t: (-scores[t], order.index(t)))
    # A tag needs at least 4% of the book's best tag's readers, so one odd shelf does not count.
    return [t for t in ranked if scores[t] * 25 >= scores[ranked[0]]][:MAX_BOOK_TAGS] if ranked else []


def build_books(source: Path, n_books: int) -> tuple[list[list[object]], dict[str, list[str]]]:
    gb = source / "goodbooks-10k"
    rows = _read_csv(gb / "books.csv")
    header, records = rows[0], [dict(zip(rows[0], r)) for r in rows[1:]]
    assert "book_id" in header and "ratings_count" in header, header
    records.sort(key=lambda b: (-int(b["ratings_count"]), int(b["book_id"])))
    chosen = records[:n_books]
    by_goodreads = {b["goodreads_book_id"]: b for b in chosen}

    tag_names = {r[0]: r[1] for r in _read_csv(gb / "tags.csv")[1:]}
    shelves: dict[str, list[tuple[int, str]]] = collections.defaultdict(list)
    for goodreads_id, tag_id, count in _read_csv(gb / "book_tags.csv.gz")[1:]:
        if goodreads_id in by_goodreads:
            shelves[goodreads_id].append((int(count), tag_names[tag_id]))

    descriptions: dict[str, str] = {}
    desc_path = source / "goodbooks-10k-descriptions-openlibrary" / "book_descriptions.csv.gz"
    if desc_path.exists():
        for book_id, text in _read_csv(desc_path)[1:]:
            descriptions[book_id] = _clean_description(text)
    else:
        print(f"warning: {desc_path} not found, books get no descriptions", file=sys.stderr)

    out, tags_of = [], {}
    for b in sorted(chosen, key=lambda b: int(b["book_id"])):
        year = b["original_publication_year"].strip()
        cover = b["image_url"].strip()
        if "nophoto" in cover or not cover.startswith("http"):
            cover = ""
        authors = b["authors"].strip()
        if len(authors) > 500:  # Book.authors max_length
            authors = authors[:490].rsplit(",", 1)[0] + ", et al."
        tags = _book_tags(shelves[b["goodreads_book_id"]])
        tags_of[b["book_id"]] = tags
        out.append([
            b["book_id"], b["title"].strip()[:300], authors, str(int(float(year))) if year else "",
            _isbn10(b["isbn"]), descriptions.get(b["book_id"], ""), cover, "|".join(tags),
        ])
    return out, tags_of


def build_book_ratings(source: Path, book_ids: set[str], min_ratings: int, max_readers: int) -> list[list[object]]:
    rows = _read_csv(source / "goodbooks-10k" / "ratings_v1.csv.gz")
    assert rows[0] == ["book_id", "user_id", "rating"], rows[0]
    last: dict[tuple[str, str], str] = {}
    for book_id, user_id, rating in rows[1:]:
        if book_id in book_ids:
            last[(user_id, book_id)] = rating  # v1 has duplicate pairs: the last one wins
    per_user = collections.Counter(user for user, _ in last)
    eligible = sorted((u for u, n in per_user.items() if n >= min_ratings), key=int)
    if len(eligible) > max_readers:
        eligible = sorted(eligible, key=lambda u: _unit("reader", u))[:max_readers]
    keep = set(eligible)
    return sorted(
        ([u, b, int(s)] for (u, b), s in last.items() if u in keep), key=lambda r: (int(r[0]), int(r[1]))
    )


# --------------------------------------------------------------------------- articles

_BOILERPLATE = re.compile(
    r"Share on Twitter Share on Facebook Share on Google\+ Vote on Hacker News( Subscribe)?|"
    r"Published (?:on )?[A-Z][a-z]{2} \d{1,2}, \d{4}|Skip to (?:main )?content|Jump to navigation|"
    r"Blocked Unblock Follow Following|Loading\.\.\.|Sign in / Sign up|Homepage|"
    # Site chrome of the most frequent sources (developerWorks, the BDU blog, Medium, KDnuggets).
    r"IBM developerWorks / Developer Centers Sign In \| Register Cloud Data Services(?: \* [\w-]+)* \* Connect|"
    r"CONNECT ON FACEBOOK\s+Connect on Facebook\s*FOLLOW US ON TWITTER\s*My Tweets(?:BLOGROLL)?|"
    r"Never miss a story from [^,\n]{1,80}, when you sign up for Medium\. Learn more|"
    r"Never miss a story from [^\n]{1,80}?Get updates Get updates|"
    r"KDnuggets Home »(?: [\w ,]+ »)+"
)
# Scraper error pages instead of the article: the body is dropped.
_ERROR_PAGE = re.compile(r"ACCESS DENIED|403 Forbidden|404 Not Found|Page not found|Access to this page", re.I)
_NAV_WORDS = re.compile(
    r"sign in|sign up|log ?in|subscribe|rss|cookie|privacy|terms of use|follow us|share on|"
    r"all rights reserved|skip navigation|newsletter|javascript|comments|menu|search",
    re.I,
)

# Blog side bars ("RECENT POSTS * ...") and Medium's author bio line ("... 6 hrs ago 10 min read -----").
_CHROME = re.compile(
    r"^(?:RECENT POSTS|RELATED POSTS|POPULAR POSTS|CATEGORIES|ARCHIVES|TAGS|SHARE THIS)\b|\b\d+ min read\b|"
    r"\b\d+ (?:hrs?|days?|mins?) ago\b|-{10,}"
)


def _youtube_text(text: str) -> str:
    match = re.search(r"Published on [A-Z][a-z]{2} \d{1,2}, \d{4}", text)
    if not match:
        return ""
    rest = text[match.end():]
    end = re.search(r"Show more Show less|\* CATEGORY|Loading\.\.\.|Autoplay When", rest)
    return rest[: end.start()] if end else rest


def _clean_body(body: str) -> tuple[str, bool]:
    """Return (body without navigation, trimmed to ~BODY_CHARS; is a YouTube page)."""
    text = body.replace("\r\n", "\n").replace("\r", "\n")
    if _ERROR_PAGE.search(text[:300]):
        return "", False
    is_video = text.lstrip().startswith("Skip navigation") or "THIS VIDEO IS UNAVAILABLE" in text[:400]
    if is_video:
        text = _youtube_text(text)
    text = _BOILERPLATE.sub("\n\n", text)
    kept: list[str] = []
    started = False
    for para in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in para.split("\n") if ln.strip()]
        if not lines:
            continue
        bullets = sum(ln.startswith("*") for ln in lines)
        joined = re.sub(r"\s+", " ", " ".join(lines)).strip(" *")
        words = joined.split()
        if bullets and bullets >= len(lines) / 2 and len(words) / max(bullets, 1) < 6:
            continue  # a menu: mostly short bullet items
        items = re.split(r"\s\*\s", joined)
        if len(items) >= 4 and len(words) / len(items) < 8:
            # A menu on one line ("CONTENTS * Get Started * ..."); scraped pages often glue the
            # article's text to one of its items: keep the longest item if it is long enough.
            longest = max(items, key=lambda item: len(item.split()))
            if len(longest.split()) < 20:
                continue
            joined, words = longest, longest.split()
        if len(words) < 6 and not re.search(r"[.!?:]$", joined):
            continue  # a heading, a button, a date line
        if _NAV_WORDS.search(joined) and len(words) < 25:
            continue
        if re.fullmatch(r"[-=_*\s]+", joined) or _CHROME.search(joined) or "document.write(" in joined:
            continue
        if not started and len(words) < 12:
            continue  # before the first real paragraph everything short is chrome
        started = True
        kept.append(joined)
        if sum(len(p) for p in kept) > BODY_CHARS:
            break
    out = "\n\n".join(kept)
    if len(out) > BODY_CHARS:
        cut = out[:BODY_CHARS]
        sentence_end = max(cut.rfind(". "), cut.rfind(".\n"), cut.rfind("? "), cut.rfind("! "))
        out = cut[: sentence_end + 1] if sentence_end > BODY_CHARS // 2 else cut.rsplit(" ", 1)[0] + " …"
    return out.strip(), is_video


_AUTHOR_PATTERNS = (
    re.compile(r"Posted (?:on [A-Z][a-z]+ \d{1,2}, \d{4} )?by ([A-Z][\w'.-]+(?: [A-Z][\w'.-]+){1,2})"),
    re.compile(r"(?:^|\n)\s*(?:\* )?([A-Z][\w'.-]+(?: [A-Z][\w'.-]+){1,2}) Blocked Unblock Follow"),
    re.compile(r"(?:^|\n)([A-Z][a-z]+(?: [A-Z][a-z]+){1,2}) \| \d{2}\.\d{2}\.\d{4}"),
    re.compile(r"([A-Z][a-z]+(?: [A-Z][a-z]+){1,2}) / (?:January|February|March|April|May|June|July|August|"
               r"September|October|November|December) \d{1,2}, \d{4}"),
)


def _author(body: str) -> str:
    head = body[:5000]
    for pattern in _AUTHOR_PATTERNS:
        match = pattern.search(head)
        if match:
            return match.group(1).strip()
    return ""


_ARTICLE_TAG_RE = {tag: re.compile(pattern, re.I) for tag, pattern in ARTICLE_TAGS.items()}


def _article_tags(title: str, summary: str, body: str, is_video: bool) -> list[str]:
    scores: collections.Counter[str] = collections.Counter()
    for tag, pattern in _ARTICLE_TAG_RE.items():
        score = 3 * len(pattern.findall(title)) + 2 * len(pattern.findall(summary)) + len(pattern.findall(body))
        if score >= 2:
            scores[tag] = score
    order = list(ARTICLE_TAGS)
    tags = sorted(scores, key=lambda t: (-scores[t], order.index(t)))[: MAX_ARTICLE_TAGS - is_video]
    if is_video:
        tags.append("video")
    return tags


def build_articles(source: Path) -> list[list[object]]:
    rows = _read_csv(source / "ibm-watson-community-articles" / "articles_community.csv.gz")
    header = rows[0]
    assert header[1:] == ["doc_body", "doc_description", "doc_full_name", "doc_status", "article_id"], header
    seen: set[str] = set()
    out = []
    for _, body, description, title, _status, article_id in rows[1:]:
        if article_id in seen:
            continue
        seen.add(article_id)
        summary = re.sub(r"\s+", " ", description).strip()
        title = re.sub(r"\s+", " ", title).strip()[:300]
        text, is_video = _clean_body(body)
        tags = _article_tags(title, summary, text, is_video)
        offset = timedelta(days=DATE_SPAN_DAYS * _unit("published", article_id))
        published = (TIME_ANCHOR - offset).replace(microsecond=0)
        out.append([article_id, title, summary, text, _author(body), "|".join(tags), published.isoformat()])
    out.sort(key=lambda r: int(r[0]))
    return out


def build_article_reads(source: Path, article_ids: set[str]) -> list[list[object]]:
    rows = _read_csv(source / "ibm-watson-community-articles" / "user-item-interactions.csv.gz")
    assert rows[0][1:] == ["article_id", "title", "email"], rows[0]
    views: collections.Counter[tuple[str, str]] = collections.Counter()
    short_of: dict[str, str] = {}
    for _, article_id, _title, email in rows[1:]:
        article = str(int(float(article_id)))
        email = email.strip()
        if not email or article not in article_ids:
            continue
        short = email[:12]
        if short_of.setdefault(short, email) != email:
            raise SystemExit(f"two e-mail hashes share the prefix {short}; use a longer prefix")
        views[(short, article)] += 1
    return sorted(([u, a, n] for (u, a), n in views.items()), key=lambda r: (r[0], int(r[1])))


# --------------------------------------------------------------------------- demo readers


def pick_demo_readers(
    ratings: list[list[object]], tags_of: dict[str, list[str]], reads: list[list[object]],
    articles: list[list[object]],
) -> dict[str, str]:
    """Pick the real readers whose history the demo account takes over (see the module docstring)."""
    by_user: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for user, book, stars in ratings:
        by_user[str(user)].append((str(book), int(stars)))

    def book_score(user: str) -> tuple[float, ...]:
        items = by_user[user]
        stars = [s for _, s in items]
        genres = {t for b, _ in items for t in tags_of[b][:3]}
        return (len(set(stars)), len(genres) + 5 * statistics.pstdev(stars), -_unit("demo", user))

    candidates = [u for u, items in by_user.items() if 45 <= len(items) <= 55]
    gb_user = max(candidates, key=book_score)

    article_tags = {str(a[0]): str(a[5]).split("|") for a in articles}
    per_reader: dict[str, list[tuple[str, int]]] = collections.defaultdict(list)
    for user, article, n in reads:
        per_reader[str(user)].append((str(article), int(n)))
    ibm_candidates = [u for u, items in per_reader.items() if 18 <= len(items) <= 22]
    ibm_user = max(
        ibm_candidates,
        key=lambda u: (len({t for a, _ in per_reader[u] for t in article_tags[a] if t}), -_unit("demo", u)),
    )
    return {"goodbooks_user": gb_user, "ibm_user": ibm_user}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=REPO_ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "articles" / "demo_data")
    parser.add_argument("--n-books", type=int, default=2000)
    parser.add_argument("--min-ratings", type=int, default=20)
    parser.add_argument("--max-readers", type=int, default=3000)
    args = parser.parse_args(argv)
    csv.field_size_limit(2**31 - 1)
    args.out.mkdir(parents=True, exist_ok=True)

    books, tags_of = build_books(args.source, args.n_books)
    ratings = build_book_ratings(args.source, {str(b[0]) for b in books}, args.min_ratings, args.max_readers)
    articles = build_articles(args.source)
    reads = build_article_reads(args.source, {str(a[0]) for a in articles})
    demo = pick_demo_readers(ratings, tags_of, reads, articles)

    counts = {
        "books": _write_csv_gz(args.out / "books.csv.gz",
                               ["external_id", "title", "authors", "year", "isbn", "description", "cover_url",
                                "tags"], books),
        "book_ratings": _write_csv_gz(args.out / "book_ratings.csv.gz", ["user", "book", "stars"], ratings),
        "articles": _write_csv_gz(args.out / "articles.csv.gz",
                                  ["external_id", "title", "summary", "body", "author", "tags", "published_at"],
                                  articles),
        "article_reads": _write_csv_gz(args.out / "article_reads.csv.gz", ["user", "article", "views"], reads),
    }
    manifest = {
        "generated_by": "scripts/make_demo_data.py",
        "time_anchor": TIME_ANCHOR.isoformat(),
        "counts": counts,
        "book_readers": len({r[0] for r in ratings}),
        "article_readers": len({r[0] for r in reads}),
        "article_views": sum(int(r[2]) for r in reads),
        "demo": demo,
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(json.dumps(manifest, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
