"""GET /status.html: the sync status in plain words for clinic staff.

One self-contained page (no external scripts, styles or fonts; nothing leaves
the LAN).  It holds no data itself, so it is served without a token; it asks
for a staff token once (kept in sessionStorage, gone when the tab closes),
fetches `GET /status` with it every 2 seconds and says: online/offline and
since when, how many changes wait to be sent, last send/receive, how far
behind the hub, held items, refused batches, gaps, an upgrade needed, the last
error, and how many conflicts wait for a clinician (a link to `/review`).  The JSON
it reads is documented in the README ("Sync status").
Warnings about the server itself (plain HTTP on the LAN: tokens and charts readable
by anyone on the network) are written into the page, so staff see them before they
type a token.
"""

from __future__ import annotations

from html import escape
from typing import Final

from aiohttp import web

from edge_node.api.status import WARNINGS

PAGE: Final = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline';
 connect-src 'self'">
<title>chartsync — sync status</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:2em auto;max-width:40em;padding:0 1em;color:#222}
h1{font-size:1.4em}.big{font-size:1.6em;font-weight:bold}.ok{color:#176f2c}.bad{color:#b00020}
.warn{color:#8a5a00}ul{padding-left:1.2em}li{margin:.3em 0}#login{display:none}
small{color:#666}
</style></head><body>
<h1>Chart sync status</h1>
<!--warnings-->
<form id="login"><label>Staff token <input id="tok" type="password" autocomplete="off"></label>
<button>Show status</button></form>
<div id="out" aria-live="polite">Loading…</div>
<script>
"use strict";
const out = document.getElementById("out"), login = document.getElementById("login");
function esc(s){return String(s).replace(/[&<>"']/g,c=>"&#"+c.charCodeAt(0)+";");}
function when(iso){if(!iso)return "never";const d=new Date(iso);
  return d.toLocaleString();}
function ago(s){s=Math.round(s);if(s<90)return s+" s";if(s<5400)return Math.round(s/60)+" min";
  return Math.round(s/3600)+" h";}
function render(st){
  const s = st.sync, lines = [];
  if(!s){out.innerHTML='<p class="big">Local only</p><p>This site is not connected to a hub.'+
    ' '+esc(st.outbox_depth)+' changes recorded here.</p>';return;}
  const head = s.state==="online" ? '<span class="ok">Online</span>' :
    s.state==="offline" ? '<span class="bad">Offline</span>' :
    '<span class="warn">Starting</span>';
  lines.push('<p class="big">'+head+(s.since?' since '+esc(when(s.since)):'')+'</p>');
  const n = s.outbox_depth;
  lines.push('<p>'+(n===0?'All changes sent.':
    esc(n)+(n===1?' change':' changes')+' waiting to be sent'+
    (s.oldest_unpushed_s?' (oldest '+esc(ago(s.oldest_unpushed_s))+')':'')+'.')+'</p>');
  lines.push('<p>Last sent: '+esc(when(s.last_push))+'<br>Last received: '+esc(when(s.last_pull))+
    '<br>Behind the hub: '+(s.lag_batches?esc(s.lag_batches)+' batches':'up to date')+'</p>');
  const items = [];
  if(s.guard_held) items.push('<span class="bad">'+esc(s.guard_held)+' deletions or rewrites '+
    'held back</span> — an administrator must approve or discard them.');
  for(const h of s.held){
    if(h.reason==="gap") items.push('Waiting for missing changes: '+esc(h.detail));
    else if(h.reason==="upgrade")
      items.push('<span class="bad">Upgrade needed</span>: '+esc(h.detail));
    else items.push('Changes from another site held ('+esc(h.reason)+'): '+esc(h.detail));}
  for(const d of s.dead_letters) items.push('<span class="bad">The hub refused changes '+
    esc(d.seq_from)+' to '+esc(d.seq_to)+'</span>: '+esc(d.message));
  if(s.enrollment!=="approved") items.push('This site waits for approval by another site.');
  if(s.last_error && s.state!=="online") items.push('Last error: '+esc(s.last_error));
  if(items.length) lines.push('<ul>'+items.map(i=>'<li>'+i+'</li>').join('')+'</ul>');
  const c = st.open_conflicts;
  lines.push('<p id="conflicts"><a href="/review">'+(c===0?'No open conflicts':
    esc(c)+(c===1?' open conflict':' open conflicts')+' to review')+'</a></p>');
  lines.push('<p><small>'+esc(st.resources)+' records · updated '+
    esc(new Date().toLocaleTimeString())+'</small></p>');
  out.innerHTML = lines.join('');
}
async function tick(){
  const tok = sessionStorage.getItem("chartsync-token");
  if(!tok){login.style.display="block";out.textContent="";return;}
  try{
    const r = await fetch("/status",{headers:{"Authorization":"Bearer "+tok},cache:"no-store"});
    if(r.status===401||r.status===403){sessionStorage.removeItem("chartsync-token");
      login.style.display="block";out.textContent="That token was not accepted.";return;}
    render(await r.json());
  }catch(e){out.innerHTML='<p class="big bad">This computer cannot reach the clinic server.</p>';}
}
login.addEventListener("submit",ev=>{ev.preventDefault();
  sessionStorage.setItem("chartsync-token",document.getElementById("tok").value.trim());
  login.style.display="none";tick();});
tick(); setInterval(tick, 2000);
</script></body></html>
"""


async def get_status_page(request: web.Request) -> web.Response:
    warnings = "".join(f'<p class="big bad" role="alert">{escape(w)}</p>'
                       for w in request.app[WARNINGS])
    return web.Response(text=PAGE.replace("<!--warnings-->", warnings),
                        content_type="text/html", headers={"Cache-Control": "no-store"})


__all__ = ["PAGE", "get_status_page"]
