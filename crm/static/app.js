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
