// The console's only script: conveniences, never needed to read a page or take an action.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // Board filters apply as soon as one is chosen.
  for (const select of document.querySelectorAll("select.autosubmit")) {
    select.addEventListener("change", () => select.form.submit());
  }
  // Leak check: a chosen file is read here and put in the text box (the form posts text only).
  const file = document.getElementById("leak-file");
  const text = document.getElementById("leak-text");
  if (file && text) {
    file.addEventListener("change", () => {
      const chosen = file.files && file.files[0];
      if (!chosen) return;
      chosen.text().then((content) => { text.value = content; });
    });
  }
  // Destructive buttons ask once.
  for (const button of document.querySelectorAll("button.danger")) {
    button.addEventListener("click", (event) => {
      if (!window.confirm(button.textContent.trim() + "?")) event.preventDefault();
    });
  }
});
