// Runs before the page paints: hide what this reader dismissed, so it never flashes.
(function () {
  try {
    var now = Date.now();
    ["banner", "notice"].forEach(function (name) {
      var until = parseInt(localStorage.getItem("patrons:dismissed:" + name) || "0", 10);
      if (until > now) document.documentElement.classList.add(name + "-dismissed");
    });
  } catch (e) { /* storage blocked: show everything */ }
  document.documentElement.classList.add("js");
})();
