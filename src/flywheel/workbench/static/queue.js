// The review queue's keyboard shortcuts and remembered fields. The page works without this file:
// buttons, links and the form do everything; this only adds keys and memory.
(function () {
  "use strict";
  var by = document.getElementById("by");
  var token = document.getElementById("token");
  if (by) {
    by.value = by.value || localStorage.getItem("flywheel.labeller") || "";
    by.addEventListener("change", function () { localStorage.setItem("flywheel.labeller", by.value); });
  }
  if (token) {
    token.value = token.value || sessionStorage.getItem("flywheel.token") || "";
    token.addEventListener("change", function () { sessionStorage.setItem("flywheel.token", token.value); });
  }
  var form = document.getElementById("label-form");
  if (form) {
    form.addEventListener("submit", function () {
      if (by) { localStorage.setItem("flywheel.labeller", by.value); }
      if (token) { sessionStorage.setItem("flywheel.token", token.value); }
    });
  }
  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) { return; }
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA")) { return; }
    var key = event.key.toLowerCase();
    var link = { s: "skip", u: "undo" }[key];
    if (link) {
      var a = document.getElementById(link);
      if (a) { event.preventDefault(); window.location.href = a.href; }
      return;
    }
    var button = document.querySelector('.label-button[data-key="' + CSS.escape(key) + '"]');
    if (button) { event.preventDefault(); button.click(); }
  });
})();
