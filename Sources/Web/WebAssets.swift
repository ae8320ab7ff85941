import Crypto
import Foundation

/// The stylesheet and the one script, compiled into the binary (nothing to install beside it)
/// and served under names that carry a hash of their content, so browsers may cache them for
/// a year and a new build is fetched at once.
public struct WebAsset: Sendable {
    public let path: String
    public let contentType: String
    public let body: String

    init(name: String, extension ext: String, contentType: String, body: String) {
        let digest = SHA256.hash(data: Array(body.utf8)).prefix(8).map { String(format: "%02x", $0) }.joined()
        path = "/static/\(name)-\(digest).\(ext)"
        self.contentType = contentType
        self.body = body
    }

    public static let stylesheet = WebAsset(name: "app", extension: "css", contentType: "text/css; charset=utf-8", body: css)
    public static let script = WebAsset(name: "app", extension: "js", contentType: "text/javascript; charset=utf-8", body: js)
    /// The chat page's script (the chat page loads only this one).
    public static let chatScript = WebAsset(name: "chat", extension: "js", contentType: "text/javascript; charset=utf-8", body: WebChatScript.js)
    public static let all = [stylesheet, script, chatScript]

    static let css = """
        :root { --fg: #1b1f24; --muted: #5b6470; --line: #d7dce2; --accent: #0b5cad; --bg: #fff; --soft: #f3f5f8; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); }
        a:focus, button:focus, input:focus, select:focus, textarea:focus { outline: 3px solid #f0a500; outline-offset: 1px; }
        header.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; padding: .5rem 1rem; background: var(--soft); border-bottom: 1px solid var(--line); }
        header.top .brand { font-weight: 700; text-decoration: none; }
        header.top form.search { flex: 1 1 12rem; }
        header.top form.search input { width: 100%; }
        header.top .who { color: var(--muted); font-size: .9rem; }
        header.top a[aria-current=page] { font-weight: 700; text-decoration: none; }
        input, select, textarea, button { font: inherit; }
        input[type=text], input[type=email], input[type=password], input[type=search], textarea, select { padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; max-width: 100%; }
        button, .button { display: inline-block; padding: .35rem .8rem; border: 1px solid var(--accent); border-radius: 4px; background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
        button.secondary, .button.secondary { background: #fff; color: var(--accent); }
        button:disabled { opacity: .5; cursor: default; }
        .layout { display: flex; gap: 1rem; padding: 1rem; }
        nav.folders { flex: 0 0 12rem; }
        nav.folders ul { list-style: none; margin: 0; padding: 0; }
        nav.folders li a { display: flex; justify-content: space-between; gap: .5rem; padding: .25rem .5rem; border-radius: 4px; text-decoration: none; }
        nav.folders li a.current { background: var(--soft); font-weight: 600; }
        .count { color: var(--muted); }
        section.content { flex: 1 1 auto; min-width: 0; }
        table.messages { width: 100%; border-collapse: collapse; }
        table.messages td, table.messages th { padding: .35rem .4rem; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
        table.messages tr.unread td { font-weight: 700; }
        table.messages td.subject { width: 55%; overflow-wrap: anywhere; }
        table.messages td.date { white-space: nowrap; color: var(--muted); font-size: .9rem; }
        .toolbar { display: flex; flex-wrap: wrap; gap: .4rem; align-items: center; margin: .5rem 0; }
        .pager { display: flex; gap: 1rem; margin: .75rem 0; }
        .flag { color: #c47f00; }
        .banner { padding: .5rem 1rem; background: #fff4d6; border: 1px solid #f0d48a; border-radius: 4px; margin: .5rem 0; }
        .banner.hidden { display: none; }
        .error { color: #a10d0d; }
        dl.headers { display: grid; grid-template-columns: max-content 1fr; gap: .2rem .8rem; margin: 0 0 1rem; }
        dl.headers dt { color: var(--muted); }
        dl.headers dd { margin: 0; overflow-wrap: anywhere; }
        pre.text-body { white-space: pre-wrap; overflow-wrap: anywhere; font: 15px/1.45 ui-monospace, Menlo, Consolas, monospace; }
        .html-body { border-top: 1px solid var(--line); padding-top: 1rem; overflow-x: auto; }
        .html-body img { max-width: 100%; height: auto; }
        ul.attachments { padding-left: 1.2rem; }
        form.compose label { display: block; margin-top: .6rem; font-weight: 600; }
        form.compose input[type=text], form.compose textarea, form.compose select { width: 100%; }
        form.compose textarea { min-height: 16rem; }
        form.compose textarea.short { min-height: 6rem; }
        .narrow { max-width: 60rem; margin: 0 auto; padding: 1rem; }
        .login { max-width: 22rem; margin: 4rem auto; padding: 1.5rem; border: 1px solid var(--line); border-radius: 8px; }
        .login label { display: block; margin-top: .8rem; }
        .login input { width: 100%; }
        .login button { margin-top: 1rem; width: 100%; }
        .visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
        .chat { display: flex; gap: 1rem; padding: 1rem; height: calc(100vh - 4rem); }
        .chat-side { flex: 0 0 14rem; overflow-y: auto; }
        .chat-side h2 { font-size: 1rem; margin: 1rem 0 .3rem; }
        .chat-list { list-style: none; margin: 0; padding: 0; }
        .chat-list button { width: 100%; text-align: left; background: #fff; color: var(--accent); border-color: var(--line); margin: .1rem 0; overflow-wrap: anywhere; }
        .chat-list button.current { background: var(--soft); font-weight: 700; }
        .chat-list button .count { float: right; }
        .chat-list.members li { padding: .1rem .3rem; overflow-wrap: anywhere; }
        .join label { display: block; font-weight: 600; }
        .join-row { display: flex; gap: .3rem; }
        .join-row input { flex: 1 1 auto; min-width: 0; }
        .chat-main { flex: 1 1 auto; min-width: 0; display: flex; flex-direction: column; }
        .chat-main h1 { font-size: 1.2rem; margin: .2rem 0; overflow-wrap: anywhere; }
        .chat-main p { margin: .2rem 0; }
        .chat-status { color: var(--muted); font-size: .9rem; }
        .chat-status.down { color: #a10d0d; }
        .chat-topic { color: var(--muted); overflow-wrap: anywhere; }
        .chat-messages { flex: 1 1 auto; overflow-y: auto; list-style: none; margin: 0; padding: .3rem; border: 1px solid var(--line); border-radius: 4px; min-height: 10rem; }
        .chat-messages li { padding: .1rem 0; overflow-wrap: anywhere; white-space: pre-wrap; }
        .chat-messages .time { color: var(--muted); font-size: .8rem; margin-right: .4rem; }
        .chat-messages .nick { font-weight: 700; margin-right: .4rem; }
        .chat-messages li.event { color: var(--muted); font-style: italic; }
        .chat-send { display: flex; gap: .4rem; margin-top: .5rem; }
        .chat-send input { flex: 1 1 auto; min-width: 0; }
        @media (max-width: 700px) {
          .chat { flex-direction: column; padding: .5rem; height: auto; }
          .chat-side { flex: none; }
          .chat-list { display: flex; flex-wrap: wrap; gap: .25rem; }
          .chat-list button { width: auto; }
          .chat-messages { height: 55vh; flex: none; }
          .layout { flex-direction: column; padding: .5rem; }
          nav.folders { flex: none; }
          nav.folders ul { display: flex; flex-wrap: wrap; gap: .25rem; }
          table.messages .from { display: none; }
        }
        """

