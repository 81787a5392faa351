/** The console's one HTML page (scripts and styles are separate files: the CSP allows no inline code). No backticks or "${" inside: it is a raw template. */
export const CONSOLE_PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Patchbay console</title>
<link rel="stylesheet" href="console.css">
<script src="console.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
  <span class="brand">Patchbay console</span>
  <nav aria-label="Screens">
    <ul id="nav">
      <li><a href="#/">Overview</a></li>
      <li><a href="#/queues">Queues</a></li>
      <li><a href="#/dead-letters">Dead letters <span class="badge" id="badge-dlq" aria-label="dead letters"></span></a></li>
      <li><a href="#/sagas">Sagas <span class="badge" id="badge-sagas" aria-label="failed sagas"></span></a></li>
      <li><a href="#/pipelines">Pipelines</a></li>
      <li><a href="#/webhooks">Webhooks</a></li>
      <li><a href="#/breakers">Breakers</a></li>
      <li><a href="#/cdc">CDC</a></li>
      <li><a href="#/audit">Audit</a></li>
    </ul>
  </nav>
  <form id="token-form" class="token" hidden>
    <label for="token">Token</label>
    <input id="token" type="password" autocomplete="current-password">
    <button type="submit">Use</button>
  </form>
</header>
<p id="mode" class="mode" hidden></p>
<div id="status" class="status" role="status" aria-live="polite"></div>
<main id="main" tabindex="-1"><p>Loading…</p></main>
</body>
</html>
`;
