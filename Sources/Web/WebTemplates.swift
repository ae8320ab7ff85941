import Mustache

/// The page templates (Mustache, HTML-escaped by default; `{{{…}}}` only for HTML this module
/// produced itself: the rendered page body and the sanitizer's output). Compiled into the
/// binary like the assets.
enum WebTemplates {
    static func library() throws -> MustacheLibrary {
        var library = MustacheLibrary()
        for (name, text) in sources { try library.register(text, named: name) }
        return library
    }

    static let sources: [String: String] = [
        "layout": layout, "login": login, "mailbox": mailbox, "message": message, "compose": compose, "error": error, "notice": notice, "settings": settings, "chat": chat,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <meta name="referrer" content="no-referrer">
        <title>{{title}} · Service Package mail</title>
        <link rel="stylesheet" href="{{css}}">
        <script src="{{js}}" defer></script>
        </head>
        <body{{#live}} data-live="{{live}}" data-autoreload="{{autoreload}}"{{/live}}>
        {{#user}}
        <header class="top">
        <a class="brand" href="/mail">Mail</a>
        <form class="search" method="get" action="/search" role="search">
        <input type="hidden" name="folder" value="{{folder}}">
        <input type="search" name="q" value="{{query}}" aria-label="Search in {{folder}}" placeholder="Search {{folder}}">
        </form>
        <a id="compose-link" class="button" href="/compose" accesskey="n">Compose</a>
        {{#chatLink}}<a id="chat-link" href="/chat" accesskey="t"{{#chatCurrent}} aria-current="page"{{/chatCurrent}}>Chat</a>{{/chatLink}}
        <a href="/settings" class="who" accesskey="s">{{user}}</a>
        <form method="post" action="/logout"><input type="hidden" name="_csrf" value="{{csrf}}"><button class="secondary" type="submit">Log out</button></form>
        </header>
        {{/user}}
        <main>
        {{{body}}}
        </main>
        </body>
        </html>
        """

    /// The chat page: a shell that `chat.js` fills from the socket (every text it adds goes
    /// in with `textContent`, never as HTML).
    static let chat = """
        <div class="chat" id="chat" data-socket="{{socket}}" data-user="{{user}}">
        <aside class="chat-side" aria-label="Channels and members">
        <form id="join-form" class="join">
        <label for="join-input">Join a channel</label>
        <span class="join-row"><input id="join-input" type="text" placeholder="#channel" maxlength="50" autocomplete="off" required> <button type="submit" id="join-button">Join</button></span>
        </form>
        <h2>Conversations</h2>
        <ul id="channel-list" class="chat-list"></ul>
        <h2>Members <span id="member-count" class="count"></span></h2>
        <ul id="member-list" class="chat-list members"></ul>
        </aside>
        <section class="chat-main">
        <p id="chat-status" class="chat-status" role="status">Connecting…</p>
        <h1 id="chat-title">Chat</h1>
        <p id="chat-topic" class="chat-topic"></p>
        <p><button id="older" type="button" class="secondary" disabled>Older messages</button></p>
        <ol id="messages" class="chat-messages" tabindex="0" aria-label="Messages" aria-live="polite"></ol>
        <form id="send-form" class="chat-send">
        <label for="send-input" class="visually-hidden">Message</label>
        <input id="send-input" type="text" autocomplete="off" maxlength="400" placeholder="Message (/join, /part, /me, /msg, /topic)" disabled>
        <button type="submit" id="send-button" disabled>Send</button>
        </form>
        </section>
        </div>
        <noscript><p class="banner">The chat needs JavaScript; mail works without it.</p></noscript>
        """

    static let login = """
        <form class="login" method="post" action="/login">
        <h1>Sign in</h1>
        {{#disabled}}<p class="error" role="alert">{{disabled}}</p>{{/disabled}}
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <input type="hidden" name="_login" value="{{nonce}}">
        <label for="user">E-mail address</label>
        <input id="user" type="email" name="user" value="{{user}}" autocomplete="username" required autofocus>
        <label for="password">Password</label>
        <input id="password" type="password" name="password" autocomplete="current-password" required>
        <button type="submit">Sign in</button>
        </form>
        """

    static let folders = """
        <nav class="folders" aria-label="Folders"><ul>
        {{#folders}}<li><a href="{{href}}"{{#current}} class="current" aria-current="page"{{/current}}><span>{{name}}</span>{{#unread}}<span class="count" aria-label="{{unread}} unread">{{unread}}</span>{{/unread}}</a></li>
        {{/folders}}</ul></nav>
        """

    static let mailbox = """
        <div class="layout">
        \(folders)
        <section class="content" aria-labelledby="folder-title">
        {{#inConversation}}<p><a id="back-link" href="{{back}}">← {{folder}}</a></p>{{/inConversation}}
        <h1 id="folder-title">{{heading}}</h1>
        <p id="live-banner" class="banner hidden" role="status">This folder changed. <a href="{{reload}}">Reload</a></p>
        {{#notice}}<p class="banner" role="status">{{notice}}</p>{{/notice}}
        {{^inConversation}}
        <form method="get" action="{{searchAction}}" class="toolbar">
        <input type="hidden" name="folder" value="{{folder}}">
        {{#q}}<input type="hidden" name="q" value="{{q}}">{{/q}}
        <label for="view">View</label>
        <select id="view" name="view">{{#views}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/views}}</select>
        {{^conversationView}}
        <label for="order">Order</label>
        <select id="order" name="order">{{#orders}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/orders}}</select>
        {{/conversationView}}
        <label><input type="checkbox" id="reverse" name="reverse" value="1"{{#reverse}} checked{{/reverse}}> Reversed</label>
        <button type="submit" class="secondary">Show</button>
        </form>
        {{/inConversation}}
        <form method="post" action="/action">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <input type="hidden" name="folder" value="{{folder}}">
        <input type="hidden" name="return" value="{{reload}}">
        <input type="hidden" name="before" value="{{before}}">
        <div class="toolbar">
        <button type="submit" name="action" value="read" class="secondary">Mark read</button>
        <button type="submit" name="action" value="unread" class="secondary">Mark unread</button>
        <button type="submit" name="action" value="flag" class="secondary">Flag</button>
        <button type="submit" name="action" value="unflag" class="secondary">Unflag</button>
        <button type="submit" name="action" value="delete" class="secondary">Delete</button>
        <label class="visually-hidden" for="move-target">Move to</label>
        <select id="move-target" name="target">{{#targets}}<option value="{{name}}">{{name}}</option>{{/targets}}</select>
        <button type="submit" name="action" value="move" class="secondary">Move</button>
        </div>
        {{#empty}}<p>No messages.</p>{{/empty}}
        {{^empty}}
        {{#conversationView}}
        <table class="messages conversations">
        <thead><tr><th><input type="checkbox" id="select-all" aria-label="Select all"></th><th class="from">People</th><th>Subject</th><th class="date">Latest</th></tr></thead>
        <tbody>
        {{#conversations}}<tr class="{{#unread}}unread{{/unread}}">
        <td><input type="checkbox" name="conversation" value="{{conversation}}" aria-label="Select conversation {{subject}}"></td>
        <td class="from">{{participants}}{{#many}} <span class="count" aria-label="{{count}} messages">{{count}}</span>{{/many}}</td>
        <td class="subject">{{#flagged}}<span class="flag" aria-label="flagged">★</span> {{/flagged}}<a href="{{href}}">{{subject}}</a>{{#unreadCount}} <span class="unread-count">({{unreadCount}} unread)</span>{{/unreadCount}}</td>
        <td class="date">{{date}}</td>
        </tr>
        {{/conversations}}
        </tbody>
        </table>
        {{/conversationView}}
        {{^conversationView}}
        <table class="messages">
        <thead><tr><th><input type="checkbox" id="select-all" aria-label="Select all"></th><th class="from">From</th><th>Subject</th><th class="date">Date</th></tr></thead>
        <tbody>
        {{#messages}}<tr class="{{#unread}}unread{{/unread}}">
        <td><input type="checkbox" name="uid" value="{{uid}}" aria-label="Select message {{subject}}"></td>
        <td class="from">{{from}}</td>
        <td class="subject">{{#flagged}}<span class="flag" aria-label="flagged">★</span> {{/flagged}}<a href="{{href}}">{{subject}}</a>{{#attachment}} 📎{{/attachment}}</td>
        <td class="date">{{date}}</td>
        </tr>
        {{/messages}}
        </tbody>
        </table>
        {{/conversationView}}
        {{/empty}}
        </form>
        <div class="pager">
        {{#newer}}<a href="{{newer}}" rel="prev" accesskey="p">← Newer</a>{{/newer}}
        <span>{{range}}</span>
        {{#older}}<a href="{{older}}" rel="next" accesskey="o">Older →</a>{{/older}}
        </div>
        {{#texts}}
        <article class="conversation-message">
        <h2><a href="{{href}}">{{subject}}</a></h2>
        <p class="count">{{from}} · {{date}}</p>
        {{#text}}<pre class="text-body">{{text}}</pre>{{/text}}
        {{#html}}<div class="html-body">{{{html}}}</div>{{/html}}
        {{#shortened}}<p><a href="{{href}}">The rest of this message</a></p>{{/shortened}}
        </article>
        {{/texts}}
        </section>
        </div>
        """

    static let message = """
        <div class="layout">
        \(folders)
        <section class="content">
        <p><a id="back-link" href="{{back}}">← {{folder}}</a></p>
        <h1>{{subject}}</h1>
        <dl class="headers">
        <dt>From</dt><dd>{{from}}</dd>
        {{#to}}<dt>To</dt><dd>{{to}}</dd>{{/to}}
        {{#cc}}<dt>Cc</dt><dd>{{cc}}</dd>{{/cc}}
        <dt>Date</dt><dd>{{date}}</dd>
        </dl>
        <div class="toolbar">
        {{#editDraft}}<a class="button" href="{{editDraft}}" accesskey="e">Edit draft</a>{{/editDraft}}
        <a id="reply-link" class="button" href="{{reply}}" accesskey="r">Reply</a>
        <a class="button secondary" href="{{replyAll}}" accesskey="a">Reply all</a>
        <a class="button secondary" href="{{forward}}" accesskey="f">Forward</a>
        <form method="post" action="/action">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <input type="hidden" name="folder" value="{{folder}}">
        <input type="hidden" name="uid" value="{{uid}}">
        <input type="hidden" name="return" value="{{back}}">
        {{#flagged}}<button type="submit" name="action" value="unflag" class="secondary">Unflag</button>{{/flagged}}
        {{^flagged}}<button type="submit" name="action" value="flag" class="secondary">Flag</button>{{/flagged}}
        <button type="submit" name="action" value="unread" class="secondary">Mark unread</button>
        <button type="submit" name="action" value="delete" class="secondary">Delete</button>
        <label class="visually-hidden" for="move-one">Move to</label>
        <select id="move-one" name="target">{{#targets}}<option value="{{name}}">{{name}}</option>{{/targets}}</select>
        <button type="submit" name="action" value="move" class="secondary">Move</button>
        </form>
        </div>
        {{#imagesBlocked}}<p class="banner">Remote images in this message were blocked. <a href="{{showImages}}">Show images</a></p>{{/imagesBlocked}}
        {{#hasAttachments}}
        <h2>Attachments</h2>
        <ul class="attachments">
        {{#attachments}}<li><a href="{{href}}" download>{{name}}</a> <span class="count">({{type}}, {{size}})</span></li>
        {{/attachments}}</ul>
        {{/hasAttachments}}
        {{#text}}<pre class="text-body">{{text}}</pre>{{/text}}
        {{#html}}<div class="html-body">{{{html}}}</div>{{/html}}
        </section>
        </div>
        """

    static let compose = """
        <section class="content narrow">
        <h1>{{heading}}</h1>
        {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
        <form class="compose" method="post" action="/send" enctype="multipart/form-data">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <input type="hidden" name="in_reply_to" value="{{inReplyTo}}">
        <input type="hidden" name="references" value="{{references}}">
        <input type="hidden" name="forward" value="{{forward}}">
        <input type="hidden" name="replied" value="{{replied}}">
        <input type="hidden" name="draft" value="{{draft}}">
        <label for="from">From</label>
        <select id="from" name="from">{{#identities}}<option value="{{address}}"{{#selected}} selected{{/selected}}>{{address}}</option>{{/identities}}</select>
        <label for="to">To</label>
        <input id="to" type="text" name="to" value="{{to}}" autocomplete="off">
        <label for="cc">Cc</label>
        <input id="cc" type="text" name="cc" value="{{cc}}" autocomplete="off">
        <label for="bcc">Bcc</label>
        <input id="bcc" type="text" name="bcc" value="{{bcc}}" autocomplete="off">
        <label for="subject">Subject</label>
        <input id="subject" type="text" name="subject" value="{{subject}}">
        <label for="text">Message</label>
        <textarea id="text" name="text">{{text}}</textarea>
        {{#forwardNote}}<p>The original message is attached.</p>{{/forwardNote}}
        {{#hasDraftAttachments}}<p>Attached from the draft: {{#draftAttachments}}<span class="count">{{name}}</span> {{/draftAttachments}}</p>{{/hasDraftAttachments}}
        <label for="attachments">Attachments (up to {{maxUpload}} in all)</label>
        <input id="attachments" type="file" name="attachment" multiple>
        <div class="toolbar"><button type="submit" id="send">Send</button> <button type="submit" name="save" value="draft" id="save-draft" class="secondary">Save draft</button> <a href="/mail">Cancel</a></div>
        </form>
        </section>
        """

    static let settings = """
        <section class="content narrow">
        <h1>Settings</h1>
        {{#notice}}<p class="banner" role="status">{{notice}}</p>{{/notice}}
        <form class="compose" method="post" action="/settings">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <label for="signature">Signature (added under new messages, replies and forwards; up to {{maxSignature}} bytes)</label>
        <textarea id="signature" name="signature" class="short">{{signature}}</textarea>
        <div class="toolbar"><button type="submit" id="save-settings">Save</button></div>
        </form>
        <h2>Your addresses</h2>
        <p>You can send as: {{#identities}}<span class="count">{{address}}</span> {{/identities}}</p>
        <h2>Sessions</h2>
        <form method="post" action="/logout-everywhere">
        <input type="hidden" name="_csrf" value="{{csrf}}">
        <p>Sign out of web-mail in every browser and on every device (this one too).</p>
        <button type="submit" class="secondary" id="logout-everywhere">Log out everywhere</button>
        </form>
        </section>
        """

    static let error = """
        <section class="content narrow">
        <h1>{{heading}}</h1>
        <p role="alert">{{message}}</p>
        <p><a href="{{back}}">{{backLabel}}</a></p>
        </section>
        """

    static let notice = """
        <section class="content narrow">
        <h1>{{heading}}</h1>
        <p role="status">{{message}}</p>
        <p><a href="/mail">Back to the inbox</a></p>
        </section>
        """
}