    /// No inline script anywhere (CSP `script-src 'self'`): this file wires up what the pages
    /// need and works without it (every action is a plain form or link).
    static let js = """
        "use strict";
        (function () {
          var body = document.body;
          // Select-all checkbox of the message list.
          var all = document.getElementById("select-all");
          if (all) {
            all.addEventListener("change", function () {
              var boxes = document.querySelectorAll("input[name=uid], input[name=conversation]");
              for (var i = 0; i < boxes.length; i++) { boxes[i].checked = all.checked; }
            });
          }
          // Live updates: the server says when the folder changed (new mail, flags set elsewhere).
          var live = body.getAttribute("data-live");
          if (live && window.EventSource) {
            var source = new EventSource(live);
            source.addEventListener("change", function () {
              var checked = document.querySelectorAll("input[name=uid]:checked, input[name=conversation]:checked").length > 0;
              var banner = document.getElementById("live-banner");
              if (!checked && body.getAttribute("data-autoreload") === "1") { location.reload(); return; }
              if (banner) { banner.classList.remove("hidden"); }
            });
          }
          // Signing out here tells the other tabs (an open chat page closes its socket).
          Array.prototype.forEach.call(document.querySelectorAll("form[action='/logout'], form[action='/logout-everywhere']"), function (form) {
            form.addEventListener("submit", function () {
              try { localStorage.setItem("svcpkg-signed-out", String(Date.now())); } catch (e) {}
            });
          });
          // Keyboard (outside text fields): "/" search, "c" compose, "j"/"k" next/previous message
          // in the list (Enter opens it), "x" selects it, "r" reply, "u" back to the folder.
          function go(id) {
            var link = document.getElementById(id);
            if (link) { location.href = link.getAttribute("href"); }
          }
          function moveInList(step) {
            var links = Array.prototype.slice.call(document.querySelectorAll("table.messages td.subject a"));
            if (links.length === 0) { return; }
            var index = links.indexOf(document.activeElement);
            var next = index < 0 ? (step > 0 ? 0 : links.length - 1) : Math.min(links.length - 1, Math.max(0, index + step));
            links[next].focus();
          }
          document.addEventListener("keydown", function (event) {
            var tag = (event.target && event.target.tagName) || "";
            if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) { return; }
            if (event.key === "/") {
              var search = document.querySelector("form.search input[type=search]");
              if (search) { event.preventDefault(); search.focus(); }
            } else if (event.key === "c") {
              go("compose-link");
            } else if (event.key === "j" || event.key === "k") {
              moveInList(event.key === "j" ? 1 : -1);
            } else if (event.key === "x" && document.activeElement) {
              var row = document.activeElement.closest ? document.activeElement.closest("tr") : null;
              var box = row ? row.querySelector("input[name=uid], input[name=conversation]") : null;
              if (box) { box.checked = !box.checked; }
            } else if (event.key === "r") {
              go("reply-link");
            } else if (event.key === "u") {
              go("back-link");
            }
          });
        })();
        """
}
