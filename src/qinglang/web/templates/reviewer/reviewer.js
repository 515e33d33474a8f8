/* Reviewer workspace keyboard shortcuts (extras: every action also has a visible button).
   Queue: j / k move between rows, Enter opens, ? help. Alert: a assign to me, d dismiss (focuses
   the reason), r restrict (focuses its form), ? help. Never while typing in a field. */
(function () {
  "use strict";

  function typing(e) {
    var el = e.target;
    if (!el || !el.tagName) { return false; }
    var tag = el.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
  }

  function ignored(e, dialog) {
    return e.ctrlKey || e.metaKey || e.altKey || typing(e) || (dialog && dialog.open);
  }

  var dialog = document.getElementById("rv-help");
  var opener = document.getElementById("rv-help-open");
  if (dialog && opener) {
    opener.addEventListener("click", function () { dialog.showModal(); });
  }

  function queue() {
    var selected = null;
    function links() {
      return Array.prototype.slice.call(document.querySelectorAll("#rv-queue a.rv-open"));
    }
    function idOf(a) { return a.closest("tr").getAttribute("data-alert"); }
    function mark(focus) {
      links().forEach(function (a) {
        var on = idOf(a) === selected;
        a.closest("tr").classList.toggle("rv-selected", on);
        if (on && focus) { a.focus(); }
      });
    }
    function move(step) {
      var ids = links().map(idOf);
      if (!ids.length) { return; }
      var i = ids.indexOf(selected);
      if (i < 0) { i = step > 0 ? 0 : ids.length - 1; }
      else { i = Math.min(ids.length - 1, Math.max(0, i + step)); }
      selected = ids[i];
      mark(true);
    }
    document.addEventListener("keydown", function (e) {
      if (ignored(e, dialog)) { return; }
      if (e.key === "j") { e.preventDefault(); move(1); }
      else if (e.key === "k") { e.preventDefault(); move(-1); }
      else if (e.key === "?") { e.preventDefault(); if (dialog) { dialog.showModal(); } }
      else if (e.key === "Enter" && selected !== null &&
               !(e.target.closest && e.target.closest("a, button"))) {
        var a = links().filter(function (l) { return idOf(l) === selected; })[0];
        if (a) { e.preventDefault(); window.location.href = a.href; }
      }
    });
    // The rows are replaced every 30 s (htmx polling): keep the selection and the focus.
    document.body.addEventListener("htmx:afterSwap", function () {
      mark(selected !== null && document.activeElement === document.body);
    });
  }

  function alertPage() {
    function focus(id) {
      var el = document.getElementById(id);
      if (!el) { return false; }
      el.scrollIntoView({block: "center"});
      el.focus();
      return true;
    }
    document.addEventListener("keydown", function (e) {
      if (ignored(e, dialog)) { return; }
      if (e.key === "a") {
        var b = document.getElementById("rv-assign-btn");
        if (b) { e.preventDefault(); b.click(); }
      } else if (e.key === "d") {
        if (focus("rv-dismiss-reason")) { e.preventDefault(); }
      } else if (e.key === "r") {
        if (focus("rv-restrict-reason")) { e.preventDefault(); }
      } else if (e.key === "?") {
        e.preventDefault();
        if (dialog) { dialog.showModal(); }
      }
    });
    var invalid = document.querySelector("[aria-invalid=true]");
    if (invalid) { invalid.focus(); }
  }

  var page = document.getElementById("rv-page");
  if (page && page.getAttribute("data-page") === "queue") { queue(); }
  else if (page && page.getAttribute("data-page") === "alert") { alertPage(); }
})();
