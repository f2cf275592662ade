/* Times in the reader's own time zone, with the zone named: the server sends UTC ISO strings
   (<time datetime="...Z">), which are exact but make a chemist do time-zone arithmetic. */
"use strict";

const Times = (() => {
  // Named fields, not dateStyle/timeStyle: those cannot be combined with timeZoneName.
  const FORMAT = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });

  function format(iso) {
    if (!iso) return "–";
    const when = new Date(iso);
    return Number.isNaN(when.getTime()) ? iso : FORMAT.format(when);
  }

  function apply(root) {
    for (const el of (root || document).querySelectorAll("time[datetime]")) {
      const iso = el.getAttribute("datetime");
      el.textContent = format(iso);
      el.title = iso; // the exact UTC time, on hover
    }
  }

  apply(document);
  return { format, apply };
})();
