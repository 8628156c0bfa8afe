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
