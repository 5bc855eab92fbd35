/* Enrolment and payment pages: show the member field only for programmes that
   serve one person, and only the payment fields the chosen channel needs.
   The pages work without it (every field is then shown). */
(function () {
  "use strict";

  document.querySelectorAll(".enrol-form").forEach(function (form) {
    var individual = (form.getAttribute("data-individual-programmes") || "").split(" ").filter(Boolean);
    var programme = form.querySelector("select[name='programme']");
    var memberBox = form.querySelector("[data-member-field]");
    var showMember = function () {
      if (!programme || !memberBox) return;
      memberBox.hidden = individual.indexOf(programme.value) === -1 && !memberBox.querySelector(".error");
    };
    if (programme) {
      programme.addEventListener("change", showMember);
      showMember();
    }
  });

  document.querySelectorAll(".payment-details").forEach(function (box) {
    var radios = box.querySelectorAll("input[name$='channel']");
    var parts = box.querySelectorAll("[data-for-channel]");
    var show = function () {
      var chosen = "";
      radios.forEach(function (radio) { if (radio.checked) chosen = radio.value; });
      parts.forEach(function (part) {
        var wanted = part.getAttribute("data-for-channel").split(" ");
        part.hidden = chosen !== "" && wanted.indexOf(chosen) === -1 && !part.querySelector(".error");
      });
    };
    radios.forEach(function (radio) { radio.addEventListener("change", show); });
    show();
  });
})();
