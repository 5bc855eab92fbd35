/* Referral pages: show the member field only for programmes that serve one
   person, and a Print button on the slip. The pages work without it. */
(function () {
  "use strict";

  var form = document.querySelector(".refer-form");
  if (form) {
    var individual = (form.getAttribute("data-individual-programmes") || "").split(" ").filter(Boolean);
    var programme = form.querySelector("#id_programme");
    var memberBox = form.querySelector("[data-member-field]");
    var showMember = function () {
      if (!programme || !memberBox) return;
      var needed = individual.indexOf(programme.value) !== -1;
      var chosen = memberBox.querySelector("select") && memberBox.querySelector("select").value;
      memberBox.hidden = !needed && !chosen && !memberBox.querySelector(".error");
    };
    if (programme) programme.addEventListener("change", showMember);
    showMember();
  }

  var printButton = document.querySelector("[data-print]");
  if (printButton) {
    printButton.hidden = false;
    var hint = document.querySelector("[data-print-hint]");
    if (hint) hint.hidden = true;
    printButton.addEventListener("click", function () { window.print(); });
  }
})();
