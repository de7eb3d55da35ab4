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
