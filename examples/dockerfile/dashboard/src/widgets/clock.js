// Clock widget: shows the browser's local time, updated every second.
function renderClock(el) {
  el.textContent = new Date().toLocaleTimeString();
}
