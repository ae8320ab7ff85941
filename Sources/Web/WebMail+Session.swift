import Foundation
import HTTPTypes
import Hummingbird
import MailMessage
import NIOCore
import SharedTree

/// Login, logout and the session of each request.
extension WebMail {
    // MARK: - Sessions

    /// A logged-in request: its session and the user's store.
    struct Authenticated {
        var session: WebSession
        var store: MailStore
    }

    /// The session of the request, or `WebError.loginRequired` (a redirect to the login page)
    /// when there is none, it is forged or expired, or the user logged out everywhere since.
    /// A state-changing request must also carry the session's CSRF token and come from our
    /// own origin.
    func authenticate(_ request: Request, form: WebForm? = nil) async throws -> Authenticated {
        guard let sealer = services.settings.sessionKey.flatMap(SessionSealer.init(key:)) else { throw WebError.loginDisabled }
        guard let cookie = request.cookie(Self.sessionCookie) else { throw WebError.loginRequired }
        let session: WebSession
        do {
            session = try sealer.open(cookie)
        } catch {
            logger.notice("web session cookie refused", metadata: ["reason": "\(error)"])
            throw WebError.loginRequired
        }
        let store: MailStore
        do {
            store = try services.mailStore(for: session.user)
        } catch {
            throw WebError.loginRequired
        }
        guard try await currentEpoch(store) <= session.epoch else { throw WebError.loginRequired }
        guard await services.accountIsActive(session.user) else {
            logger.notice("web session of a removed or disabled account refused", metadata: ["user": "\(session.user)"])
            throw WebError.loginRequired
        }
        if request.method == .post {
            try Self.checkOrigin(request)
            let presented = form?.first("_csrf") ?? request.headers[.xCSRFToken]
            guard session.acceptsCSRFToken(presented) else { throw WebError.forbidden("The form is missing its security token or it does not match your session. Reload the page and try again.") }
        }
        return Authenticated(session: session, store: store)
    }

    /// Cross-site POSTs are refused outright (SameSite=Strict cookies already keep the session
    /// out of them; this also covers the login form).
    static func checkOrigin(_ request: Request) throws {
        if let site = request.headers[.secFetchSite], site == "cross-site" {
            throw WebError.forbidden("Cross-site requests are not accepted.")
        }
        if let origin = request.headers[.origin], origin != "null", let host = request.head.authority {
            guard let originHost = URL(string: origin)?.host, originHost.lowercased() == Self.hostName(host).lowercased() else {
                throw WebError.forbidden("Requests from another site are not accepted.")
            }
        }
    }

    static func hostName(_ authority: String) -> String {
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.split(separator: ":").first ?? "")
    }

    /// The user's revocation epoch (file `svcpkg-web-epoch` in the home on the shared tree),
    /// cached for a couple of seconds per node.
    func currentEpoch(_ store: MailStore) async throws -> UInt64 {
        let key = store.user.address
        if let cached = epochs.withLockedValue({ $0[key] }), Date().timeIntervalSince(cached.read) < Self.epochCacheSeconds {
            return cached.epoch
        }
        let epoch = try await services.blocking { try RevocationEpoch.read(store) }
        epochs.withLockedValue { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[key] = (epoch, Date())
        }
        return epoch
    }

    func sessionCookie(_ value: String, request: Request, maxAge: Int) -> Cookie {
        Cookie(
            name: Self.sessionCookie, value: value, maxAge: maxAge, path: "/",
            secure: services.settings.secureCookies || request.isHTTPS, httpOnly: true, sameSite: .strict)
    }

    func loginPage(_ request: Request, error: String? = nil, user: String = "", status: HTTPResponse.Status = .ok) -> Response {
        var data: [String: Any] = ["user": user]
        if let error { data["error"] = error }
        let disabled = services.settings.sessionKey.flatMap(SessionSealer.init(key:)) == nil
        if disabled {
            data["disabled"] = "Web login is disabled: the cluster has no web session key (svcpkgWebSessionKey in LDAP)."
        }
        // Double-submit token for the login form itself (login CSRF): a random value in a
        // short-lived SameSite=Strict cookie and in the form.
        let nonce = Base64URL.encode((0..<18).map { _ in UInt8.random(in: 0...255) })
        data["nonce"] = nonce
        var response = page(title: "Sign in", template: "login", data: data, auth: nil, status: disabled ? .serviceUnavailable : status)
        response.setCookie(
            Cookie(name: Self.loginCookie, value: nonce, maxAge: 3600, path: "/login", secure: services.settings.secureCookies || request.isHTTPS, httpOnly: true, sameSite: .strict))
        return response
    }

    func login(_ request: Request, _ context: WebRequestContext) async throws -> Response {
        let settings = services.settings
        guard let sealer = settings.sessionKey.flatMap(SessionSealer.init(key:)) else { throw WebError.loginDisabled }
        try Self.checkOrigin(request)
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        guard let nonce = request.cookie(Self.loginCookie), let presented = form.first("_login"),
            ConstantTime.equal(Array(nonce.utf8), Array(presented.utf8))
        else {
            return loginPage(request, error: "Your sign-in form expired. Please try again.", status: .forbidden)
        }
        let user = (form.first("user") ?? "").trimmingCharacters(in: .whitespaces)
        let password = form.first("password") ?? ""
        guard !user.isEmpty, user.utf8.count <= 254, !password.isEmpty, password.utf8.count <= 1024 else {
            return loginPage(request, error: "Enter your e-mail address and password.", user: String(user.prefix(254)), status: .unauthorized)
        }
        let client = request.clientAddress(context)
        switch await services.authenticate(user: user, password: password, remoteAddress: client) {
        case .invalid:
            logger.notice("web login failed", metadata: ["user": "\(user)", "remote": "\(client)"])
            return loginPage(request, error: "The e-mail address or the password is wrong.", user: user, status: .unauthorized)
        case .refused:
            return loginPage(request, error: "Too many failed sign-ins from your address, or the directory is not answering. Try again in a few minutes.", user: user, status: .tooManyRequests)
        case .ok(let address):
            let store = try services.mailStore(for: address)
            let epoch = try await services.blocking { try RevocationEpoch.read(store) }
            let session = WebSession.new(user: address, epoch: epoch, lifetime: settings.sessionLifetime)
            var response = Self.redirect("/mail")
            response.setCookie(sessionCookie(try sealer.seal(session), request: request, maxAge: settings.sessionLifetime))
            response.setCookie(Cookie(name: Self.loginCookie, value: "", maxAge: 0, path: "/login", httpOnly: true, sameSite: .strict))
            logger.info("web login", metadata: ["user": "\(address)", "remote": "\(client)"])
            return response
        }
    }

    func logout(_ request: Request, _ context: WebRequestContext, everywhere: Bool) async throws -> Response {
        let form = try await Self.readForm(request, limit: Self.maxSmallFormBytes)
        let auth = try await authenticate(request, form: form)
        if everywhere {
            let store = auth.store
            let raised = try await services.blocking { try RevocationEpoch.raise(store) }
            epochs.withLockedValue { $0[store.user.address] = (raised, Date()) }
            logger.notice("web logout everywhere", metadata: ["user": "\(auth.session.user)"])
        }
        var response = Self.redirect("/login")
        response.setCookie(sessionCookie("", request: request, maxAge: 0))
        return response
    }
}
