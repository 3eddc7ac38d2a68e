// Enhancements for the article page. Without this file everything still works.
(function () {
  "use strict";
  var article = document.querySelector("article[data-article-id]");
  if (!article) return;
  var articleId = article.getAttribute("data-article-id");
  var root = document.documentElement;

  function count(kind) {
    // aggregate, first-party counter; no identifiers, no cookies
    try {
      fetch("/e/" + articleId + "/" + kind, { method: "GET", keepalive: true, credentials: "omit" });
    } catch (e) { /* counting never breaks the page */ }
  }

  function dismissedKey(name) { return "patrons:dismissed:" + name; }

  function dismiss(name, element) {
    var days = parseInt(element.getAttribute("data-dismiss-days") || "7", 10);
    try {
      localStorage.setItem(dismissedKey(name), String(Date.now() + days * 86400000));
    } catch (e) { /* storage blocked: dismissed for this page only */ }
    root.classList.add(name + "-dismissed");
    element.hidden = true;
    count(name + "_dismiss");
  }

  count("view");

  // Support banner
  var banner = document.getElementById("support-banner");
  if (banner) {
    var bannerClose = banner.querySelector("[data-dismiss]");
    bannerClose.hidden = false;
    bannerClose.addEventListener("click", function () { dismiss("banner", banner); });
    if (!root.classList.contains("banner-dismissed")) count("banner_impression");
    var cta = document.getElementById("banner-cta");
    if (cta) cta.addEventListener("click", function () { count("banner_click"); });
  }

  // Ad-blocker notice: shown only when the bait element is hidden or the bait script was blocked
  var notice = document.getElementById("adblock-notice");
  var bait = document.getElementById("ad-bait");
  function adsBlocked() {
    if (!bait) return false;
    var style = window.getComputedStyle(bait);
    var hidden = bait.offsetHeight === 0 || style.display === "none" || style.visibility === "hidden";
    return hidden || window.__patronsAdsAllowed !== true;
  }
  function checkBlocker() {
    if (!notice || root.classList.contains("notice-dismissed")) return;
    if (adsBlocked()) {
      notice.hidden = false;
      count("notice_impression");
      notice.querySelector("[data-dismiss]").addEventListener("click", function () { dismiss("notice", notice); });
      var noticeCta = document.getElementById("notice-cta");
      if (noticeCta) noticeCta.addEventListener("click", function () { count("notice_click"); });
    }
  }
  if (document.readyState === "complete") {
    window.setTimeout(checkBlocker, 300);
  } else {
    window.addEventListener("load", function () { window.setTimeout(checkBlocker, 300); });
  }

  // Copy the canonical link
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var field = document.querySelector(button.getAttribute("data-copy"));
    button.hidden = false;
    button.addEventListener("click", function () {
      field.select();
      var done = function () { button.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, function () {});
      else { document.execCommand("copy"); done(); }
    });
  });

  // Correction suggestions: select text + Ctrl+Enter, or the visible link
  var dialog = document.getElementById("correction-dialog");
  var form = document.getElementById("correction-form");
  var body = document.getElementById("article-body");
  if (!dialog || !form || typeof dialog.showModal !== "function") return;
  var status = form.querySelector(".form-status");

  function surroundingSentence(selection) {
    if (!selection.rangeCount) return "";
    var node = selection.getRangeAt(0).commonAncestorContainer;
    var block = node.nodeType === 1 ? node : node.parentElement;
    block = block && block.closest("p, li, blockquote, h2, h3, h4, figcaption, td") || block;
    if (!block) return "";
    var text = block.textContent.replace(/\s+/g, " ").trim();
    var chosen = selection.toString().replace(/\s+/g, " ").trim();
    var at = text.indexOf(chosen);
    if (at < 0) return text.slice(0, 2000);
    var start = Math.max(text.lastIndexOf(". ", at), text.lastIndexOf("? ", at), text.lastIndexOf("! ", at));
    start = start < 0 ? 0 : start + 2;
    var ends = [". ", "? ", "! "].map(function (p) { return text.indexOf(p, at + chosen.length); })
      .filter(function (i) { return i >= 0; });
    var end = ends.length ? Math.min.apply(null, ends) + 1 : text.length;
    return text.slice(start, end).slice(0, 2000);
  }

  function openDialog(selectionText, context) {
    form.elements.selection.value = (selectionText || "").slice(0, 1000);
    form.elements.context.value = context || "";
    status.textContent = "";
    form.hidden = false;
    dialog.showModal();
    (selectionText ? form.elements.comment : form.elements.selection).focus();
  }

  document.addEventListener("keydown", function (event) {
    if (!(event.ctrlKey || event.metaKey) || event.key !== "Enter" || dialog.open) return;
    var selection = window.getSelection();
    var text = selection ? selection.toString().trim() : "";
    if (!text || !body.contains(selection.anchorNode)) return;
    event.preventDefault();
    openDialog(text, surroundingSentence(selection));
  });

  document.querySelectorAll(".js-suggest-correction").forEach(function (link) {
    link.addEventListener("click", function (event) {
      event.preventDefault();
      var selection = window.getSelection();
      var text = selection && body.contains(selection.anchorNode) ? selection.toString().trim() : "";
      openDialog(text, text ? surroundingSentence(selection) : "");
    });
  });

  dialog.querySelector("[data-close-dialog]").addEventListener("click", function () { dialog.close(); });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    status.textContent = "Sending…";
    fetch("/csrf-token", { credentials: "same-origin" })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        form.elements.csrf_token.value = data.token;
        return fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
          headers: { "Accept": "application/json" }
        });
      })
      .then(function (response) {
        return response.json().catch(function () { return { ok: false, message: "" }; })
          .then(function (data) { return { response: response, data: data }; });
      })
      .then(function (result) {
        if (result.data.ok) {
          status.textContent = result.data.message;
          form.reset();
          window.setTimeout(function () { dialog.close(); }, 1500);
        } else if (result.response.status === 429) {
          status.textContent = "Too many suggestions in a short time. Please try again in a minute.";
        } else {
          var errors = result.data.errors || {};
          var first = Object.keys(errors).map(function (k) { return errors[k][0]; })[0];
          status.textContent = first || "That could not be sent. Please check the fields and try again.";
        }
      })
      .catch(function () { status.textContent = "That could not be sent. Please check your connection."; });
  });
})();
