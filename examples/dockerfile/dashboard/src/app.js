// Entry point: mounts the widgets.
renderClock(document.getElementById("clock"));
setInterval(() => renderClock(document.getElementById("clock")), 1000);
renderStatus(document.getElementById("status"));
