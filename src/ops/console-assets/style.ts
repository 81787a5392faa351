/** The console's stylesheet: readable from a phone-width window up. No backticks or "${" inside: it is a raw template. */
export const CONSOLE_STYLE = String.raw`:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --bg: #fff; --soft: #f6f8fa; --accent: #0a58ca;
  --bad: #b42318; --good: #116329; --warn: #9a6700; font-family: system-ui, -apple-system, "Segoe UI", sans-serif; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
main:focus { outline: none; }
body { margin: 0; color: var(--fg); background: var(--bg); font-size: 15px; line-height: 1.45; }
a { color: var(--accent); }
:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: var(--bg); padding: .5rem; }
.skip:focus { left: .5rem; z-index: 10; }
.top { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .6rem 1rem; border-bottom: 1px solid var(--line); background: var(--soft); }
.brand { font-weight: 700; }
nav ul { display: flex; flex-wrap: wrap; gap: .25rem .9rem; list-style: none; margin: 0; padding: 0; }
nav a { text-decoration: none; padding: .2rem .1rem; }
nav a[aria-current="page"] { font-weight: 700; text-decoration: underline; }
.badge { display: inline-block; min-width: 1.4em; padding: 0 .35em; border-radius: 1em; background: var(--bad); color: #fff; font-size: .8em; text-align: center; }
.badge:empty { display: none; }
.token { display: flex; gap: .4rem; align-items: center; margin-left: auto; }
.mode { margin: 0; padding: .4rem 1rem; background: #fff8c5; border-bottom: 1px solid var(--line); }
.status { padding: 0 1rem; min-height: 1.6rem; }
.status .ok { color: var(--good); } .status .err { color: var(--bad); }
main { padding: 0 1rem 2rem; max-width: 1200px; }
h1 { font-size: 1.4rem; margin: .6rem 0; } h2 { font-size: 1.1rem; margin: 1.2rem 0 .4rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: .75rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .8rem; }
.card .n { font-size: 1.6rem; font-weight: 700; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.wrap { word-break: break-word; max-width: 28rem; }
tr:last-child td { border-bottom: 0; }
form.filters { display: flex; flex-wrap: wrap; gap: .5rem .8rem; align-items: flex-end; margin: .5rem 0; }
form.filters label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); }
input, select, button, textarea { font: inherit; }
input, select, textarea { padding: .25rem .4rem; border: 1px solid var(--line); border-radius: 4px; min-width: 0; }
button { padding: .3rem .7rem; border: 1px solid var(--line); border-radius: 4px; background: var(--soft); cursor: pointer; }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
button.danger { color: var(--bad); }
button:disabled { opacity: .5; cursor: default; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; margin: .5rem 0; }
.pager { display: flex; gap: .6rem; align-items: center; margin: .5rem 0; }
pre { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .6rem; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
dl.kv dt { color: var(--muted); } dl.kv dd { margin: 0; word-break: break-word; }
.st-failed, .st-disabled, .st-abandoned { color: var(--bad); font-weight: 600; }
.st-completed, .st-succeeded, .st-delivered, .st-enabled, .st-unpaused, .st-active { color: var(--good); }
.st-compensating, .st-compensated, .st-retrying, .st-pending, .st-paused, .st-inactive { color: var(--warn); }
body.read-only .act { display: none; }
.secret { border: 2px solid var(--warn); border-radius: 6px; padding: .2rem .8rem; margin: .5rem 0; }
@media (max-width: 640px) {
  .top { padding: .5rem; } main { padding: 0 .5rem 2rem; }
  .token { margin-left: 0; width: 100%; } .token input { flex: 1; }
  th, td { padding: .3rem; font-size: .9rem; }
  dl.kv { grid-template-columns: 1fr; } dl.kv dd { margin-bottom: .3rem; }
}
.skip-cap { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;
