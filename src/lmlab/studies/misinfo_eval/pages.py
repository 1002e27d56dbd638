"""The web app's pages: plain HTML and one script, no build step.

Every dynamic text (headlines, sources, interventions) is inserted with ``textContent``; the only
server-side values in the HTML are the demographic choices, escaped.
"""

from __future__ import annotations

from html import escape

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem;
       color: #1c1e21; background: #f0f2f5; }
.card { background: #fff; border-radius: 8px; padding: 1rem; margin: 1rem 0;
        box-shadow: 0 1px 2px rgba(0,0,0,.2); }
.source { color: #65676b; font-size: .85rem; }
.headline { font-weight: 600; font-size: 1.1rem; margin: .4rem 0; }
.note { background: #fff8e1; border-left: 4px solid #f9a825; padding: .5rem; margin: .5rem 0;
        white-space: pre-line; }
.post img { max-width: 100%; border-radius: 4px; }
.done { opacity: .6; }
button { font-size: 1rem; padding: .4rem 1rem; }
label { margin-right: 1rem; }
.error { color: #b00020; }
"""


def page(body: str) -> str:
    """A complete page around `body`."""
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<title>News feed study</title><link rel=\"stylesheet\" href=\"/static/style.css\">"
        f"</head><body>{body}"
        "<p id=\"error\" class=\"error\" role=\"alert\"></p>"
        "<script src=\"/static/app.js\"></script></body></html>"
    )


CONSENT = """
<div class="card" id="consent">
<h1>News feed study</h1>
<p>You will see five posts from a social media feed and say whether each headline is reliable.
Some posts come with a note. It takes about five minutes. We record your answers and the
demographic details you give; nothing that identifies you by name. You may stop at any time.</p>
<label><input type="checkbox" id="agree"> I agree to take part.</label>
<p><button id="start" disabled>Start</button></p>
</div>
"""

DONE = """
<div class="card" id="finished"><h1>Thank you</h1><p>Your answers are saved. You may close this page.</p></div>
"""

FEED = """
<h1>Your feed</h1>
<p>For each post, say whether you think the headline is reliable, and whether you would share it.</p>
<div id="posts"></div>
<p><a id="finish" href="/done" hidden>Finish</a></p>
"""


def demographics_form(choices: dict[str, tuple[str, ...]]) -> str:
    """The demographics form, one select per attribute."""
    labels = {"politics": "Political views", "race": "Race or ethnicity",
              "education": "Education", "gender": "Gender", "age": "Age"}
    fields = []
    for attr, opts in choices.items():
        options = "".join(f'<option value="{escape(o)}">{escape(o)}</option>' for o in opts)
        fields.append(f'<p><label for="{attr}">{labels.get(attr, attr)}</label>'
                      f'<select id="{attr}" name="{attr}" required>'
                      f'<option value="">choose...</option>{options}</select></p>')
    return ('<div class="card"><h1>About you</h1><form id="demographics">'
            + "".join(fields) + '<button type="submit" id="continue">Continue</button></form></div>')


SCRIPT = r"""
"use strict";
const err = (msg) => { document.getElementById("error").textContent = msg || ""; };

async function post(url, body) {
  const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                              body: JSON.stringify(body), credentials: "same-origin"});
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { throw new Error(data.detail || ("HTTP " + r.status)); }
  return data;
}

function newKey() {
  const a = new Uint8Array(16);
  crypto.getRandomValues(a);
  return Array.from(a, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function me() {
  const r = await fetch("/api/me", {credentials: "same-origin"});
  return r.ok ? r.json() : null;
}

function initConsent() {
  const box = document.getElementById("agree"), start = document.getElementById("start");
  box.addEventListener("change", () => { start.disabled = !box.checked; });
  start.addEventListener("click", async () => {
    try {
      const d = await post("/api/consent", {agree: true});
      sessionStorage.setItem("pid", d.participant_id);
      location.href = "/demographics";
    } catch (e) { err(e.message); }
  });
}

function initDemographics() {
  const form = document.getElementById("demographics");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const who = await me();
    if (!who) { location.href = "/"; return; }
    const body = {participant_id: who.participant_id};
    for (const el of form.querySelectorAll("select")) { body[el.name] = el.value; }
    try { await post("/api/demographics", body); location.href = "/feed"; }
    catch (e) { err(e.message); }
  });
}

function renderPost(p, pid, answered) {
  const card = document.createElement("div");
  card.className = "card post";
  card.id = "post-" + p.position;
  const src = document.createElement("div");
  src.className = "source";
  src.textContent = p.source + " \u00b7 " + p.time + "h";
  const h = document.createElement("div");
  h.className = "headline";
  h.textContent = p.headline;
  card.append(src, h);
  if (p.image_url) {
    const img = document.createElement("img");
    img.alt = "";
    img.referrerPolicy = "no-referrer";
    img.addEventListener("error", () => img.remove());
    img.src = p.image_url;
    card.append(img);
  }
  if (p.intervention) {
    const note = document.createElement("div");
    note.className = "note";
    note.textContent = p.intervention;
    card.append(note);
  }
  const q = document.createElement("div");
  const name = "rel-" + p.position, share = "share-" + p.position;
  q.innerHTML = "<p>Is this headline reliable? " +
    "<label><input type='radio' name='" + name + "' value='1'> Reliable</label>" +
    "<label><input type='radio' name='" + name + "' value='0'> Not reliable</label></p>" +
    "<p>Would you share it? " +
    "<label><input type='radio' name='" + share + "' value='1'> Yes</label>" +
    "<label><input type='radio' name='" + share + "' value='0'> No</label></p>";
  const btn = document.createElement("button");
  btn.textContent = "Submit";
  btn.className = "submit";
  q.append(btn);
  card.append(q);
  const shownAt = new Date().toISOString();
  const finish = () => {
    card.classList.add("done");
    for (const el of card.querySelectorAll("input, button")) { el.disabled = true; }
    btn.textContent = "Saved";
    answered.add(p.position);
    if (answered.size === 5) { document.getElementById("finish").hidden = false; }
  };
  if (answered.has(p.position)) { finish(); }
  btn.addEventListener("click", async () => {
    const rel = card.querySelector("input[name='" + name + "']:checked");
    const sh = card.querySelector("input[name='" + share + "']:checked");
    if (!rel) { err("Please say whether the headline is reliable."); return; }
    const store = "key-" + pid + "-" + p.position;
    const key = localStorage.getItem(store) || newKey();
    localStorage.setItem(store, key);  // a retry after a lost answer reuses the same key
    btn.disabled = true;
    try {
      await post("/api/responses", {participant_id: pid, position: p.position, post_id: p.post_id,
        reliable: rel.value === "1", share: sh ? sh.value === "1" : null,
        submission_key: key, shown_at: shownAt});
      err("");
      finish();
    } catch (e) { btn.disabled = false; err(e.message); }
  });
  return card;
}

async function initFeed() {
  const r = await fetch("/api/feed", {credentials: "same-origin"});
  if (r.status === 401) { location.href = "/"; return; }
  if (r.status === 409) { location.href = "/demographics"; return; }
  const d = await r.json();
  const answered = new Set(d.answered);
  const box = document.getElementById("posts");
  for (const p of d.posts) { box.append(renderPost(p, d.participant_id, answered)); }
  if (answered.size === 5) { document.getElementById("finish").hidden = false; }
}

if (document.getElementById("consent")) { initConsent(); }
if (document.getElementById("demographics")) { initDemographics(); }
if (document.getElementById("posts")) { initFeed(); }
"""
