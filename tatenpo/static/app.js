// Small behaviours shared by every page. No inline scripts: the Content-Security-Policy forbids them.
document.addEventListener("htmx:responseError", function (event) {
  var box = document.getElementById("htmx-error");
  if (!box) {
    box = document.createElement("div");
    box.id = "htmx-error";
    box.className = "flash flash-error";
    box.setAttribute("role", "alert");
    document.querySelector("main").prepend(box);
  }
  box.textContent = document.documentElement.lang === "en"
    ? "The request failed (" + event.detail.xhr.status + "). Nothing was changed; please try again."
    : "処理に失敗しました（" + event.detail.xhr.status + "）。変更は保存されていません。もう一度お試しください。";
});

// A message beside an htmx response (HX-Trigger "tatenpo-notice", platform/web.notify): e.g. a save whose
// sync waits for Redis to come back.
document.addEventListener("tatenpo-notice", function (event) {
  var box = document.getElementById("htmx-notice");
  if (!box) {
    box = document.createElement("div");
    box.id = "htmx-notice";
    box.className = "flash flash-info";
    box.setAttribute("role", "status");
    document.querySelector("main").prepend(box);
  }
  box.textContent = event.detail.value;
});

// Inline stock editing (商品・在庫, 販売データ): Esc cancels the edit row; after a save or cancel the focus
// goes back to the row's stock, so a keyboard user can go on with the next row.
(function () {
  var returnTo = null;
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (event.key === "Escape" && input.classList && input.classList.contains("stock-input")) {
      var cancel = input.closest("tr").querySelector(".stock-cancel");
      if (cancel) { event.preventDefault(); cancel.click(); }
    }
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var row = event.detail.elt.closest && event.detail.elt.closest("tr.editing");
    if (row) { returnTo = row.id; }
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var input = document.querySelector("tr.editing .stock-input");
    if (input && event.detail.elt.contains(input)) {
      input.focus();
      input.select();
      return;
    }
    if (returnTo) {
      var row = document.getElementById(returnTo);
      if (row && !row.classList.contains("editing")) {
        var link = row.querySelector(".stock-edit");
        if (link) { link.focus(); }
        returnTo = null;
      }
    }
  });
  // “Select all on this page” for bulk edit.
  document.addEventListener("change", function (event) {
    if (event.target.classList && event.target.classList.contains("select-all")) {
      var table = event.target.closest("table");
      table.querySelectorAll("input.row-select").forEach(function (box) { box.checked = event.target.checked; });
    }
  });
})();
