// The import progress page: ask the server how far the job is every few
// seconds, update the figures, and reload once it has finished so the
// reports appear. No library; works on a slow connection.
(function () {
  "use strict";
  var POLL_MS = 2000;
  var box = document.getElementById("import-job");
  if (!box || !box.dataset.progressUrl) {
    return;
  }
  var bar = box.querySelector("progress");

  function show(name, value) {
    var target = box.querySelector('[data-field="' + name + '"]');
    if (target && value !== undefined && value !== null && value !== "") {
      target.textContent = typeof value === "number" ? value.toLocaleString() : value;
    }
  }

  function poll() {
    fetch(box.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (job) {
        ["status_label", "processed_rows", "total_rows", "households_created", "members_created",
         "error_count", "duplicate_count", "message"].forEach(function (name) { show(name, job[name]); });
        if (bar) {
          bar.value = job.percent;
          bar.textContent = job.percent + "%";
        }
        if (job.finished) {
          window.location.reload();
        } else {
          window.setTimeout(poll, POLL_MS);
        }
      })
      .catch(function () {
        // A dropped connection: try again a little later rather than give up.
        window.setTimeout(poll, POLL_MS * 3);
      });
  }

  window.setTimeout(poll, POLL_MS);
})();
