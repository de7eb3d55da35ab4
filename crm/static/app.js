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

// First-run setup: guess the shop's time zone, language and currency from the browser,
// only on the first view of the form (never over what a person chose).
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-guess-shop=yes]");
  if (!form) return;
  var guessed = false;
  function choose(select, value) {
    if (!select || !value) return;
    for (var i = 0; i < select.options.length; i++) {
      if (select.options[i].value === value) { select.value = value; guessed = true; return; }
    }
  }
  try { choose(form.querySelector("#timezone"), Intl.DateTimeFormat().resolvedOptions().timeZone); } catch (e) {}
  var locale = (navigator.language || "").split("-");
  choose(form.querySelector("#language"), (locale[0] || "").toLowerCase());
  var region = (locale[1] || "").toUpperCase();
  var euro = ["AT", "BE", "CY", "DE", "EE", "ES", "FI", "FR", "GR", "HR", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PT", "SI", "SK"];
  var others = {US: "USD", GB: "GBP", CH: "CHF", CA: "CAD", AU: "AUD", NZ: "NZD", SE: "SEK", DK: "DKK", NO: "NOK", PL: "PLN", CZ: "CZK", JP: "JPY"};
  var currency = euro.indexOf(region) >= 0 ? "EUR" : others[region];
  var field = form.querySelector("#currency");
  if (field && currency) { field.value = currency; guessed = true; }
  var note = document.getElementById("guessed");
  if (note && guessed) note.hidden = false;
});

// "/" jumps to the header search from anywhere but a field; Enter there (or in the contact list's
// search) opens the single or first matching contact.
document.addEventListener("keydown", function (event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  var box = document.getElementById("header-search");
  if (!box) return;
  event.preventDefault();
  box.focus();
  box.select();
});
document.addEventListener("keydown", function (event) {
  if (event.key !== "Enter" || event.isComposing) return;
  var box = event.target;
  if (!box.matches || !box.matches("#contact-search input[name=q]") || !box.value.trim()) return;
  var header = document.querySelector("form.header-search");
  if (!header) return;
  event.preventDefault();
  window.location.assign(header.getAttribute("action") + "?q=" + encodeURIComponent(box.value.trim()));
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
