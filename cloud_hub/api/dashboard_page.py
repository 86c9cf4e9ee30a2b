"""The dashboard page: one self-contained HTML document (inline CSS and JS, no external assets).

It holds no data.  It asks for the operator token (kept in sessionStorage,
gone when the tab closes), fetches `/v1/dashboard` with it every few seconds,
and draws one table per practice.  Everything from the hub is put in the page
with `textContent`, never as HTML.
"""

from typing import Final

REFRESH_S: Final = 5

PAGE: Final = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>chartsync hub — dashboard</title>
<style>
  :root { --red:#c62828; --amber:#b26a00; --green:#2e7d32; --grey:#6b7280;
          --bg:#f7f7f5; --ink:#1f2328; --line:#d8dbe0; }
  * { box-sizing: border-box; }
  body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", "Hiragino Sans",
         "Noto Sans JP", sans-serif; color:var(--ink); background:var(--bg); }
  header { display:flex; align-items:center; gap:16px; padding:12px 20px;
           background:#fff; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  #updated { color:var(--grey); font-size:13px; margin-left:auto; }
  main { padding:16px 20px; max-width:1500px; }
  #login { max-width:460px; margin:60px auto; background:#fff; padding:24px;
           border:1px solid var(--line); border-radius:8px; }
  #login input { width:100%; padding:8px; font:inherit; margin:8px 0 12px; }
  button { font:inherit; padding:6px 14px; cursor:pointer; }
  .error { color:var(--red); font-weight:600; }
  section.practice { background:#fff; border:1px solid var(--line); border-radius:8px;
                     margin-bottom:20px; overflow:hidden; }
  section.practice h2 { font-size:16px; margin:0; padding:10px 14px; display:flex;
                        gap:12px; align-items:center; border-bottom:1px solid var(--line); }
  .meta { color:var(--grey); font-weight:400; font-size:13px; }
  .banner { padding:10px 14px; font-weight:700; color:#fff; background:var(--red); }
  table { border-collapse:collapse; width:100%; }
  th, td { text-align:left; padding:7px 10px; border-bottom:1px solid var(--line);
           vertical-align:top; font-size:14px; }
  th { background:#fafafa; font-weight:600; font-size:12px; color:#444;
       text-transform:uppercase; letter-spacing:.03em; }
  td.num { text-align:right; font-variant-numeric:tabular-nums; }
  .chip { display:inline-block; min-width:64px; text-align:center; padding:2px 8px;
          border-radius:12px; color:#fff; font-weight:700; font-size:12px; }
  .chip.red { background:var(--red); } .chip.amber { background:var(--amber); }
  .chip.green { background:var(--green); } .chip.grey { background:var(--grey); }
  tr.red td:first-child { box-shadow: inset 4px 0 var(--red); }
  tr.amber td:first-child { box-shadow: inset 4px 0 var(--amber); }
  tr.green td:first-child { box-shadow: inset 4px 0 var(--green); }
  ul.reasons { margin:0; padding-left:18px; }
  ul.reasons li.red { color:var(--red); font-weight:600; }
  ul.reasons li.amber { color:var(--amber); }
  .small { font-size:12px; color:var(--grey); }
  details { padding:8px 14px; font-size:13px; color:#444; }
</style>
</head>
<body>
<header>
  <h1>chartsync hub — sites at a glance</h1>
  <span id="updated"></span>
  <button id="logout" hidden>Forget token</button>
</header>
<main>
  <form id="login" hidden>
    <label for="token"><strong>Operator token</strong></label>
    <div class="small">Starts with <code>cso_</code>. Kept in this tab only (sessionStorage).</div>
    <input id="token" type="password" autocomplete="off" spellcheck="false">
    <button type="submit">Show dashboard</button>
    <p id="login-error" class="error"></p>
  </form>
  <p id="fetch-error" class="error"></p>
  <div id="practices"></div>
</main>
<script>
"use strict";
const KEY = "chartsync.operatorToken";
const REFRESH_MS = __REFRESH_S__ * 1000;
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}
function clock(ms) {
  return new Date(ms).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}
function ago(ms, now) {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, (now - ms) / 1000);
  if (s < 90) return Math.round(s) + " s ago";
  if (s < 5400) return Math.round(s / 60) + " min ago";
  if (s < 172800) return (s / 3600).toFixed(1) + " h ago";
  return Math.round(s / 86400) + " days ago";
}
function dur(s) {
  if (s === null || s === undefined) return "\\u2013";
  if (s < 90) return Math.round(s) + " s";
  if (s < 5400) return Math.round(s / 60) + " min";
  return (s / 3600).toFixed(1) + " h";
}
function reasonText(r) { return r.text.replace("{time}", r.at_ms ? clock(r.at_ms) : "?"); }
function dash(v) { return v === null || v === undefined ? "\\u2013" : v; }
const LABEL = {red: "ACTION", amber: "WATCH", green: "OK", grey: "REVOKED"};

function siteRow(site, now) {
  const reasons = el("ul", {class: "reasons"});
  for (const r of site.reasons) {
    reasons.append(el("li", {class: r.level}, site.name + ": " + reasonText(r)));
  }
  const refused = Object.entries(site.rejections).map(([c, n]) => c + " \\u00d7" + n).join(", ");
  const flags = [];
  if (site.held_batches) flags.push("held " + site.held_batches);
  if (site.dead_letters) flags.push("dead letters " + site.dead_letters);
  if (site.gaps) flags.push("gaps " + site.gaps);
  if (site.upgrade_needed) flags.push("upgrade");
  if (site.guard_held) flags.push("guard");
  return el("tr", {class: site.state, "data-site": site.site_id, "data-state": site.state},
    el("td", {}, el("span", {class: "chip " + site.state}, LABEL[site.state])),
    el("td", {}, el("strong", {}, site.name), el("div", {class: "small"}, site.status)),
    el("td", {}, reasons),
    el("td", {}, ago(site.last_seen_ms, now)),
    el("td", {class: "num"}, dash(site.cursor)),
    el("td", {class: "num"}, dash(site.lag_batches),
       el("div", {class: "small"}, dur(site.lag_s))),
    el("td", {class: "num"}, dash(site.outbox_depth),
       el("div", {class: "small"}, dur(site.oldest_unpushed_age_s))),
    el("td", {class: "num"}, site.concurrent_edits),
    el("td", {}, refused || "\\u2013"),
    el("td", {}, flags.join(", ") || "\\u2013"),
    el("td", {class: "small"}, (site.software_version || "\\u2013") + " / " +
       (site.protocol_version || "\\u2013") +
       (site.clock_offset_ms === null ? "" : " / clock " + site.clock_offset_ms + " ms")));
}

function practiceSection(p, now) {
  const names = {};
  for (const s of p.sites) names[s.site_id] = s.name;
  const sec = el("section", {class: "practice", "data-practice": p.practice_id,
                             "data-state": p.state},
    el("h2", {}, el("span", {class: "chip " + p.state}, LABEL[p.state]), p.name,
       el("span", {class: "meta"}, "hub position " + p.head +
          (p.trimmed_through ? " · trimmed through " + p.trimmed_through : ""))));
  for (const a of p.agreement) {
    if (a.agree) continue;
    const parts = a.groups.map(g => g.site_ids.map(id => names[id] || id).join(", ") +
                               " (" + g.state_digest.slice(0, 8) + ")");
    sec.append(el("div", {class: "banner", "data-disagree": a.cursor},
      "Sites at hub position " + a.cursor + " disagree: " + parts.join(" ≠ ") +
      ". Their charts differ although they applied the same batches."));
  }
  const head = el("tr", {});
  for (const h of ["State", "Site", "Why", "Last seen", "Cursor", "Behind (batches / age)",
                   "Waiting (changes / oldest)", "Concurrent edits", "Refused pushes",
                   "Flags", "Version / protocol"]) head.append(el("th", {}, h));
  const body = el("tbody", {});
  for (const s of p.sites) body.append(siteRow(s, now));
  sec.append(el("table", {}, el("thead", {}, head), body));
  const agreeing = p.agreement.filter(a => a.agree)
    .map(a => "position " + a.cursor + ": " + a.groups[0].site_ids.length + " sites agree");
  if (agreeing.length) sec.append(el("details", {}, el("summary", {}, "Agreement"),
                                     agreeing.join("; ")));
  return sec;
}

function render(data) {
  const now = data.generated_ms;
  const root = document.getElementById("practices");
  root.replaceChildren(...data.practices.map(p => practiceSection(p, now)));
  if (!data.practices.length) root.append(el("p", {}, "No practices on this hub yet."));
  document.getElementById("updated").textContent = "updated " + clock(Date.now());
}

async function refresh() {
  const token = sessionStorage.getItem(KEY);
  if (!token) return showLogin("");
  let resp;
  try {
    resp = await fetch("/v1/dashboard", {headers: {Authorization: "Bearer " + token},
                                         cache: "no-store"});
  } catch (e) {
    document.getElementById("fetch-error").textContent =
      "Cannot reach the hub (" + e.message + "); retrying.";
    return schedule();
  }
  if (resp.status === 401 || resp.status === 403) {
    sessionStorage.removeItem(KEY);
    return showLogin("That token is not an operator token of this hub.");
  }
  if (!resp.ok) {
    document.getElementById("fetch-error").textContent =
      "The hub answered " + resp.status + "; retrying.";
    return schedule();
  }
  document.getElementById("fetch-error").textContent = "";
  document.getElementById("login").hidden = true;
  document.getElementById("logout").hidden = false;
  render(await resp.json());
  schedule();
}
function schedule() { clearTimeout(timer); timer = setTimeout(refresh, REFRESH_MS); }
function showLogin(message) {
  clearTimeout(timer);
  document.getElementById("practices").replaceChildren();
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
  document.getElementById("login-error").textContent = message;
  document.getElementById("token").focus();
}
document.getElementById("login").addEventListener("submit", ev => {
  ev.preventDefault();
  const token = document.getElementById("token").value.trim();
  if (!token) return;
  sessionStorage.setItem(KEY, token);
  document.getElementById("token").value = "";
  refresh();
});
document.getElementById("logout").addEventListener("click", () => {
  sessionStorage.removeItem(KEY);
  showLogin("");
});
refresh();
</script>
</body>
</html>
""".replace("__REFRESH_S__", str(REFRESH_S))
