// The chat page of `qa serve`. Everything that comes from an article (titles, quotes, bodies,
// paths) is put into the page as text (textContent), never as markup: a hostile article shows
// its <script> as characters. Bidi controls are shown as visible marks for the same reason.
"use strict";

const $ = (selector) => document.querySelector(selector);
let conversation = null;
let token = sessionStorage.getItem("qa-token") || "";

// U+202A-U+202E, U+2066-U+2069 and U+200E/F reorder what follows them: shown, not obeyed
const BIDI = /[\u202A-\u202E\u2066-\u2069\u200E\u200F]/g;
function inert(text) {
  return String(text ?? "").replace(BIDI, (c) => `<U+${c.codePointAt(0).toString(16).toUpperCase()}>`);
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = inert(text);
  return node;
}

async function call(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method, headers, body: body ? JSON.stringify(body) : undefined });
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (response.status === 401) {
    $("#token-bar").hidden = false;
  }
  if (!response.ok) throw new Error(data.error || `HTTP ${response.status}`);
  return data;
}

function confidenceClass(words) {
  return words.startsWith("high") ? "confidence high" : words.startsWith("low") ? "confidence low" : "confidence";
}

function citationLabel(citation) {
  const date = citation.published ? ` (${String(citation.published).slice(0, 10)})` : "";
  return `${citation.title || citation.path}${date}`;
}

function citationList(citations, first) {
  const list = element("ol", "citations");
  list.start = first;
  for (const citation of citations) {
    const item = element("li");
    const open = element("button", "", citationLabel(citation));
    open.type = "button";
    open.title = inert(citation.path);
    open.addEventListener("click", () => showArticle(citation));
    item.append(open);
    list.append(item);
  }
  return list;
}

function answerCard(answer, first) {
  const card = element("div", "answer");
  const quote = element("p", "quote");
  const start = answer.span && answer.span_start !== null ? answer.span_start : null;
  if (start === null) {
    quote.append(element("span", "", answer.text));
  } else {
    quote.append(element("span", "", answer.text.slice(0, start)));
    quote.append(element("mark", "", answer.span));
    quote.append(element("span", "", answer.text.slice(start + answer.span.length)));
  }
  card.append(quote, element("div", confidenceClass(answer.confidence_words), answer.confidence_words));
  card.append(citationList(answer.citations, first));
  return card;
}

function showTurn(question, result) {
  const turn = element("div", "turn");
  turn.append(element("div", "asked", question));
  if (result.query && result.query !== result.question) {
    turn.append(element("div", "searched", `searched: ${result.query}`));
  }
  if (result.not_found) {
    const box = element("div", "answer notfound");
    box.append(element("p", "", result.not_found_message || "Not found in the corpus."));
    if (result.related && result.related.length) {
      box.append(element("div", "muted", "Closest passages:"));
      box.append(citationList(result.related, 1));
    }
    turn.append(box);
  } else {
    let first = 1;
    for (const answer of result.answers) {
      turn.append(answerCard(answer, first));
      first += answer.citations.length;
    }
  }
  $("#chat").append(turn);
  turn.scrollIntoView({ block: "end" });
}

function showError(question, message) {
  const turn = element("div", "turn");
  turn.append(element("div", "asked", question), element("p", "error", message));
  $("#chat").append(turn);
}

async function showArticle(citation) {
  let article;
  try {
    article = await call("GET", `/articles/${encodeURIComponent(citation.article_id)}`);
  } catch (error) {
    showError(citationLabel(citation), error.message);
    return;
  }
  $("#viewer-title").textContent = inert(article.title || article.path);
  const meta = [article.published, article.source, article.byline, article.path].filter(Boolean);
  $("#viewer-meta").textContent = inert(meta.join(" · "));
  const body = $("#viewer-body");
  body.replaceChildren(
    element("span", "", article.body.slice(0, citation.char_start)),
    element("mark", "", article.body.slice(citation.char_start, citation.char_end)),
    element("span", "", article.body.slice(citation.char_end)),
  );
  $("#viewer").hidden = false;
  body.querySelector("mark").scrollIntoView({ block: "center" });
}

async function ask(event) {
  event.preventDefault();
  const form = event.target;
  const question = form.question.value.trim();
  if (!question) return;
  const request = { question };
  for (const name of ["since", "until", "source"]) {
    if (form[name].value.trim()) request[name] = form[name].value.trim();
  }
  if (conversation) request.conversation = conversation;
  form.question.value = "";
  try {
    const result = await call("POST", "/ask", request);
    conversation = result.conversation;
    showTurn(question, result);
  } catch (error) {
    showError(question, error.message);
    if (String(error.message).startsWith("no conversation")) conversation = null;
  }
}

async function showStatus() {
  try {
    const status = await call("GET", "/status");
    $("#status").textContent = inert(`${status.articles.toLocaleString()} articles in ${status.index}`);
  } catch (error) {
    $("#status").textContent = inert(error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#ask").addEventListener("submit", ask);
  $("#new-chat").addEventListener("click", () => {
    conversation = null;
    $("#chat").replaceChildren();
  });
  $("#viewer-close").addEventListener("click", () => ($("#viewer").hidden = true));
  $("#token-save").addEventListener("click", () => {
    token = $("#token").value.trim();
    sessionStorage.setItem("qa-token", token);
    $("#token-bar").hidden = true;
    showStatus();
  });
  showStatus();
  $("#question").focus();
});
