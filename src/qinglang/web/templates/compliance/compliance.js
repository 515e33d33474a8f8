// Compliance dashboard: on a phone-width screen the tables under each chart start collapsed
// (the <details> stay open without JavaScript, and on wider screens).
(function () {
  "use strict";
  if (window.matchMedia && window.matchMedia("(max-width: 40rem)").matches) {
    document.querySelectorAll("details.cp-numbers").forEach(function (d) {
      d.open = false;
    });
  }
})();
