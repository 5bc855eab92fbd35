/* The rule editor (programmes/admin/rule_editor.html). Live preview: a pause in
   typing asks the server for the draft's counts (the same "Preview" the button
   gives) and shows them without leaving the page. */
(function () {
  "use strict";
  var form = document.getElementById("rule-form");
  var target = document.getElementById("preview");
  if (!form || !target || !window.fetch || !window.DOMParser) return;
  var timer = null, latest = 0;
  function refresh() {
    var ticket = ++latest;
    var body = new FormData(form);
    body.append("_preview", "1");
    fetch(window.location.pathname, {method: "POST", body: body, credentials: "same-origin"})
      .then(function (response) { return response.text(); })
      .then(function (html) {
        if (ticket !== latest) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("preview");
        // The server's own markup for the preview box: classes only, no style attributes.
        if (fresh) target.replaceChildren.apply(target, Array.prototype.slice.call(fresh.childNodes));
      })
      .catch(function () {});
  }
  form.querySelectorAll("textarea").forEach(function (box) {
    box.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(refresh, 900);
    });
  });
})();
