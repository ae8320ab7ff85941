import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// A failure a page reports to the user (with the HTTP status it maps to).
public enum WebError: Error, Equatable {
    /// No valid session: to the login page.
    case loginRequired
    /// The cluster has no session key.
    case loginDisabled
    case forbidden(String)
    case badRequest(String)
    case notFound(String)
    case tooLarge(String)

    var status: HTTPResponse.Status {
        switch self {
        case .loginRequired: .seeOther
        case .loginDisabled: .serviceUnavailable
        case .forbidden: .forbidden
        case .badRequest: .badRequest
        case .notFound: .notFound
        case .tooLarge: .contentTooLarge
        }
    }

    var message: String {
        switch self {
        case .loginRequired: "Please sign in."
        case .loginDisabled: "Web login is disabled: the cluster has no web session key (svcpkgWebSessionKey in LDAP)."
        case .forbidden(let text), .badRequest(let text), .notFound(let text), .tooLarge(let text): text
        }
    }
}

/// On every response of the HTTP port: the security headers, and errors turned into pages
/// (a missing or bad session becomes a redirect to the login page, with the cookie cleared).
struct WebSecurityMiddleware: RouterMiddleware {
    typealias Context = WebRequestContext

    let mail: WebMail

    /// No inline script, no plug-ins, no framing, forms only to us; images from us and
    /// `data:` (and remote ones only on the page where the user asked for them).
    static func contentSecurityPolicy(remoteImages: Bool = false) -> String {
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:\(remoteImages ? " https: http:" : ""); "
            + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    }

    static let defaultPolicy = contentSecurityPolicy()
    /// Paths that answer whether or not the web module is enabled.
    static let alwaysServed: Set<String> = ["/healthz", "/metrics"]

    func handle(_ request: Request, context: WebRequestContext, next: (Request, WebRequestContext) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        var response: Response
        do {
            if !mail.services.settings.enabled, !Self.alwaysServed.contains(request.uri.path) {
                throw WebError.notFound("Web-mail is not enabled on this node.")
            }
            response = try await next(request, context)
        } catch let error as WebError {
            response = errorResponse(error, request: request)
        } catch let error as any HTTPResponseError {
            let status = error.status
            let text = status == .notFound ? "There is no such page." : "The request could not be handled (\(status.code) \(status.reasonPhrase))."
            response = mail.page(title: status.reasonPhrase, template: "error", data: ["heading": status.reasonPhrase, "message": text, "back": "/mail", "backLabel": "Back to the inbox"], auth: nil, status: status)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("web request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            response = mail.page(
                title: "Error", template: "error",
                data: ["heading": "Something went wrong", "message": "The server could not complete the request. Please try again; if it keeps failing, tell your administrator (the error is in the node's log).", "back": "/mail", "backLabel": "Back to the inbox"],
                auth: nil, status: .internalServerError)
        }
        Self.addHeaders(&response)
        // Browsers take HSTS only from a TLS response, so a forged X-Forwarded-Proto on plain HTTP is harmless.
        if request.isHTTPS { response.headers[HTTPField.Name("Strict-Transport-Security")!] = "max-age=31536000" }
        // W3C Server Timing (browser devtools and bench/web_bench.py read it): the time the node
        // spent before the response head (for a stream, before its first byte).
        let elapsed = ContinuousClock.now - started
        let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
        response.headers[HTTPField.Name("Server-Timing")!] = "app;dur=\(String(format: "%.2f", milliseconds))"
        if let node = mail.services.settings.nodeName { response.headers[HTTPField.Name("X-Served-By")!] = node }
        return response
    }

    static func addHeaders(_ response: inout Response) {
        if response.headers[.contentSecurityPolicy] == nil { response.headers[.contentSecurityPolicy] = defaultPolicy }
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.xFrameOptions] = "DENY"
        response.headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        response.headers[HTTPField.Name("Cross-Origin-Opener-Policy")!] = "same-origin"
        response.headers[HTTPField.Name("Permissions-Policy")!] = "camera=(), microphone=(), geolocation=()"
    }

    func errorResponse(_ error: WebError, request: Request) -> Response {
        switch error {
        case .loginRequired:
            // A page load goes to the login page; a script's request gets a plain 401.
            var response = request.method == .get ? WebMail.redirect("/login") : mail.page(
                title: "Signed out", template: "error",
                data: ["heading": "You are signed out", "message": "Your session ended or is not valid. Sign in again.", "back": "/login", "backLabel": "Sign in"],
                auth: nil, status: .unauthorized)
            if request.cookie(WebMail.sessionCookie) != nil {
                response.setCookie(Cookie(name: WebMail.sessionCookie, value: "", maxAge: 0, path: "/", httpOnly: true, sameSite: .strict))
            }
            return response
        case .loginDisabled:
            return mail.page(title: "Web login disabled", template: "error", data: ["heading": "Web login is disabled", "message": error.message, "back": "/login", "backLabel": "Sign in"], auth: nil, status: error.status)
        default:
            let heading: String
            switch error {
            case .forbidden: heading = "Not allowed"
            case .notFound: heading = "Not found"
            case .tooLarge: heading = "Too large"
            default: heading = "Bad request"
            }
            return mail.page(title: heading, template: "error", data: ["heading": heading, "message": error.message, "back": "/mail", "backLabel": "Back to the inbox"], auth: nil, status: error.status)
        }
    }
}
