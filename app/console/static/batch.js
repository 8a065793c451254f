// A batch's page while the worker builds its files: the progress bar follows the batch's
// status, and the page reloads (showing the files) when the batch is ready or has failed.
(function () {
  "use strict";
  var el = document.getElementById("batch-progress");
  if (!el || !el.dataset.progressUrl) { return; }
  var bar = document.getElementById("batch-bar");
  var label = document.getElementById("batch-status");
  function poll() {
    fetch(el.dataset.progressUrl, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (state) {
        if (!state) { return; }
        bar.value = state.percent;
        bar.textContent = state.percent + "%";
        label.textContent = state.status_label + " · " + state.percent + "%";
        if (state.status === "ready" || state.status === "failed") {
          location.reload();
        } else {
          setTimeout(poll, 1000 * el.dataset.pollSeconds);
        }
      });
  }
  setTimeout(poll, 1000 * el.dataset.pollSeconds);
})();
