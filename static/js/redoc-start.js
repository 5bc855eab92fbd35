/* Starts ReDoc on /api/redoc/ (templates/api_docs/redoc.html): the schema's
   address and the page's style nonce come from data- attributes, as the
   Content-Security-Policy allows no inline script. */
(function () {
  "use strict";
  var container = document.getElementById("redoc-container");
  if (!container || typeof Redoc === "undefined") return;
  // No search: ReDoc runs it in a worker from a blob: address, which the policy refuses.
  Redoc.init(container.dataset.specUrl, {nonce: container.dataset.styleNonce, disableSearch: true}, container);
})();
