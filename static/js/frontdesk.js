/* Front desk: add member boxes to the registration form, and warn about
   possible duplicates while a member is typed. Plain JavaScript, no
   framework: the page works without it (a few blank member boxes, and the
   duplicate check on submit). */
(function () {
  "use strict";

  var form = document.querySelector(".register-form");
  if (!form) return;

  var PREFIX = "members";
  // Wait this long after the last keystroke before asking the server: enough
  // to skip the letters of a name being typed, short enough to feel immediate.
  var DEBOUNCE_MS = 450;
  var totalInput = form.querySelector("#id_" + PREFIX + "-TOTAL_FORMS");
  var maxInput = form.querySelector("#id_" + PREFIX + "-MAX_NUM_FORMS");
  var container = document.getElementById("members");
  var template = document.getElementById("member-template");
  var addButton = form.querySelector("[data-add-member]");
  var noJsHint = form.querySelector("[data-no-js-hint]");
  var duplicateUrl = form.getAttribute("data-duplicate-url");
  var villageSelect = form.querySelector("#id_village");

  if (addButton && template && totalInput) {
    addButton.hidden = false;
    if (noJsHint) noJsHint.hidden = true;
    addButton.addEventListener("click", function () {
      var index = parseInt(totalInput.value, 10);
      var max = maxInput ? parseInt(maxInput.value, 10) : 1000;
      if (index >= max) return;
      var html = template.innerHTML.replace(/__prefix__/g, String(index));
      var holder = document.createElement("div");
      holder.innerHTML = html.trim();
      var fieldset = holder.firstElementChild;
      var number = fieldset.querySelector("[data-member-number]");
      if (number) number.textContent = String(index + 1);
      container.appendChild(fieldset);
      totalInput.value = String(index + 1);
      watch(fieldset);
      var first = fieldset.querySelector("input[name$='-first_name']");
      if (first) first.focus();
    });
  }

  function field(fieldset, name) {
    return fieldset.querySelector("[name$='-" + name + "']");
  }

  function text(tag, className, content) {
    var element = document.createElement(tag);
    if (className) element.className = className;
    if (content) element.textContent = content;
    return element;
  }

  function show(fieldset, candidates) {
    var hint = fieldset.querySelector("[data-dup-hint]");
    if (!hint) return;
    hint.textContent = "";
    hint.classList.toggle("active", candidates.length > 0);
    if (!candidates.length) return;
    hint.appendChild(text("p", "dup-title", "May already be registered:"));
    var list = text("ul", "candidates");
    candidates.forEach(function (c) {
      var item = document.createElement("li");
      var link = text("a", "", c.name);
      link.href = c.url;
      link.target = "_blank";
      link.rel = "noopener";
      item.appendChild(link);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(text("span", "badge badge-warning", Math.round(c.score * 100) + "% alike"));
      item.appendChild(text("span", "muted",
        "born " + (c.date_of_birth || "unknown") + ", household " + c.household_number + ", " + c.village));
      item.appendChild(text("span", "reasons", c.reasons.join("; ")));
      list.appendChild(item);
    });
    hint.appendChild(list);
  }

  function watch(fieldset) {
    if (!duplicateUrl || !window.fetch) return;
    var timer = null;
    var lastQuery = "";
    var controller = null;
    function check() {
      var first = field(fieldset, "first_name");
      var last = field(fieldset, "last_name");
      var dob = field(fieldset, "date_of_birth");
      var year = field(fieldset, "birth_year");
      var birth = (dob && dob.value) || (year && /^\d{4}$/.test(year.value) ? year.value + "-07-01" : "");
      if (!first || !last || !first.value.trim() || !last.value.trim() || !birth) {
        show(fieldset, []);
        return;
      }
      var params = new URLSearchParams({
        first_name: first.value.trim(),
        last_name: last.value.trim(),
        middle_name: (field(fieldset, "middle_name") || {}).value || "",
        date_of_birth: birth,
        village: villageSelect ? villageSelect.value : ""
      });
      var query = params.toString();
      if (query === lastQuery) return;
      lastQuery = query;
      if (controller) controller.abort();
      controller = window.AbortController ? new AbortController() : null;
      fetch(duplicateUrl + "?" + query, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        signal: controller ? controller.signal : undefined
      })
        .then(function (response) { return response.ok ? response.json() : { candidates: [] }; })
        .then(function (body) { show(fieldset, body.candidates || []); })
        .catch(function () { /* a slow or lost connection: the check on submit still runs */ });
    }
    function later() {
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }
    ["first_name", "middle_name", "last_name", "date_of_birth", "birth_year"].forEach(function (name) {
      var input = field(fieldset, name);
      if (!input) return;
      input.addEventListener("input", later);
      input.addEventListener("change", later);
    });
    fieldset.recheck = later;
    // A form shown again after an error keeps its names: warn about them too.
    if (!document.getElementById("duplicates")) check();
  }

  if (villageSelect) {
    villageSelect.addEventListener("change", function () {
      Array.prototype.forEach.call(container.querySelectorAll("[data-member-form]"), function (fieldset) {
        if (fieldset.recheck) fieldset.recheck();
      });
    });
  }

  Array.prototype.forEach.call(container.querySelectorAll("[data-member-form]"), watch);

  var problems = document.getElementById("duplicates") || document.getElementById("form-problems");
  if (problems) problems.focus();
})();
