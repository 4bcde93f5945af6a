// Status widget: reads config.json (added by Bazel on top of the Dockerfile image).
function renderStatus(el) {
  fetch("config.json").then(r => r.json()).then(c => {
    el.textContent = c.environment + " - " + c.build_label;
  });
}
