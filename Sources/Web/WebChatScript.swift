/// The chat page's script, served as a content-hashed asset (CSP `script-src 'self'`, no
/// inline script). It speaks IRC over the page's WebSocket (`text.ircv3.net`, one line per
/// message); the socket is admitted by the session cookie, so no password is ever here.
/// Every text from the server reaches the page through `textContent`, never as HTML.
enum WebChatScript {
    static let js = #"""
        "use strict";
        (function () {
          var root = document.getElementById("chat");
          if (!root) { return; }
          var $ = function (id) { return document.getElementById(id); };
          var statusLine = $("chat-status"), title = $("chat-title"), topicLine = $("chat-topic");
          var list = $("messages"), channelList = $("channel-list"), memberList = $("member-list");
          var olderButton = $("older"), sendInput = $("send-input"), sendButton = $("send-button");
          var pageSize = 50;
          var socket = null, registered = false, myNick = "", nickTries = 0, backoff = 1000, stopped = false;
          // Conversations by folded name: {name, isChannel, lines: [{msgid,time,nick,text,kind}], ids: {}, members: {}, topic, more, unread}
          var buffers = {}, current = null, batches = {}, namesPending = {};
          var saved = [];
          try { saved = JSON.parse(sessionStorage.getItem("svcpkg-chat-channels") || "[]"); } catch (e) { saved = []; }

          function fold(name) { return name.toLowerCase(); }
          function baseNick() {
            var local = (root.getAttribute("data-user") || "user").split("@")[0];
            var nick = local.replace(/[^A-Za-z0-9_\-\[\]\\`^{}|]/g, "_");
            if (!/^[A-Za-z_\[\]\\`^{}|]/.test(nick)) { nick = "u" + nick; }
            return nick.slice(0, 16);
          }
          function setStatus(text, down) {
            statusLine.textContent = text;
            statusLine.className = down ? "chat-status down" : "chat-status";
          }
          function send(line) {
            if (socket && socket.readyState === 1) { socket.send(line.replace(/[\r\n\0]/g, " ")); }
          }
          function saveChannels() {
            var names = Object.keys(buffers).filter(function (k) { return buffers[k].isChannel && buffers[k].joined; })
              .map(function (k) { return buffers[k].name; });
            try { sessionStorage.setItem("svcpkg-chat-channels", JSON.stringify(names)); } catch (e) {}
          }

          // IRC message parsing (IRCv3 message tags, RFC 1459 framing).
          function unescapeTag(v) {
            return v.replace(/\\(.)?/g, function (m, c) {
              return c === ":" ? ";" : c === "s" ? " " : c === "r" ? "\r" : c === "n" ? "\n" : (c || "");
            });
          }
          function parse(line) {
            var msg = { tags: {}, source: "", command: "", params: [] }, sp;
            if (line.charAt(0) === "@") {
              sp = line.indexOf(" ");
              line.slice(1, sp).split(";").forEach(function (t) {
                var eq = t.indexOf("=");
                if (eq < 0) { msg.tags[t] = ""; } else { msg.tags[t.slice(0, eq)] = unescapeTag(t.slice(eq + 1)); }
              });
              line = line.slice(sp + 1).replace(/^ +/, "");
            }
            if (line.charAt(0) === ":") {
              sp = line.indexOf(" ");
              msg.source = line.slice(1, sp);
              line = line.slice(sp + 1).replace(/^ +/, "");
            }
            while (line.length) {
              if (line.charAt(0) === ":") { msg.params.push(line.slice(1)); break; }
              sp = line.indexOf(" ");
              if (sp < 0) { msg.params.push(line); break; }
              msg.params.push(line.slice(0, sp));
              line = line.slice(sp + 1).replace(/^ +/, "");
            }
            msg.command = (msg.params.shift() || "").toUpperCase();
            msg.nick = msg.source.split("!")[0];
            return msg;
          }

          function buffer(name, isChannel) {
            var key = fold(name);
            if (!buffers[key]) {
              buffers[key] = { name: name, isChannel: isChannel, lines: [], ids: {}, members: {}, topic: "", more: true, unread: 0, joined: false };
            }
            return buffers[key];
          }
          function timeText(iso) {
            var d = iso ? new Date(iso) : new Date();
            if (isNaN(d.getTime())) { d = new Date(); }
            return ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
          }
          function lineFrom(msg) {
            var text = msg.params.length > 1 ? msg.params[msg.params.length - 1] : "";
            var kind = msg.command, ctcp = /^\u0001ACTION (.*)\u0001?$/.exec(text);
            if (ctcp) { kind = "ACTION"; text = ctcp[1].replace(/\u0001$/, ""); }
            switch (msg.command) {
              case "JOIN": text = msg.nick + " joined"; break;
              case "PART": text = msg.nick + " left" + (msg.params[1] ? " (" + msg.params[1] + ")" : ""); break;
              case "QUIT": text = msg.nick + " quit" + (msg.params[0] ? " (" + msg.params[0] + ")" : ""); break;
              case "KICK": text = msg.params[1] + " was kicked by " + msg.nick + (msg.params[2] ? " (" + msg.params[2] + ")" : ""); break;
              case "TOPIC": text = msg.nick + " set the topic: " + (msg.params[1] || ""); break;
              case "NICK": text = msg.nick + " is now " + msg.params[0]; break;
              case "MODE": text = msg.nick + " set mode " + msg.params.slice(1).join(" "); break;
            }
            return { msgid: msg.tags.msgid || "", time: msg.tags.time || "", nick: msg.nick, text: text, kind: kind };
          }
          function lineElement(l) {
            var li = document.createElement("li"), t = document.createElement("span");
            t.className = "time";
            t.textContent = timeText(l.time);
            if (l.time) { t.title = l.time; }
            li.appendChild(t);
            if (l.kind === "PRIVMSG" || l.kind === "NOTICE") {
              var n = document.createElement("span");
              n.className = "nick";
              n.textContent = l.kind === "NOTICE" ? "-" + l.nick + "-" : l.nick;
              li.appendChild(n);
              li.appendChild(document.createTextNode(l.text));
            } else if (l.kind === "ACTION") {
              li.appendChild(document.createTextNode("* " + l.nick + " " + l.text));
            } else {
              li.className = "event";
              li.appendChild(document.createTextNode(l.text));
            }
            return li;
          }
          // Lines already shown (history fetched again after a reconnect): by msgid, else by
          // server time and content.
          function lineKey(l) { return l.msgid || (l.time ? l.time + "|" + l.kind + "|" + l.nick + "|" + l.text : ""); }
          function addLines(b, lines, where) {
            var fresh = lines.filter(function (l) { var k = lineKey(l); return !(k && b.ids[k]); });
            fresh.forEach(function (l) { var k = lineKey(l); if (k) { b.ids[k] = true; } });
            if (!fresh.length) { return 0; }
            b.lines = where === "start" ? fresh.concat(b.lines) : b.lines.concat(fresh);
            if (b !== current) {
              if (where === "end") { b.unread += fresh.filter(function (l) { return l.kind === "PRIVMSG" || l.kind === "ACTION"; }).length; renderChannels(); }
              return fresh.length;
            }
            var atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
            if (where === "start") {
              var before = list.scrollHeight, first = list.firstChild;
              fresh.forEach(function (l) { list.insertBefore(lineElement(l), first); });
              list.scrollTop += list.scrollHeight - before;
            } else {
              fresh.forEach(function (l) { list.appendChild(lineElement(l)); });
              if (atBottom || where === "latest") { list.scrollTop = list.scrollHeight; }
            }
            return fresh.length;
          }
          function renderChannels() {
            channelList.textContent = "";
            Object.keys(buffers).sort().forEach(function (k) {
              var b = buffers[k];
              if (b.isChannel && !b.joined) { return; }
              var li = document.createElement("li"), button = document.createElement("button");
              button.type = "button";
              button.textContent = b.name;
              button.className = b === current ? "current" : "";
              if (b === current) { button.setAttribute("aria-current", "true"); }
              if (b.unread) {
                var c = document.createElement("span");
                c.className = "count";
                c.textContent = String(b.unread);
                c.setAttribute("aria-label", b.unread + " unread");
                button.appendChild(c);
              }
              button.addEventListener("click", function () { select(b); sendInput.focus(); });
              li.appendChild(button);
              channelList.appendChild(li);
            });
          }
          function renderMembers() {
            memberList.textContent = "";
            var names = current && current.isChannel ? Object.keys(current.members).sort(function (a, b) { return a.toLowerCase() < b.toLowerCase() ? -1 : 1; }) : [];
            names.forEach(function (n) {
              var li = document.createElement("li");
              li.textContent = current.members[n] + n;
              memberList.appendChild(li);
            });
            $("member-count").textContent = names.length ? "(" + names.length + ")" : "";
          }
          function select(b) {
            current = b;
            b.unread = 0;
            title.textContent = b.name;
            topicLine.textContent = b.topic;
            list.textContent = "";
            b.lines.forEach(function (l) { list.appendChild(lineElement(l)); });
            list.scrollTop = list.scrollHeight;
            olderButton.disabled = !b.more;
            var usable = registered;
            sendInput.disabled = !usable;
            sendButton.disabled = !usable;
            renderChannels();
            renderMembers();
          }
          function loadOlder() {
            if (!current || !current.more || current.loading) { return; }
            current.loading = true;
            var first = current.lines.filter(function (l) { return l.msgid; })[0];
            if (first) { send("CHATHISTORY BEFORE " + current.name + " msgid=" + first.msgid + " " + pageSize); }
            else { send("CHATHISTORY LATEST " + current.name + " * " + pageSize); }
          }

          // A server error: in the open conversation, or in the status line before there is one.
          function notice(text) {
            if (current) { addLines(current, [{ msgid: "", time: "", nick: "", text: text, kind: "EVENT" }], "end"); }
            else { setStatus(text, true); }
          }

          function handle(msg) {
            var p = msg.params, b, batch = msg.tags.batch && batches[msg.tags.batch];
            if (batch && msg.command !== "BATCH") { batch.lines.push(lineFrom(msg)); return; }
            switch (msg.command) {
              case "PING": send("PONG :" + (p[0] || "")); break;
              case "CAP": break;
              case "001":
                registered = true; myNick = p[0]; backoff = 1000; nickTries = 0;
                setStatus("Connected as " + myNick + ".");
                var rejoin = Object.keys(buffers).filter(function (k) { return buffers[k].isChannel && buffers[k].joined; }).map(function (k) { return buffers[k].name; });
                if (!rejoin.length) { rejoin = saved; }
                rejoin.forEach(function (name) { send("JOIN " + name); });
                if (current) { select(current); }
                break;
              case "433":
                if (!registered && nickTries < 5) { nickTries += 1; send("NICK " + baseNick().slice(0, 14) + "_" + nickTries); }
                else { setStatus("That nickname is in use.", true); }
                break;
              case "JOIN":
                b = buffer(p[0], true);
                if (fold(msg.nick) === fold(myNick)) {
                  b.joined = true; b.members = {}; b.more = true;
                  saveChannels();
                  if (!current || current === b || !current.joined) { select(b); }
                  renderChannels();
                  // The latest lines: on a rejoin after a reconnect this also fills what was missed.
                  send("CHATHISTORY LATEST " + b.name + " * " + pageSize);
                } else {
                  b.members[msg.nick] = "";
                  addLines(b, [lineFrom(msg)], "end");
                  if (b === current) { renderMembers(); }
                }
                break;
              case "PART": case "KICK":
                b = buffer(p[0], true);
                var who = msg.command === "KICK" ? p[1] : msg.nick;
                addLines(b, [lineFrom(msg)], "end");
                if (fold(who) === fold(myNick)) { b.joined = false; saveChannels(); renderChannels(); }
                delete b.members[who];
                if (b === current) { renderMembers(); }
                break;
              case "QUIT": case "NICK":
                Object.keys(buffers).forEach(function (k) {
                  var c = buffers[k];
                  if (c.members.hasOwnProperty(msg.nick)) {
                    var prefix = c.members[msg.nick];
                    addLines(c, [lineFrom(msg)], "end");
                    delete c.members[msg.nick];
                    if (msg.command === "NICK") { c.members[p[0]] = prefix; }
                  }
                });
                if (msg.command === "NICK" && fold(msg.nick) === fold(myNick)) { myNick = p[0]; }
                renderMembers();
                break;
              case "PRIVMSG": case "NOTICE":
                if (!msg.nick || msg.nick.indexOf(".") >= 0 && !p[0].match(/^#/)) { break; }
                var target = p[0], isChannel = target.charAt(0) === "#";
                var other = isChannel ? target : (fold(msg.nick) === fold(myNick) ? target : msg.nick);
                addLines(buffer(other, isChannel), [lineFrom(msg)], "end");
                if (!isChannel) { renderChannels(); }
                break;
              case "TOPIC":
                b = buffer(p[0], true); b.topic = p[1] || "";
                addLines(b, [lineFrom(msg)], "end");
                if (b === current) { topicLine.textContent = b.topic; }
                break;
              case "332":
                b = buffer(p[1], true); b.topic = p[2] || "";
                if (b === current) { topicLine.textContent = b.topic; }
                break;
              case "353":
                b = buffer(p[2], true);
                if (!namesPending[fold(b.name)]) { namesPending[fold(b.name)] = {}; }
                (p[3] || "").split(" ").forEach(function (n) {
                  var m = /^([@+]*)(.+)$/.exec(n);
                  if (m) { namesPending[fold(b.name)][m[2]] = m[1].charAt(0); }
                });
                break;
              case "366":
                b = buffer(p[1], true);
                b.members = namesPending[fold(b.name)] || {};
                delete namesPending[fold(b.name)];
                if (b === current) { renderMembers(); }
                break;
              case "BATCH":
                var ref = p[0].slice(1);
                if (p[0].charAt(0) === "+") { batches[ref] = { type: p[1], target: p[2], lines: [] }; break; }
                batch = batches[ref];
                delete batches[ref];
                if (batch && batch.type === "chathistory") {
                  b = buffer(batch.target, batch.target.charAt(0) === "#");
                  var older = b.lines.length && batch.lines.length && b.loading;
                  b.loading = false;
                  if (batch.lines.length < pageSize) { b.more = false; }
                  addLines(b, batch.lines, older ? "start" : (b.lines.length ? "merge" : "latest"));
                  if (!older && b.lines.length) { b.lines.sort(function (x, y) { return x.time < y.time ? -1 : x.time > y.time ? 1 : 0; }); if (b === current) { select(b); } }
                  if (b === current) { olderButton.disabled = !b.more; }
                }
                break;
              case "FAIL":
                if (current) { current.loading = false; }
                notice(p.slice(2).join(" "));
                break;
              case "ERROR":
                var reason = p[0] || "";
                setStatus("Disconnected: " + reason, true);
                if (/Web session ended/.test(reason)) { stopped = true; window.location.assign("/login"); }
                break;
              default:
                // Errors worth showing (no such channel, cannot send, flood, …); 422 only says
                // that there is no message of the day.
                if (/^4\d\d$/.test(msg.command) && msg.command !== "433" && msg.command !== "422") {
                  notice(p.slice(1).join(" "));
                }
            }
          }

          function connect() {
            if (stopped) { return; }
            registered = false;
            setStatus("Connecting…");
            var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + root.getAttribute("data-socket");
            socket = new WebSocket(url, ["text.ircv3.net"]);
            socket.onopen = function () {
              send("CAP LS 302");
              send("CAP REQ :batch draft/chathistory echo-message message-tags multi-prefix server-time");
              send("NICK " + (myNick || baseNick()));
              send("USER " + baseNick() + " 0 * :" + (root.getAttribute("data-user") || "web"));
              send("CAP END");
            };
            socket.onmessage = function (event) {
              if (typeof event.data === "string") { handle(parse(event.data)); }
            };
            socket.onclose = function () {
              registered = false;
              sendInput.disabled = true;
              sendButton.disabled = true;
              if (stopped) { return; }
              var wait = Math.min(backoff, 30000) * (0.75 + Math.random() / 2);
              backoff = Math.min(backoff * 2, 30000);
              setStatus("Connection lost; reconnecting in " + Math.round(wait / 1000) + " s…", true);
              // A refused upgrade looks like any other drop: ask the page whether we are still signed in.
              fetch("/chat", { credentials: "same-origin", redirect: "manual" }).then(function (r) {
                if (r.type === "opaqueredirect" || r.status === 401) { stopped = true; window.location.assign("/login"); return; }
                setTimeout(connect, wait);
              }, function () { setTimeout(connect, wait); });
            };
          }

          $("join-form").addEventListener("submit", function (e) {
            e.preventDefault();
            var name = $("join-input").value.trim();
            if (!name) { return; }
            if (name.charAt(0) !== "#") { name = "#" + name; }
            var b = buffers[fold(name)];
            if (b && b.joined) { select(b); } else { send("JOIN " + name); }
            $("join-input").value = "";
          });
          $("send-form").addEventListener("submit", function (e) {
            e.preventDefault();
            var text = sendInput.value;
            if (!text || !registered) { return; }
            var m = /^\/(\w+)\s*(.*)$/.exec(text);
            if (m && text.slice(0, 2) !== "//") {
              var cmd = m[1].toLowerCase(), rest = m[2];
              if (cmd === "join") { send("JOIN " + (rest.charAt(0) === "#" ? rest : "#" + rest)); }
              else if (cmd === "part") { if (current && current.isChannel) { send("PART " + current.name + (rest ? " :" + rest : "")); } }
              else if (cmd === "me") { if (current) { send("PRIVMSG " + current.name + " :\u0001ACTION " + rest + "\u0001"); } }
              else if (cmd === "msg") { var mm = /^(\S+)\s+(.+)$/.exec(rest); if (mm) { buffer(mm[1], mm[1].charAt(0) === "#"); send("PRIVMSG " + mm[1] + " :" + mm[2]); } }
              else if (cmd === "topic") { if (current && current.isChannel) { send("TOPIC " + current.name + " :" + rest); } }
              else if (cmd === "nick") { send("NICK " + rest); }
              else { setStatus("Unknown command /" + cmd + "."); }
            } else if (current && current.name.charAt(0) !== "*") {
              send("PRIVMSG " + current.name + " :" + (text.slice(0, 2) === "//" ? text.slice(1) : text));
            }
            sendInput.value = "";
          });
          olderButton.addEventListener("click", loadOlder);
          list.addEventListener("scroll", function () { if (list.scrollTop === 0) { loadOlder(); } });
          // Another tab signed out (app.js tells through storage): close this socket too.
          window.addEventListener("storage", function (e) {
            if (e.key === "svcpkg-signed-out") { stopped = true; if (socket) { socket.close(); } window.location.assign("/login"); }
          });
          connect();
        })();
        """#
}
