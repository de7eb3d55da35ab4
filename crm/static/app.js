// Small behaviours htmx does not cover. No inline scripts: the CSP forbids them.
document.addEventListener("htmx:responseError", function (event) {
  var xhr = event.detail.xhr;
  var box = document.getElementById("flashes");
  if (!box || !xhr) return;
  var p = document.createElement("p");
  p.className = "flash flash-error";
  p.setAttribute("role", "alert");
  p.textContent = xhr.status === 403 ? "Your role cannot do that; nothing was changed."
    : xhr.status === 429 ? "Too many requests; wait a moment and try again."
    : "The server could not do that (" + xhr.status + "); nothing was changed.";
  box.appendChild(p);
});

// A header checkbox with data-select-all="<selector>" ticks or unticks every box it names.
document.addEventListener("change", function (event) {
  var box = event.target;
  if (!box.matches || !box.matches("[data-select-all]")) return;
  document.querySelectorAll(box.getAttribute("data-select-all")).forEach(function (other) {
    other.checked = box.checked;
  });
});

// An email editor with data-live-preview: typing refreshes the preview frame (a POST of the
// same form to its preview button's formaction), at most every 600 ms.
(function () {
  var timer = null;
  document.addEventListener("input", function (event) {
    var form = event.target.closest && event.target.closest("form[data-live-preview]");
    if (!form) return;
    clearTimeout(timer);
    timer = setTimeout(function () {
      var button = form.querySelector("button.preview");
      if (button) form.requestSubmit(button);
    }, 600);
  });
})();
(function () {
  function refresh(form) {
    var button = form && form.querySelector("button.preview");
    if (button) form.requestSubmit(button);
  }
  // After "load", so the empty frame's own first load cannot cancel the preview's.
  window.addEventListener("load", function () {
    document.querySelectorAll("form[data-live-preview]").forEach(refresh);
  });
  // New content: a list of contacts for the preview (show the first), or a whole page boosted in.
  document.addEventListener("htmx:afterSwap", function (event) {
    var target = event.target;
    var form = target.closest && target.closest("form[data-live-preview]");
    if (form) { refresh(form); return; }
    if (target.querySelectorAll) target.querySelectorAll("form[data-live-preview]").forEach(refresh);
  });
})();
